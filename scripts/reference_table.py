"""The reference table (README "Reference points"): one row per task and learner, from each task's report.

    python scripts/reference_table.py TASK_DIR [TASK_DIR ...] --out results/references

Each TASK_DIR holds the report.csv and report.json that scripts/report.py wrote for one task (every learner on that
task, compared at one budget and one threshold). Writes OUT/table.csv and OUT/table.md: per task (the folder's name)
and condition, the seeds, the budget, the IQM of the final reward with its 95 % bootstrap CI, the median episodes and
env steps to the threshold with the seeds that reached it, and process-seconds per million env steps on the machine
that ran it. Every number is copied from report.csv / report.json; nothing is recomputed. A TASK_DIR without them:
one line, exit 2.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

from lfcs.running.scripting import OneLineParser, guarded

PROG = "reference_table.py"
COLUMNS = ["task", "condition", "n_seeds", "budget", "threshold", "iqm", "iqm_ci_low", "iqm_ci_high"]
COLUMNS += ["episodes_to_threshold_median", "seeds_reached_threshold", "env_steps_to_threshold_median"]
COLUMNS += ["wall_s_per_million_steps"]


def rows_of(task_dir: Path) -> list[dict]:
    """One row per condition of the task's report.csv (its threshold from report.json)."""
    threshold = json.loads((task_dir / "report.json").read_text())["threshold"]
    with open(task_dir / "report.csv", newline="") as handle:
        conditions = list(csv.DictReader(handle))
    copied = [key for key in COLUMNS if key not in ("task", "threshold")]
    return [
        {"task": task_dir.name, "threshold": threshold, **{k: value_of(c.get(k, "")) for k in copied}}
        for c in conditions
    ]


def value_of(text: str):
    """A report.csv cell: int, float or the text itself ('' stays '')."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def number(value, digits: int) -> str:
    if value in (None, "") or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:,.{digits}f}"


def markdown(rows: list[dict]) -> str:
    head = "| task | condition | seeds | budget | IQM final [95 % CI] | episodes to threshold (seeds) | env steps to "
    lines = [head + "threshold | s per M env steps |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        scale = 2 if abs(row["iqm"]) < 10 else 1
        iqm = f"{number(row['iqm'], scale)} [{number(row['iqm_ci_low'], scale)}, {number(row['iqm_ci_high'], scale)}]"
        reached = f"{row['seeds_reached_threshold']}/{row['n_seeds']}"
        episodes = number(row["episodes_to_threshold_median"], 0) or "never"
        cells = [row["task"], f"`{row['condition']}`", row["n_seeds"], row["budget"], iqm, f"{episodes} ({reached})"]
        cells += [number(row["env_steps_to_threshold_median"], 0), number(row["wall_s_per_million_steps"], 0)]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="+", type=Path, help="folders holding a task's report.csv and report.json")
    parser.add_argument("--out", type=Path, required=True, help="folder for table.csv and table.md")
    args = parser.parse_args(argv)
    for task in args.tasks:
        if not ((task / "report.csv").is_file() and (task / "report.json").is_file()):
            parser.error(f"argument tasks: {str(task)!r} is not allowed: a folder with scripts/report.py's report.csv")
    rows = [row for task in args.tasks for row in rows_of(task)]
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "table.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    table = markdown(rows)
    (args.out / "table.md").write_text(table)
    print(table, end="")


if __name__ == "__main__":
    sys.exit(guarded(PROG, lambda: main(sys.argv[1:])))
