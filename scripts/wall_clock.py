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

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

NAME = "wall_clock.json"
PROG = "wall_clock.py"


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


def parse(argv: list[str]):
    from lfcs.running.scripting import OneLineParser, output_dir

    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="action", required=True)
    opening = commands.add_parser("start", prog=PROG, help="open a session")
    opening.add_argument("out", type=output_dir)
    opening.add_argument("seeds")
    opening.add_argument("command", nargs=argparse.REMAINDER)
    commands.add_parser("end", prog=PROG, help="close the open session").add_argument("out", type=output_dir)
    args = parser.parse_args(argv)
    if args.action == "start" and not args.command:
        opening.error("the following arguments are required: command")
    return args


def main(argv: list[str]) -> int:
    from lfcs.running.scripting import fail

    args = parse(argv)
    if args.action == "start":
        start(args.out, args.seeds, args.command)
        return 0
    try:
        record = end(args.out)
    except SystemExit as refused:  # end()'s one line
        fail(PROG, str(refused).removeprefix("error: "))
    print(f"wall clock {record['wall_clock_s'] / 60:.1f} min over {record['sessions']} session(s) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
