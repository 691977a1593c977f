"""Write OUT_DIR/wall_clock.json: the command, its wall-clock time, the machine, the load and the commit.

Usage: python scripts/wall_clock.py OUT_DIR START_EPOCH_S END_EPOCH_S LOAD_BEFORE COMMIT SEEDS COMMAND...
Called by the experiment scripts (scripts/reproduce_fig1.sh, scripts/experiments.sh) after their runs.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    out, start, end, load_before, commit, seeds, *command = argv
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    record = {
        "command": " ".join(command),
        "wall_clock_s": round(float(end) - float(start), 1),
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform()},
        "loadavg_before": load_before,
        "loadavg_after": " ".join(open("/proc/loadavg").read().split()[:3]),
        "git_commit": commit,
        "seeds": seeds,
    }
    path = Path(out) / "wall_clock.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wall clock {record['wall_clock_s'] / 60:.1f} min -> {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
