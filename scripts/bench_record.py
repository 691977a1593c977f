"""Provenance of a bench file: the machine and the code it measured (used by scripts/bench.py).

Run alone (``python scripts/bench_record.py``, no arguments) it prints both as JSON.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path


def machine() -> dict:
    """What the rates depend on: the CPU, how many cores, the Python stack."""
    cpu_model = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as handle:
            models = [line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")]
        cpu_model = models[0] if models else cpu_model
    packages = ("torch", "numpy", "ale-py", "gymnasium", "norse")
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "versions": {name: metadata.version(name) for name in packages},
    }


def git_state(repo: Path) -> dict:
    """The commit, and whether code (not results) differs from it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    code_changed = git("status", "--porcelain", "--", "lfcs", "envs", "conf", "scripts")  # results/ may differ
    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(code_changed)}


if __name__ == "__main__":
    from lfcs.running.scripting import OneLineParser

    OneLineParser(prog="bench_record.py", description=__doc__.splitlines()[0]).parse_args()
    print(json.dumps({"machine": machine(), "git": git_state(Path(__file__).resolve().parents[1])}, indent=2))
