#!/bin/bash
# Controls beside run.sh's masked CartPole measurement (learner=bptt, seeds 0-1 as 2 agents of one process each):
#   full_cartpole_masked_network: masked_cartpole_bptt's network and learner on CartPole-v1 (velocities observed),
#     200 episodes: can this network learn the task at all when it needs no memory?
#   full_cartpole_cartpole_network: experiment=cartpole_bptt (cartpole_lfcs's network: read-out tau 4 steps,
#     W_out ~ N(0, 0.01^2), no W_rec) on CartPole-v1, 200 episodes: the same learner on the network that lf-cs's
#     CartPole experiment uses.
#   masked_cartpole_cartpole_init: masked CartPole with masked_cartpole_bptt's network but cartpole_lfcs's read-out
#     tau and W_out scale, 500 episodes.
# Usage, from the repository root:  bash results/references/bptt_probe/controls.sh
# Writes results/references/bptt_probe/<control>/: machine.txt, command.txt, time.txt, the run's config.yaml,
# metrics.csv, summary.json and scripts/report.py's report.csv/report.json (final reward: the last 5 windows).
set -euo pipefail
OUT=${OUT:-results/references/bptt_probe}
PY=${PYTHON:-.venv/bin/python}
declare -A CONTROLS=(
  [full_cartpole_masked_network]="experiment=masked_cartpole_bptt env=cartpole iterations=200"
  [full_cartpole_cartpole_network]="experiment=cartpole_bptt iterations=200"
  [masked_cartpole_cartpole_init]="experiment=masked_cartpole_bptt network.tau_readout_steps=4.0 network.out_std=0.01 iterations=500"
)
for name in full_cartpole_masked_network full_cartpole_cartpole_network masked_cartpole_cartpole_init; do
  dir="$OUT/$name" run="runs/bptt_probe/$name"
  mkdir -p "$dir"
  {
    date -u +%Y-%m-%dT%H:%M:%SZ
    uname -srm
    lscpu | grep -E '^(Model name|CPU\(s\))'
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- lfcs conf || echo ' (with uncommitted changes)')"
  } > "$dir/machine.txt"
  command="$PY scripts/train.py ${CONTROLS[$name]} seed=0 num_agents=2 progress=false log_images_every=0 run_dir=$run"
  echo "$command" > "$dir/command.txt"
  rm -rf "$run"
  /usr/bin/time -o "$dir/time.txt" -f "user_s %U sys_s %S wall_s %e max_rss_kib %M" $command
  cp "$run/config.yaml" "$run/metrics.csv" "$run/summary.json" "$dir/"
  "$PY" scripts/report.py "$run" --out "$dir" --threshold 100
done
