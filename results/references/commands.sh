#!/bin/bash
# The reference table (issue 21 §3; README "Reference points"): every learner on each task, same env ids, seeds and
# episode budgets, one scripts/report.py folder per task and scripts/reference_table.py over them (table.csv,
# table.md). Run from the repository root on this machine (2 cores; the peers need `pip install -e '.[peers]'`).
# Thresholds (fixed before the runs): 475 of 500 on CartPole-v1 and masked CartPole; 0.95 of 1 on
# PositionOnlyCartPoleEasy (190 of 200 steps); 0.9 on RepeatPreviousEasy (95 % of answers right); 0.0 on
# CountRecallEasy (half right); -0.5 on Pong-100 (issue 22's). Budgets: 1,000 episodes; masked CartPole 600 (the
# RecurrentPPO runs' budget); Pong-100 2,500. Each run's config.yaml, summary.json (and command.txt, decode_probe.json)
# are copied into <task>/runs/<condition>/; its curve is in <task>/curves.csv (metrics.csv files stay in runs/).
set -euo pipefail
PY=${PYTHON:-.venv/bin/python}
R=results/references
peer() { $PY scripts/peers.py --no-progress --algo "$1" --env "$2" --seeds "$3" --episodes "$4" --out "runs/peers/$2_$1"; }
train() { name=$1; shift; $PY scripts/train.py num_agents=10 seed=0 progress=false log_images_every=0 "run_dir=runs/references/$name" "$@"; }
EP="learner.timescale=slow learner.n_passes=1"  # e-prop: lf-cs's learner with one slow pass (conf/learner/eprop.yaml)

run_all() {
# CartPole-v1, 1,000 episodes
scripts/experiments.sh cartpole runs/references/cartpole log_images_every=0            # cartpole_lfcs, cartpole_eprop
peer ppo cartpole 0-9 1000
peer recurrent_ppo cartpole 0-4 1000                                                   # 5 seeds: ~80 min for 10 here
train cartpole_bptt experiment=cartpole_bptt                                           # learner=bptt
# masked CartPole, compared at 600 episodes: lf-cs (no W_rec, and W_rec learned: results/memory/grid/commands.sh), e-prop,
# the memory agent (results/memory/grid/commands.sh), BPTT at 10 seeds, PPO without memory and RecurrentPPO
train masked_cartpole_eprop experiment=masked_cartpole_norec $EP
train masked_cartpole_bptt experiment=masked_cartpole_bptt iterations=600
peer ppo masked_cartpole 0-9 600
peer recurrent_ppo masked_cartpole 0-9 600
# POPGym, 1,000 episodes: lf-cs and e-prop (masked_cartpole_norec's network and learners on the task), the memory agent
# and its controls (scripts/experiments.sh popgym: no W_rec; here also W_rec and W_in fixed), the peers
scripts/experiments.sh popgym runs/popgym log_images_every=0
for t in repeat_previous_easy count_recall_easy position_only_cartpole_easy; do
  train popgym_${t}_lfcs experiment=masked_cartpole_norec env=popgym_$t env.max_episode_steps=null
  train popgym_${t}_eprop experiment=masked_cartpole_norec env=popgym_$t env.max_episode_steps=null $EP
  train popgym_${t}_memory_fixed experiment=popgym_${t}_memory learner.learn_rec=false learner.learn_in=false \
    learner.rate_reg=0.0
  peer ppo popgym_$t 0-9 1000
  peer recurrent_ppo popgym_$t 0-9 1000
done
# Pong-100, 2,500 episodes: lf-cs (pong100_lfcs_replay1, identical to pong100_lfcs bit for bit: issue 22), the peers
WORKERS=2 JOBS=1 scripts/experiments.sh offpolicy_pong runs/offpolicy/pong log_images_every=0
peer ppo pong100 0-9 2500      # RecurrentPPO on Pong-100 was not run: ~10 min per seed here, none fit this session
}
[ "${1:-}" = report ] || run_all   # `bash results/references/commands.sh report`: only the reports and the table

# One report per task (with curves, and each run's config, summary and decoding probe copied beside it), then the table
report() {
  task=$1; shift; $PY scripts/report.py "$@" --out "$R/$task"
  dirs=(); for a in "$@"; do [ -d "$a" ] && dirs+=("$a"); done
  $PY scripts/aggregate.py "${dirs[@]}" --out "$R/$task"                                # curves.csv, curves.png
  for d in "${dirs[@]}"; do
    mkdir -p "$R/$task/runs/$(basename "$d")"
    for f in config.yaml summary.json command.txt decode_probe.json; do
      if [ -f "$d/$f" ]; then cp "$d/$f" "$R/$task/runs/$(basename "$d")/"; fi
    done
  done
}
report cartpole runs/references/cartpole/cartpole_lfcs runs/references/cartpole/cartpole_eprop runs/references/cartpole_bptt \
  runs/peers/cartpole_ppo runs/peers/cartpole_recurrent_ppo --budget 1000 --threshold 475
report masked_cartpole runs/memory/masked_cartpole_norec runs/references/masked_cartpole_rec runs/references/masked_cartpole_eprop \
  runs/memory/masked_cartpole_memory runs/references/masked_cartpole_bptt \
  runs/peers/masked_cartpole_ppo runs/peers/masked_cartpole_recurrent_ppo --budget 600 --threshold 475
for t in repeat_previous_easy:0.9 count_recall_easy:0.0 position_only_cartpole_easy:0.95; do
  task=${t%%:*}
  report popgym_$task runs/references/popgym_${task}_lfcs runs/references/popgym_${task}_eprop runs/popgym/$task/popgym_${task}_norec \
    runs/references/popgym_${task}_memory_fixed runs/popgym/$task/popgym_${task}_memory runs/peers/popgym_${task}_ppo \
    runs/peers/popgym_${task}_recurrent_ppo --budget 1000 --threshold "${t##*:}"
done
report pong100 runs/offpolicy/pong/pong100_lfcs_replay1 runs/peers/pong100_ppo --budget 2500 --threshold -0.5
# The decoding probe of the spiking agents on each POPGym task (their hidden variables: the suit 4 cards back, the
# queried count, the velocities): scripts/decode_probe.py on each run without a decode_probe.json, then one table
for task in repeat_previous_easy count_recall_easy position_only_cartpole_easy; do
  runs="runs/references/popgym_${task}_lfcs runs/references/popgym_${task}_eprop runs/popgym/$task/popgym_${task}_norec
    runs/references/popgym_${task}_memory_fixed runs/popgym/$task/popgym_${task}_memory"
  for d in $runs; do [ -f "$d/decode_probe.json" ] || $PY scripts/decode_probe.py "$d" --episodes 20; done
  $PY scripts/decode_table.py $runs --out $R/popgym_$task/decode_table.csv
done
{ echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(uname -srm)"; echo "report written: $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD)"
  echo "runs: 2026-12-06 06:40-08:15 UTC (runs/memory, runs/popgym, runs/offpolicy: the session before), 2-5 runs at once on"
  echo "the 2 cores: s per M env steps are process-seconds under that load, an order of magnitude, not a benchmark"; } > $R/machine.txt
$PY scripts/reference_table.py $R/cartpole $R/masked_cartpole $R/popgym_repeat_previous_easy $R/popgym_count_recall_easy \
  $R/popgym_position_only_cartpole_easy $R/pong100 --out $R
