#!/usr/bin/env bash
set -u
cd "$(dirname "$0")/../../.."  # the repository root
P=${PYTHON:-python}
out=results/memory_probe/pilot
mkdir -p $out
declare -A c=(
 [none]=""
 [normalize_g1]="env.encoding=normalize env.encoding_gain=1"
 [normalize_g3]="env.encoding=normalize env.encoding_gain=3"
 [normalize_g10]="env.encoding=normalize env.encoding_gain=10"
 [population_g1]="env.encoding=population"
 [normalize_population_g1]="env.encoding=normalize_population"
)
for n in none normalize_g1 normalize_g3 normalize_g10 population_g1 normalize_population_g1; do
  s=$(date +%s)
  nice $P scripts/train.py experiment=masked_cartpole_rec ${c[$n]} seed=100 num_agents=2 iterations=150 log_images_every=0 progress=false run_dir=$out/$n > $out/$n.log 2>&1
  echo "$n train $(( $(date +%s) - s )) s"
  nice $P scripts/decode_probe.py $out/$n --episodes 20
done
# Run on: 2-core Intel Xeon, no GPU, load average 8-12 (other jobs), commit c355177 (training) / 22574c4 (probe; rebased onto main as 65bc521);
# decode_probe.json files (their "command" names the folder as it was then, pilot_runs/) rewritten at 22574c4 (the probe's final feature scaling) from the same checkpoints.
python scripts/decode_table.py results/memory_probe/pilot/{none,normalize_g1,normalize_g3,normalize_g10,population_g1,normalize_population_g1} --out results/memory_probe/pilot/decode_table.csv
