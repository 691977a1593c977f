"""One table of the decoding probes of several runs: the decode_probe.json that scripts/decode_probe.py wrote.

    python scripts/decode_table.py RUN_DIR [RUN_DIR ...] --out FILE.csv

One row per run (labelled by its folder name), hidden variable and source (r, v, input): the mean R^2 over the
run's agents, each agent's R^2, and for r and v the mean over agents of (R^2 of the source - R^2 of the input
alone), i.e. what the network adds to a read-out of the current input; both also as medians over agents (r2_median,
gain_over_input_median: one agent's short, unusual episodes can put its R^2 far below 0 and move the mean); beside
them the run's firing rate (mean over agents of metrics.csv's firing_rate) over its first and its last 50 episodes.
Prints the table.
"""

import argparse
import csv
import json
import sys
from pathlib import Path
from statistics import median

SOURCES = ("r", "v", "input")


def firing_rates(run_dir: Path, window: int = 50) -> tuple[float, float]:
    with open(run_dir / "metrics.csv") as handle:
        rows = [(int(float(r["episode"])), float(r["firing_rate"])) for r in csv.DictReader(handle)]
    last = max(episode for episode, _ in rows)
    first = [rate for episode, rate in rows if episode <= window]
    final = [rate for episode, rate in rows if episode > last - window]
    return sum(first) / len(first), sum(final) / len(final)


def rows_of(run_dir: Path) -> list[dict]:
    record = json.loads((run_dir / "decode_probe.json").read_text())
    firing_first, firing_last = firing_rates(run_dir)
    agents = sorted(record["agents"], key=int)
    names = list(record["agents"][agents[0]]["r2"])
    rows = []
    for name in names:
        r2 = [record["agents"][a]["r2"][name] for a in agents]
        for source in SOURCES:
            values = [row[source] for row in r2]
            gains = [row[source] - row["input"] for row in r2]
            rows.append({
                "run": run_dir.name, "variable": name, "source": source,
                "r2_mean": sum(values) / len(values),
                "gain_over_input_mean": "" if source == "input" else sum(gains) / len(gains),
                "r2_per_agent": " ".join(f"{v:.4f}" for v in values),
                "agents": " ".join(agents), "episodes": record["episodes"], "policy": record["policy"],
                "firing_rate_first50": firing_first, "firing_rate_last50": firing_last,
                "r2_median": median(values), "gain_over_input_median": "" if source == "input" else median(gains),
            })  # fmt: skip
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    rows = [row for run in args.runs for row in rows_of(run)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        gain, middle = row["gain_over_input_mean"], row["gain_over_input_median"]
        shown = "" if gain == "" else f"  (network - input {gain:+.3f}, median {middle:+.3f})"
        rates = f"firing {row['firing_rate_first50']:.2%} -> {row['firing_rate_last50']:.2%}"
        r2 = f"R2 {row['r2_mean']:+.3f} (median {row['r2_median']:+.3f})"
        print(f"{row['run']:<24} {row['variable']:<10} {row['source']:<6} {r2}{shown}  {rates}")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
