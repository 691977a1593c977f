"""Wall-clock per episode of training runs, from their metrics.csv: each row's episode_length / sps is the time its
process took for that episode (acting and learning of all the process's agents in lockstep, observation excluded).

Per run: the process seconds per episode (median and mean over episodes, of the slowest process when there are
several workers), the total, and the same over the last 100 episodes (when every episode has its full length).
Also the mean over agents of lfcs/ref_kl, lfcs/old_episode_weight, mask_fraction and the W_out norm over the last
100 episodes.

    python results/offpolicy/episode_seconds.py --out FILE.json RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

COLUMNS = ("ref_kl", "old_episode_weight", "mask_fraction", "w_out_norm", "episode_length")


def summarise(run: Path) -> dict:
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    seconds = defaultdict(dict)  # episode -> {process sps_total: seconds}; agents of one process share one clock
    for row in rows:
        length, sps = float(row["episode_length"]), float(row["sps"])
        seconds[int(row["episode"])][row["sps_total"]] = length / sps
    per_episode = [max(times.values()) for _, times in sorted(seconds.items())]  # the slowest process
    last = max(seconds)
    tail = [r for r in rows if int(r["episode"]) > last - 100]
    return {
        "episodes": last,
        "seconds_per_episode_median": statistics.median(per_episode),
        "seconds_per_episode_mean": statistics.fmean(per_episode),
        "seconds_total": sum(per_episode),
        "seconds_per_episode_last100_median": statistics.median(per_episode[-100:]),
        "last100_means": {c: statistics.fmean(float(r[c]) for r in tail) for c in COLUMNS},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    result = {"command": " ".join(sys.argv), "runs": {str(run): summarise(run) for run in args.runs}}
    for run, summary in result["runs"].items():
        print(f"{run}: {summary['episodes']} episodes, {summary['seconds_per_episode_median']:.3f} s per episode "
              f"(median; last 100: {summary['seconds_per_episode_last100_median']:.3f}), total "
              f"{summary['seconds_total'] / 60:.1f} min, last 100: " +
              ", ".join(f"{k} {v:.4g}" for k, v in summary["last100_means"].items()))  # fmt: skip
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
