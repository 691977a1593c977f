#!/bin/bash
# learner=bptt on masked CartPole (experiment=masked_cartpole_bptt: masked_cartpole_rec's N = 500 network), seeds 0-3
# as 4 agents of one process (one torch thread: one core), for as many episodes as fit in CPU_MINUTES of that
# process's CPU time (20: "20 minutes of one core", whatever the load of the machine): when it has used them, it gets
# SIGINT, finishes the episode it is in, checkpoints, writes summary.json and exits.
# Usage, from the repository root:  bash results/references/bptt_probe/run.sh [CPU_MINUTES] [RUN_DIR]
# Writes into results/references/bptt_probe/: machine.txt, command.txt, time.txt (CPU and wall time of the training
# process), the run's config.yaml, metrics.csv and summary.json, report.csv/report.json (scripts/report.py: IQM of
# the final reward over the 4 seeds at the largest 50-episode budget reached) and cost.json (costs from metrics.csv).
set -euo pipefail
CPU_MINUTES=${1:-20}
RUN=${2:-runs/bptt_probe/masked_cartpole_bptt}
OUT=${OUT:-results/references/bptt_probe}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT" "$(dirname "$RUN")"
{
  date -u +%Y-%m-%dT%H:%M:%SZ
  uname -srm
  lscpu | grep -E '^(Model name|CPU\(s\))'
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- lfcs conf || echo ' (with uncommitted changes)')"
} > "$OUT/machine.txt"
COMMAND="$PY scripts/train.py experiment=masked_cartpole_bptt seed=0 num_agents=4 iterations=100000 progress=false log_images_every=0 run_dir=$RUN"
echo "$COMMAND" > "$OUT/command.txt"
/usr/bin/time -o "$OUT/time.txt" -f "user_s %U sys_s %S wall_s %e max_rss_kib %M" $COMMAND &
sleep 2
PID=$(pgrep -P $! -f scripts/train.py)
while kill -0 "$PID" 2>/dev/null; do
  read -r -a stat < "/proc/$PID/stat" || break
  ticks=$((stat[13] + stat[14]))  # utime + stime of the training process
  if [ $((ticks / $(getconf CLK_TCK))) -ge $((CPU_MINUTES * 60)) ]; then kill -INT "$PID"; break; fi
  sleep 5
done
wait
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
# Agents step in lockstep in one process: the process's time for episode e is length / sps of any of its rows.
seconds = {e: float(rs[0]["episode_length"]) / float(rs[0]["sps"]) for e, rs in by_episode.items()}
steps = {e: sum(float(r["episode_length"]) for r in rs) for e, rs in by_episode.items()}
updates = [e for e in episodes if float(by_episode[e][0]["abs_log_ratio"]) > 0]
first, last = episodes[: len(episodes) // 10], episodes[-(len(episodes) // 10) :]
cost = {
    "agents": len(by_episode[episodes[0]]),
    "episodes_per_agent": len(episodes),
    "env_steps_all_agents": sum(steps.values()),
    "training_seconds": sum(seconds.values()),
    "seconds_per_episode_of_4_agents": sum(seconds.values()) / len(episodes),
    "seconds_per_1000_env_steps": 1000 * sum(seconds.values()) / sum(steps.values()),
    "first_tenth": {"mean_length": sum(steps[e] for e in first) / (4 * len(first)),
                    "seconds_per_episode_of_4_agents": sum(seconds[e] for e in first) / len(first)},
    "last_tenth": {"mean_length": sum(steps[e] for e in last) / (4 * len(last)),
                   "seconds_per_episode_of_4_agents": sum(seconds[e] for e in last) / len(last)},
    "episodes_with_an_update": len(updates),
}
timing = dict(zip(*[iter((out / "time.txt").read_text().split())] * 2))
cpu = float(timing["user_s"]) + float(timing["sys_s"])
cost["process_cpu_seconds"] = cpu
cost["process_wall_seconds"] = float(timing["wall_s"])
cost["cpu_seconds_per_episode_of_4_agents"] = cpu / len(episodes)
cost["cpu_seconds_per_1000_env_steps"] = 1000 * cpu / sum(steps.values())
cost["note"] = ("training_seconds and the per-tenth seconds: wall-clock from metrics.csv (episode_length / sps, acting "
                "and learning); cpu_*: the whole process (start-up, logging, checkpoints included) from time.txt")
(out / "cost.json").write_text(json.dumps(cost, indent=2) + "\n")
print(json.dumps(cost, indent=2))
EOF
