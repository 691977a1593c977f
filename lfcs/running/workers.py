"""Agent groups, in this process or one spawned worker process each, sending their metric rows to the parent.

Only the parent writes into the run directory. A worker sends its metric rows and its checkpoints (the bytes of
the file) through one queue, and the parent logs the rows and writes each checkpoint atomically in the order they
came, so a checkpoint never lands before the rows it holds are logged. A parent that is killed (SIGKILL, power
loss) therefore leaves nothing behind that could still write: whatever its workers do until they die, no file
under the run directory changes after the parent stopped (tests/test_parent_kill.py, with both cores busy).
Workers still end with their parent, so that they do not waste the CPU: on Linux the kernel kills them
(``PR_SET_PDEATHSIG``, which fires when the parent *thread* exits, seconds late on a loaded machine), and a watchdog
thread exits when the parent changed. SIGINT and SIGTERM belong to the parent, which tells the workers to stop
through an Event: they finish their episode and send a checkpoint. An error in a worker reaches the parent as
(class name, one line), and the parent raises the same :class:`~lfcs.errors.UserError` (NaN/inf: exit 3; bad
config or checkpoint: exit 2).
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from lfcs import checkpoint
from lfcs.errors import USER_ERRORS
from lfcs.running.agents import AgentGroup, checkpoint_path

# SIGUSR2 is Slurm's advance warning of a time limit or preemption (sbatch --signal=USR2@<s>, submitit's default).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_POLL_S = 0.2  # the watchdog's period: a worker outlives its parent by at most this much
ORPHAN_EXIT = 70  # a worker's exit status when it finds its parent gone (nobody waits for it)


def run_group(
    cfg: DictConfig,
    agent_ids: list[int],
    run_dir: Path,
    emit: Callable[[list[dict]], None],
    should_stop: Callable[[], bool],
    save: Callable[[AgentGroup], None] | None = None,
) -> int:
    """Train one group to ``cfg.iterations`` episodes (resuming from its checkpoint); returns episodes done.

    save: how a checkpoint leaves the group (default: written into ``run_dir``; a worker sends it to its parent).
    """
    group = AgentGroup(cfg, agent_ids)
    path = checkpoint_path(run_dir, agent_ids)
    if path.exists():
        group.load(checkpoint.load(path))
    while group.episode < cfg.iterations:
        emit(group.run_episode())
        finished = group.episode >= cfg.iterations
        if finished or group.episode % cfg.checkpoint_every == 0 or should_stop():
            if save is None:
                group.save(run_dir)
            else:
                save(group)
        if should_stop() and not finished:
            break
    return group.episode


def _exit_if_orphaned(parent_pid: int) -> None:
    if os.getppid() != parent_pid:
        os._exit(ORPHAN_EXIT)  # the parent is gone: write nothing more


def _watch_parent(parent_pid: int) -> None:
    while True:
        _exit_if_orphaned(parent_pid)
        time.sleep(PARENT_POLL_S)


def _tie_to_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        # Tied to the parent *thread* that started this process: run_workers must run on a thread that outlives it.
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _exit_if_orphaned(parent_pid)  # the parent may have died before the line above
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watchdog", daemon=True).start()


def _worker(cfg_yaml: str, agent_ids: list[int], run_dir: str, rows_queue, stop, parent_pid: int) -> None:
    _tie_to_parent(parent_pid)
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)  # the parent decides when to stop, through `stop`
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by the parent while it started us
    torch.set_num_threads(1)
    cfg = OmegaConf.create(cfg_yaml)
    name = checkpoint_path(Path(run_dir), agent_ids).name

    def send(kind: str, payload) -> None:
        _exit_if_orphaned(parent_pid)  # not needed for the files (the parent writes them): saves the work
        rows_queue.put((kind, payload))

    def save(group: AgentGroup) -> None:
        send("checkpoint", (name, checkpoint.encode(group.state_dict())))

    try:
        run_group(cfg, agent_ids, Path(run_dir), lambda rows: send("rows", rows), stop.is_set, save)
        send("done", None)
    except Exception as exc:  # reported to the parent, which stops the run
        send("error", (type(exc).__name__, " ".join(str(exc).split())))


def run_workers(
    cfg: DictConfig,
    groups: list[list[int]],
    run_dir: Path,
    emit: Callable[[list[dict]], None],
    should_stop: Callable[[], bool],
) -> None:
    """One spawned process per group; rows go to ``emit`` here. Raises the first worker's error, if any."""
    ctx = mp.get_context("spawn")
    rows_queue, stop_event = ctx.Queue(), ctx.Event()
    cfg_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    args = [(cfg_yaml, group, str(run_dir), rows_queue, stop_event, os.getpid()) for group in groups]
    procs = [ctx.Process(target=_worker, args=a) for a in args]
    # A Ctrl-C while a worker starts up would kill it with a KeyboardInterrupt: it starts with the stop signals
    # blocked, and unblocks them once it ignores them.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        for proc in procs:
            proc.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    running, error = len(procs), None

    def handle(kind: str, payload) -> None:
        if kind == "rows":
            emit(payload)
        elif kind == "checkpoint":  # after the rows it holds: one queue, in the order the worker sent them
            name, data = payload
            checkpoint.write_atomic(data, run_dir / "checkpoints" / name)

    try:
        while running:
            if should_stop():
                stop_event.set()
            try:
                kind, payload = rows_queue.get(timeout=0.5)
            except queue.Empty:  # nothing for a while: check that the workers are alive
                if not any(p.is_alive() for p in procs):
                    error = error or ("RuntimeError", "a worker process died")
                    break
                continue
            handle(kind, payload)
            if kind == "done":
                running -= 1
            elif kind == "error":
                error, running = error or payload, running - 1
                stop_event.set()
    finally:
        stop_event.set()
        _drain(rows_queue, procs, lambda kind, payload: kind == "checkpoint" and handle(kind, payload))
    if error:
        name, message = error
        raise USER_ERRORS[name](message) if name in USER_ERRORS else RuntimeError(f"{name}: {message}")


def _drain(rows_queue, procs: list, handle: Callable[[str, object], object]) -> None:
    """Join the workers while reading what they still send: a worker cannot end while its queue holds data."""
    while any(p.is_alive() for p in procs):
        try:
            handle(*rows_queue.get(timeout=0.1))
        except queue.Empty:
            pass
    for proc in procs:
        proc.join()
