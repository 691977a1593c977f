"""A parent killed with SIGKILL at a random moment, both cores busy: nothing under its run directory changes after.

The run has two workers and checkpoints every episode of a small network, so a worker that outlived its parent by
a few milliseconds and still wrote would change a checkpoint (or the folder that holds them) after the kill. CPU
burners (one per core) start once the run is under way, so that the kill lands on a loaded machine, where
PR_SET_PDEATHSIG was seen to take seconds. A kill at a random moment finds a late write only now and then (2 of
20 kills of the earlier code, which let workers write their own checkpoints); a parent that is stopped (SIGSTOP)
for a second before the kill finds it every time: its workers run on, and nothing may change while it cannot.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, session_processes

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

RUN = ["network.num_neurons=20", "progress=false", "num_agents=2", "workers=2", "checkpoint_every=1"]
ITERATIONS = 100_000  # never reached: the parent is killed first
GRACE_S = 0.5  # after the last process of the run is gone, before the second look


def tree(run_dir: Path) -> dict[str, tuple[int, int, int]]:
    """Every file and folder under the run directory: (inode, size, mtime in ns); a rename changes the inode."""
    found = {}
    for path in [run_dir, *run_dir.rglob("*")]:
        try:
            info = path.stat()
        except FileNotFoundError:  # a temporary file renamed while we looked
            continue
        found[str(path.relative_to(run_dir))] = (info.st_ino, info.st_size, info.st_mtime_ns)
    return found


def kill_at_a_random_moment(run_dir: Path, rng: random.Random, frozen_s: float = 0.0) -> list[str]:
    """Start a run, load every core, SIGKILL the parent alone; the paths changed after the kill.

    frozen_s: stop the parent (SIGSTOP) that long before the kill, and count changes from the stop on.
    """
    cmd = [sys.executable, "scripts/train.py", *RUN, f"iterations={ITERATIONS}", f"run_dir={run_dir}"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, **quiet)
    burners = []
    try:
        deadline = time.time() + 180
        while len(list((run_dir / "checkpoints").glob("*.pt"))) < 2 and time.time() < deadline:
            assert proc.poll() is None, "the run ended before the kill"
            time.sleep(0.05)
        assert len(list((run_dir / "checkpoints").glob("*.pt"))) == 2, "no checkpoint of both workers in time"
        spin = [sys.executable, "-c", "while True: pass"]
        burners = [subprocess.Popen(spin, **quiet) for _ in range(os.cpu_count() or 2)]
        time.sleep(rng.uniform(0.2, 1.5))  # both workers checkpoint many times a second meanwhile
        killed_ns = time.time_ns()
        if frozen_s:
            os.kill(proc.pid, signal.SIGSTOP)  # for its workers, as good as dead: they are not told
            time.sleep(frozen_s)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        first_look = tree(run_dir)
        deadline = time.time() + 30
        while session_processes(proc.pid) and time.time() < deadline:
            time.sleep(0.05)
        assert session_processes(proc.pid) == [], "workers outlived their parent by 30 s"
        time.sleep(GRACE_S)
        last_look = tree(run_dir)
    finally:
        for pid in [*session_processes(proc.pid), *(b.pid for b in burners)]:  # leave nothing running
            os.kill(pid, signal.SIGKILL)
        for burner in burners:
            burner.wait()
    late = [path for path, (_, _, mtime_ns) in last_look.items() if mtime_ns > killed_ns]
    changed = [path for path in set(first_look) | set(last_look) if first_look.get(path) != last_look.get(path)]
    return sorted(set(late) | set(changed))


def test_nothing_changes_while_the_parent_is_stopped_and_after_it_is_killed(tmp_path):
    assert kill_at_a_random_moment(tmp_path / "run", random.Random(1), frozen_s=1.0) == []


@pytest.mark.slow
def test_nothing_changes_after_twenty_kills(tmp_path):
    """20 kills at random moments, without a stop first (``pytest -m slow tests/test_parent_kill.py``)."""
    rng = random.Random(100)
    changed = {trial: kill_at_a_random_moment(tmp_path / f"run{trial}", rng) for trial in range(20)}
    assert {trial: paths for trial, paths in changed.items() if paths} == {}
