#!/usr/bin/env bash
# The ablation the paper never ran, plus the settings that might explain the gap to its figure:
# 8 conditions x 10 seeds on Pong-100 (joblib, two jobs at a time). Usage:
#   scripts/ablation.sh [OUT_DIR] [extra overrides, e.g. iterations=1500]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-multirun/ablation}
shift || true
python scripts/train.py -m \
  experiment=ablation_mask_off,ablation_fast_1pass,ablation_slow_2pass,ablation_lfcs_no_tzs,ablation_eprop_no_tzs,gap_lfcs_out_std_0.001,gap_eprop_out_std_0.001,gap_eprop_lr3e-3 \
  num_agents=10 launcher=joblib progress=false hydra.sweep.dir="$out" "$@"
python scripts/aggregate.py "$out" --out "$out"
