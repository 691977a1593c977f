#!/usr/bin/env bash
# The ablation the paper never ran, plus the settings that might explain the gap to its figure: 8 conditions x 10
# seeds on Pong-100 (scripts/experiments.sh ablation runs them; the two reports below name the same 8, split by
# learner), then scripts/report.py's statistics of each learner's variants against that learner as published, the
# Fig. 1c runs of scripts/reproduce_fig1.sh
# (FIG1C, default multirun/fig1c), and the curves of all ten conditions. Usage:
#   scripts/ablation.sh [OUT_DIR] [extra overrides, e.g. iterations=1500]
# Writes OUT_DIR/<condition>/ (runs), OUT_DIR/lfcs/ and OUT_DIR/eprop/ (report.csv, profile.png: the variants
# against pong100_lfcs / pong100_eprop), OUT_DIR/curves.* and summary.csv (scripts/aggregate.py), wall_clock.json.
# Running it again continues unfinished runs from their checkpoints.
set -euo pipefail
PYTHON=${PYTHON:-python}
cd "$(dirname "$0")/.."
out=${1:-multirun/ablation}
shift || true
fig1c=${FIG1C:-multirun/fig1c}
paper_lfcs="$fig1c/experiment=pong100_lfcs,num_agents=10"
paper_eprop="$fig1c/experiment=pong100_eprop,num_agents=10"
for run in "$paper_lfcs" "$paper_eprop"; do
  compgen -G "$run/seed=*/config.yaml" > /dev/null ||
    { echo "error: FIG1C=$fig1c is not allowed: $run holds no run (scripts/reproduce_fig1.sh $fig1c makes it)" >&2; exit 2; }
done
budget=2500  # the curves end where the ablation's runs end (an iterations=N override cuts them all there)
for arg in "$@"; do [[ $arg == iterations=* ]] && budget=${arg#iterations=}; done
scripts/experiments.sh ablation "$out" "$@"
$PYTHON scripts/report.py "$paper_lfcs" "$out/ablation_fast_1pass" "$out/ablation_lfcs_no_tzs" "$out/ablation_mask_off" \
  "$out/gap_lfcs_out_std_0.001" --out "$out/lfcs"
$PYTHON scripts/report.py "$paper_eprop" "$out/ablation_slow_2pass" "$out/ablation_eprop_no_tzs" \
  "$out/gap_eprop_out_std_0.001" "$out/gap_eprop_lr3e-3" --out "$out/eprop"
$PYTHON scripts/aggregate.py "$fig1c" "$out" --max-episode "$budget" --out "$out"
