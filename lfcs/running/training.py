"""``train(cfg) -> dict``: the whole run, from a composed config to a run directory.

Agents are split into ``workers`` groups; each group trains in lockstep in its own process (or in this one when
``workers == 1``) and sends its metric rows and checkpoints here, where they are logged and written: only this
process writes into the run directory. Everything goes under it: ``config.yaml``, ``metrics.csv``,
``tb/agent_<b>/``, ``checkpoints/``, ``summary.json``.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from lfcs.analysis.results import WINDOW
from lfcs.config import validate
from lfcs.running.agents import probe_env
from lfcs.running.logger import CSV_COLUMNS, RunLogger, flatten_hparams
from lfcs.running.rundir import prepare_run_dir
from lfcs.running.workers import STOP_SIGNALS, run_group, run_workers


def agent_groups(num_agents: int, workers: int) -> list[list[int]]:
    """Contiguous, nearly equal groups of agent ids, one per worker process."""
    workers = min(workers, num_agents)
    size, extra = divmod(num_agents, workers)
    groups, start = [], 0
    for w in range(workers):
        end = start + size + (1 if w < extra else 0)
        groups.append(list(range(start, end)))
        start = end
    return groups


class _StopRequest:
    """SIGINT/SIGTERM/SIGUSR2 set a flag; the loop checkpoints at the end of the current episode and returns.

    Inside a job system that handles these signals itself (submitit: USR2 = checkpoint and requeue the job, TERM =
    log it), its handler gets the signal too, once lfcs has checkpointed: on leaving, the handler is called and the
    process exits without a result. Returning normally would let submitit record the partial run as a finished job,
    and a job that Slurm requeues, times out or cancels would then be reported done before it is.
    """

    def __init__(self):
        self.flag = False
        self.received = []  # in order of arrival, each once
        self.previous = {}

    def __enter__(self):
        for sig in STOP_SIGNALS:
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.flag = True
        if signum not in self.received:
            self.received.append(signum)

    def __exit__(self, exc_type, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        handlers = [(sig, self.previous[sig]) for sig in self.received]
        handlers = [(sig, h) for sig, h in handlers if callable(h) and h is not signal.default_int_handler]
        if exc_type is None and handlers:
            for sig, handler in handlers:  # submitit: TERM only logs; USR2 dumps the job, requeues it, sys.exit
                handler(sig, None)
            raise SystemExit(128 + handlers[-1][0])


def _command_line_overrides() -> list[str] | None:
    """The overrides given on the command line (inside a Hydra app), else None."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else None


def train(cfg: DictConfig) -> dict:
    validate(cfg)
    probe_env(cfg)
    run_dir, cfg, history = prepare_run_dir(cfg, _command_line_overrides())
    groups = agent_groups(cfg.num_agents, cfg.workers)
    done = sum(len(rows) for rows in history.values())
    steps = [int(history[b][-1]["env_steps"]) if history.get(b) else 0 for b in range(cfg.num_agents)]
    logger = RunLogger(
        run_dir,
        cfg.num_agents,
        cfg.num_agents * cfg.iterations,
        done,
        sorted((row for rows in history.values() for row in rows), key=lambda r: (r["episode"], r["agent"])),
        flatten_hparams(OmegaConf.to_container(cfg, resolve=True)),
        OmegaConf.to_yaml(cfg, resolve=True),
        steps if done else None,
        cfg.progress,
    )
    interrupted, started = False, time.perf_counter()
    try:
        with _StopRequest() as stop:
            if len(groups) == 1:
                torch.set_num_threads(1)
                run_group(cfg, groups[0], run_dir, logger.log, lambda: stop.flag)
            else:
                run_workers(cfg, groups, run_dir, logger.log, lambda: stop.flag)
            interrupted = stop.flag
        summary = summarize(run_dir / "metrics.csv", cfg)
        logger.log_objective(summary["objective"])
    finally:
        logger.close()
    summary["wall_clock_s"] = time.perf_counter() - started  # of this invocation (a resume counts its own)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    if interrupted:
        print(f"stopped on request; resume with: python scripts/train.py resume={run_dir}")
    return summary


def summarize(metrics_csv: Path, cfg: DictConfig) -> dict:
    """The run's objective: METHOD.md §4 metric over the last ``objective_windows`` windows, mean over agents."""
    import csv

    per_agent: dict[int, list[tuple[int, float]]] = {}
    with open(metrics_csv) as handle:
        for row in csv.DictReader(handle):
            per_agent.setdefault(int(float(row["agent"])), []).append(
                (int(float(row["episode"])), float(row["reward_mean50"]))
            )
    finals = []
    for rows in per_agent.values():
        windows = [value for episode, value in rows if episode % WINDOW == 0] or [rows[-1][1]]
        tail = windows[-cfg.objective_windows :]
        finals.append(sum(tail) / len(tail))
    objective = sum(finals) / len(finals) if finals else float("nan")
    return {
        "objective": objective,
        "final_reward_per_agent": finals,
        "episodes_per_agent": {a: len(r) for a, r in per_agent.items()},
        "columns": CSV_COLUMNS,
    }
