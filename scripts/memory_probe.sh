#!/usr/bin/env bash
# Issue 20 §1's short measurement on masked CartPole: does an input encoding let the network represent the hidden
# velocities, and does the agent learn more? Usage:
#   scripts/memory_probe.sh [OUT_DIR] [SEED] [EPISODES]          # defaults: multirun/memory_probe 0 300
# Each condition is one run of 4 agents (seeds SEED..SEED+3) of experiment=masked_cartpole_rec (N = 500, W_rec ~
# N(0, 0.5^2) learned at rec_lr = 1.5e-4) for EPISODES episodes, one at a time, in OUT_DIR/<condition>:
#   none, normalize, population                  encodings of the memory agent (env.encoding, ENCODING_* below)
#   control_previous, control_difference         the controls (env=masked_cartpole_previous / _difference)
# then scripts/decode_probe.py on every agent's final pi_ref (20 held-out episodes each, sampled actions) and
# scripts/report.py over the five runs against encoding none, and scripts/decode_table.py (R^2 and firing rates of
# the five). Running it again continues unfinished runs. The encodings' settings (gain 10, population defaults) come
# from a 2-seed pilot on seeds 100-101 (results/memory_probe/pilot/commands.sh), not from these seeds.
set -euo pipefail
PYTHON=${PYTHON:-python}
cd "$(dirname "$0")/.."
out=${1:-multirun/memory_probe}
seed=${2:-0}
episodes=${3:-300}
NORMALIZE=${NORMALIZE:-"env.encoding=normalize env.encoding_gain=10"}
POPULATION=${POPULATION:-"env.encoding=population"}
declare -A conditions=(
  [none]=""
  [normalize]="$NORMALIZE"
  [population]="$POPULATION"
  [control_previous]="env=masked_cartpole_previous"
  [control_difference]="env=masked_cartpole_difference"
)
order="none normalize population control_previous control_difference"
mkdir -p "$out"
$PYTHON scripts/wall_clock.py start "$out" "$seed-$((seed + 3))" scripts/memory_probe.sh "$out" "$seed" "$episodes"
for name in $order; do
  echo "start  $name: ${conditions[$name]}"
  # shellcheck disable=SC2086
  $PYTHON scripts/train.py experiment=masked_cartpole_rec ${conditions[$name]} seed="$seed" num_agents=4 \
    iterations="$episodes" log_images_every=0 probe_every=50 progress=false run_dir="$out/$name" > "$out/$name.log" 2>&1
  $PYTHON scripts/decode_probe.py "$out/$name" --episodes 20 | tail -5
done
$PYTHON scripts/wall_clock.py end "$out"
$PYTHON scripts/report.py $(printf "$out/%s " $order) --out "$out"
$PYTHON scripts/decode_table.py $(printf "$out/%s " $order) --out "$out/decode_table.csv"
