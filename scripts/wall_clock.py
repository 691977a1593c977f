"""OUT_DIR/wall_clock.json: an experiment's command, machine, commit and wall-clock time, over every session it took.

Usage (called by scripts/reproduce_fig1.sh and scripts/experiments.sh around their runs):
    python scripts/wall_clock.py start OUT_DIR SEEDS COMMAND...   # opens a segment (the load, the commit, now)
    python scripts/wall_clock.py end OUT_DIR                      # closes it; wall_clock_s = the sum of segments
An experiment that is stopped (a session's end, a failed condition) and run again continues from its checkpoints:
the new ``start`` closes the open segment at the last write of any file under OUT_DIR and marks it interrupted, so
the total counts the time that produced the results, including work redone after a resume. A wall_clock.json of
the earlier one-session form is kept as the first segment.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

NAME = "wall_clock.json"


def _load() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def _last_write(out: Path, since: float) -> float:
    """The newest file time under OUT_DIR from `since` on (`since` itself if the session wrote nothing)."""
    times = [p.stat().st_mtime for p in out.rglob("*") if p.is_file() and p.name != NAME]
    return max([t for t in times if t >= since], default=since)


def _commit() -> str:
    try:
        result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        return result.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def start(out: Path, seeds: str, command: list[str], now: float | None = None) -> dict:
    path = out / NAME
    record = json.loads(path.read_text()) if path.exists() else {}
    segments = record.get("segments", [])
    if "wall_clock_s" in record and not segments:  # written by the earlier, one-session form: kept as a segment
        segments = [{key: value for key, value in record.items() if key != "wall_clock_s"}]
        segments[0]["seconds"] = record["wall_clock_s"]
    if segments and "seconds" not in segments[-1]:
        _close(segments[-1], _last_write(out, segments[-1]["start"]), interrupted=True)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    began = time.time() if now is None else now
    segments.append(
        {
            "command": " ".join(command),
            "start": round(began, 1),
            "utc": _utc(began),
            "loadavg_before": _load(),
            "git_commit": _commit(),
            "machine": {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform()},
        }
    )
    record = {"command": " ".join(command), "seeds": seeds, "segments": segments}
    return _write(path, record)


def end(out: Path, now: float | None = None) -> dict:
    path = out / NAME
    record = json.loads(path.read_text()) if path.exists() else {}
    if not record.get("segments") or "seconds" in record["segments"][-1]:
        sys.exit(f"error: {path} has no session open: call `wall_clock.py start {out} SEEDS COMMAND...` first")
    _close(record["segments"][-1], time.time() if now is None else now, loadavg_after=_load())
    return _write(path, record)


def _close(segment: dict, when: float, **extra) -> None:
    segment.update(end=round(when, 1), seconds=round(when - segment["start"], 1), **extra)
    segment["utc"] = f"{_utc(segment['start'])} - {_utc(when)}"


def _utc(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch_s))


def _write(path: Path, record: dict) -> dict:
    record["wall_clock_s"] = round(sum(s.get("seconds", 0.0) for s in record["segments"]), 1)
    record["sessions"] = len(record["segments"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str]) -> None:
    if len(argv) >= 4 and argv[0] == "start":
        start(Path(argv[1]), argv[2], argv[3:])
    elif len(argv) == 2 and argv[0] == "end":
        record = end(Path(argv[1]))
        print(f"wall clock {record['wall_clock_s'] / 60:.1f} min over {record['sessions']} session(s) -> {argv[1]}")
    else:
        sys.exit("usage: wall_clock.py start OUT_DIR SEEDS COMMAND... | wall_clock.py end OUT_DIR")


if __name__ == "__main__":
    main(sys.argv[1:])
