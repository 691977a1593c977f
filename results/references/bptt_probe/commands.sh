#!/bin/bash
# The learner=bptt runs behind README "The same spiking network trained by BPTT" (issues 20 and 21), in the order they
# were run, from the repository root; each writes runs/<name> (copied here into runs/<name> without checkpoints and
# TensorBoard files). 2 agents = seeds 0-1 in one process, one torch thread. Machine: 2-core Intel Xeon, no GPU,
# shared with other experiments at the time (loads 6-12): the curves are exact, the wall-clock is not a speed.
set -euo pipefail
PY=${PYTHON:-.venv/bin/python}
# earlier session (commit db34578): masked CartPole, masked_cartpole_rec's network (read-out tau 1 step, W_out ~ N(0, 1),
# W_rec ~ N(0, 0.5^2) learned), seeds 0-3, stopped by its CPU budget at episode 695
bash results/references/bptt_probe/run.sh 20 runs/bptt_probe/masked_cartpole_bptt          # -> runs/masked_cartpole_bptt
# that network on CartPole-v1 (velocities observed), 200 episodes
$PY scripts/train.py experiment=masked_cartpole_bptt env=cartpole iterations=200 seed=0 num_agents=2 progress=false \
  log_images_every=0 run_dir=runs/bptt_probe/control_full_cartpole                        # -> runs/full_cartpole_masked_network
# this session (commit 96c080c and later; learner=bptt unchanged): experiment=cartpole_bptt (CartPole-v1, no W_rec,
# read-out tau 4, W_out ~ N(0, 0.01^2)) at three surrogate slopes; slope 1.0 (the default) resumed to 400 episodes
for s in 1.0 0.1 0.02; do
  $PY scripts/train.py experiment=cartpole_bptt learner.surrogate_slope=$s iterations=150 seed=0 num_agents=2 \
    progress=false log_images_every=0 run_dir=runs/bptt_slope/slope_$s                    # -> runs/cartpole_bptt_slope_$s
done  # (stopped by SIGINT at episodes 92-120 to free the cores)
$PY scripts/train.py resume=runs/bptt_slope/slope_1.0 iterations=400
# masked CartPole with W_rec learned and cartpole_bptt's read-out (tau 4, W_out ~ N(0, 0.01^2)), 600 episodes
$PY scripts/train.py experiment=masked_cartpole_bptt network.tau_readout_steps=4.0 network.out_std=0.01 iterations=600 \
  seed=0 num_agents=2 progress=false log_images_every=0 run_dir=runs/bptt_masked_cpinit  # -> runs/masked_cartpole_cartpole_init
# the same network and learner on CartPole-v1: is it the memory, or the network with W_rec, that BPTT cannot train?
$PY scripts/train.py experiment=masked_cartpole_bptt env=cartpole network.tau_readout_steps=4.0 network.out_std=0.01 \
  iterations=400 seed=0 num_agents=2 progress=false log_images_every=0 run_dir=runs/bptt_full_cpinit_rec
  # -> runs/full_cartpole_cartpole_init_rec
