#!/bin/bash
# learner=bptt on masked CartPole (experiment=masked_cartpole_bptt: masked_cartpole_rec's N = 500 network), seeds 0-3
# as 4 agents of one process (one torch thread: one core), for as many episodes as fit in CPU_MINUTES of that
# process's CPU time (20: "20 minutes of one core", whatever the load of the machine): when it has used them, it gets
# SIGINT, finishes the episode it is in, checkpoints, writes summary.json and exits.
# Usage, from the repository root:  bash results/references/bptt_probe/run.sh [CPU_MINUTES] [RUN_DIR]
# If the process is stopped from outside, run the same command again: the run resumes from its checkpoint (exactly,
# tests/test_bptt.py) with the CPU time the earlier segments used counted (cpu_segments.txt).
# Writes into results/references/bptt_probe/: machine.txt, command.txt, cpu_segments.txt (CPU and wall seconds of
# each segment of the training process), the run's config.yaml, metrics.csv and summary.json, report.csv/report.json
# (scripts/report.py: IQM of the final reward over the 4 seeds at the largest 50-episode budget reached) and cost.json.
set -euo pipefail
CPU_MINUTES=${1:-20}
RUN=${2:-runs/bptt_probe/masked_cartpole_bptt}
OUT=${OUT:-results/references/bptt_probe}
PY=${PYTHON:-.venv/bin/python}
SEGMENTS="$OUT/cpu_segments.txt"
mkdir -p "$OUT" "$(dirname "$RUN")"
touch "$SEGMENTS"
{
  date -u +%Y-%m-%dT%H:%M:%SZ
  uname -srm
  lscpu | grep -E '^(Model name|CPU\(s\))'
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- lfcs conf || echo ' (with uncommitted changes)')"
} >> "$OUT/machine.txt"
COMMAND="$PY scripts/train.py experiment=masked_cartpole_bptt seed=0 num_agents=4 iterations=100000 progress=false log_images_every=0 run_dir=$RUN"
echo "$COMMAND" > "$OUT/command.txt"
ls "$RUN"/checkpoints/*.pt > /dev/null 2>&1 && COMMAND="$COMMAND resume=true"
used=$(awk '{s += $4} END {print s + 0}' "$SEGMENTS")  # "segment K cpu_s X wall_s Y" lines
budget=$((CPU_MINUTES * 60 - ${used%.*}))
segment=$(($(wc -l < "$SEGMENTS") + 1))
start=$(date +%s)
$COMMAND &
PID=$!
hz=$(getconf CLK_TCK)
cpu=0
while kill -0 "$PID" 2>/dev/null; do
  read -r -a stat < "/proc/$PID/stat" || break
  cpu=$(((stat[13] + stat[14]) / hz))  # utime + stime of the training process, in whole seconds
  if [ "$cpu" -ge "$budget" ]; then kill -INT "$PID"; break; fi
  sleep 5
done
wait "$PID" || echo "training process exited with $?" >> "$OUT/machine.txt"
echo "segment $segment cpu_s $cpu wall_s $(($(date +%s) - start))" >> "$SEGMENTS"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"
cp "$RUN/config.yaml" "$RUN/metrics.csv" "$RUN/summary.json" "$OUT/"
"$PY" scripts/report.py "$RUN" --out "$OUT" --threshold 100
"$PY" - "$OUT" <<'EOF'
import csv, json, sys
from pathlib import Path

out = Path(sys.argv[1])
rows = list(csv.DictReader(open(out / "metrics.csv")))
episodes = sorted({int(r["episode"]) for r in rows})
by_episode = {e: [r for r in rows if int(r["episode"]) == e] for e in episodes}
agents = len(by_episode[episodes[0]])
# Agents step in lockstep in one process: the process's time for episode e is length / sps of any of its rows.
seconds = {e: float(rs[0]["episode_length"]) / float(rs[0]["sps"]) for e, rs in by_episode.items()}
steps = {e: sum(float(r["episode_length"]) for r in rs) for e, rs in by_episode.items()}
tenth = max(len(episodes) // 10, 1)
segments = [line.split() for line in open(out / "cpu_segments.txt") if line.strip()]
cpu = sum(float(s[3]) for s in segments)


def part(chosen):
    return {"mean_length": sum(steps[e] for e in chosen) / (agents * len(chosen)),
            "wall_seconds_per_episode_of_all_agents": sum(seconds[e] for e in chosen) / len(chosen)}


cost = {
    "agents": agents,
    "episodes_per_agent": len(episodes),
    "env_steps_all_agents": sum(steps.values()),
    "episodes_with_an_update": sum(float(by_episode[e][0]["abs_log_ratio"]) > 0 for e in episodes),
    "process_cpu_seconds": cpu,
    "process_wall_seconds": sum(float(s[5]) for s in segments),
    "segments": len(segments),
    "cpu_seconds_per_episode_of_all_agents": cpu / len(episodes),
    "cpu_seconds_per_1000_env_steps": 1000 * cpu / sum(steps.values()),
    "first_tenth": part(episodes[:tenth]),
    "last_tenth": part(episodes[-tenth:]),
    "note": "cpu: the training process (start-up, logging, checkpoints included), polled every 5 s; "
            "wall_seconds_per_episode: from metrics.csv (episode_length / sps: acting and learning), on a loaded machine",
}  # fmt: skip
(out / "cost.json").write_text(json.dumps(cost, indent=2) + "\n")
print(json.dumps(cost, indent=2))
EOF
