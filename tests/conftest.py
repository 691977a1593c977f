"""Shared helpers: compose the real Hydra config exactly as scripts/train.py does."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from lfcs.config import register_schema

ROOT = Path(__file__).resolve().parents[1]
GOLDEN_DIR = ROOT.parent / "shared" / "golden"
register_schema()
torch.set_num_threads(1)

# Small, quick settings for tests that run whole episodes.
SMALL = ["network.num_neurons=40", "progress=false"]
# Every learner extension at once (K stored episodes, TD critic, PPO clipping, terminal credit) with a learned W_rec.
EVERY_EXTENSION = [
    "network.rec_std=0.1",
    "learner.learn_rec=true",
    "learner.rec_lr=5e-4",
    "learner.replay_episodes=2",
    "learner.critic=td",
    "learner.clip=ppo",
    "learner.terminal_credit=true",
]


def make_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def read_metrics(path: Path, drop=("sps", "sps_total")) -> list[dict]:
    with open(path) as handle:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(handle)]


def run_script(
    *args: str, timeout: float = 300, env: dict | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess:
    """Run a script of the repository (path relative to ROOT) as a user would, from ``cwd``."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, str(ROOT / args[0]), *args[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def load_script(name: str):
    """A module of scripts/ (not a package), loaded from its file so tests can call its functions in-process."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def cfg_factory():
    return make_cfg


def session_processes(session_id: int) -> list[int]:
    """Live processes of a session (Linux /proc; zombies excluded): a run's parent and its workers."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, _, session = stat.read_text().rsplit(")", 1)[1].split()[:4]
        except (OSError, ValueError):
            continue
        if int(session) == session_id and state != "Z":
            pids.append(int(stat.parent.name))
    return pids


def lfcs_run(run_dir: Path, seeds: int, episodes: int, reward, extra=lambda episode: {}) -> None:
    """A run directory as scripts/train.py leaves it (config.yaml by lfcs's own code): reward_mean50 of every row
    ``reward(agent, episode)``, the columns ``extra(episode)`` names as given, every other metrics column 0."""
    from lfcs.running.logger import CSV_COLUMNS
    from lfcs.running.rundir import prepare_run_dir

    prepare_run_dir(make_cfg("env=cartpole", f"num_agents={seeds}", f"iterations={episodes}", f"run_dir={run_dir}"))
    with open(run_dir / "metrics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, CSV_COLUMNS)
        writer.writeheader()
        for episode in range(1, episodes + 1):
            for agent in range(seeds):
                row = {k: 0.0 for k in CSV_COLUMNS} | {"agent": agent, "episode": episode} | extra(episode)
                writer.writerow(row | {"reward_mean50": reward(agent, episode)})
    (run_dir / "summary.json").write_text(json.dumps({"wall_clock_s": 1.0}))
