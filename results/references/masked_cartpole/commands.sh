#!/bin/bash
# The masked CartPole reference table (issue 21 §3, masked CartPole only; README "Reference points: masked
# CartPole"): every learner on the same env (lfcs/MaskedCartPole-v0, [x, theta], 500 steps), seeds 0-9 (learner=bptt:
# the probe's 2-4 seeds), compared at 600 episodes, the budget the RecurrentPPO runs were given. Run from the
# repository root on this machine (2 cores); the peers need `pip install -e '.[peers]'`.
set -euo pipefail
PY=${PYTHON:-.venv/bin/python}
scripts/experiments.sh memory runs/memory log_images_every=0           # masked_cartpole_norec, masked_cartpole_memory
$PY scripts/train.py experiment=masked_cartpole_rec num_agents=10 seed=0 progress=false log_images_every=0 \
  run_dir=runs/references/masked_cartpole_rec                          # lf-cs with learned W_rec (lr / 10)
# sb3-contrib RecurrentPPO, RL Zoo's CartPoleNoVel-v1 settings; run here as four processes (seeds 0, 1, 2-5, 6-9)
for seeds in 0 1 2-5 6-9; do
  $PY scripts/peers.py --algo recurrent_ppo --env masked_cartpole --seeds $seeds --episodes 600 --no-progress \
    --out "runs/peers/masked_cartpole_recurrent_ppo/seed=$seeds"
done
# learner=bptt: results/references/bptt_probe/commands.sh (runs kept in results/references/bptt_probe/runs/)
B=results/references/bptt_probe/runs
$PY scripts/report.py runs/memory/masked_cartpole_norec runs/references/masked_cartpole_rec \
  runs/memory/masked_cartpole_memory $B/masked_cartpole_bptt $B/masked_cartpole_cartpole_init \
  runs/peers/masked_cartpole_recurrent_ppo --budget 600 --threshold 475 --out results/references/masked_cartpole
