#!/usr/bin/env bash
# The ablation the paper never ran, plus the settings that might explain the gap to its figure:
# 8 conditions x 10 seeds on Pong-100 (the condition list lives in scripts/experiments.sh). Usage:
#   scripts/ablation.sh [OUT_DIR] [extra overrides, e.g. iterations=1500]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-multirun/ablation}
shift || true
exec scripts/experiments.sh ablation "$out" "$@"
