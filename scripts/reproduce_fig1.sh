#!/usr/bin/env bash
# Fig. 1c: lf-cs and e-prop on Pong-100, 2500 episodes, 10 seeds each (METHOD.md §4), then the figure.
# Each method is one job with 10 in-process agents (seeds SEED..SEED+9); the two jobs run in parallel on the
# two cores through the joblib launcher. The wall-clock time, the machine and the command go to
# OUT_DIR/wall_clock.json. Usage: scripts/reproduce_fig1.sh [OUT_DIR] [extra overrides...]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-multirun/fig1c}
shift || true
python scripts/wall_clock.py start "$out" "0-9 per method" scripts/reproduce_fig1.sh "$out" "$@"
python scripts/train.py -m experiment=pong100_lfcs,pong100_eprop num_agents=10 launcher=joblib \
  hydra.sweep.dir="$out" "$@"
python scripts/wall_clock.py end "$out"
python scripts/aggregate.py "$out" --out "$out"
