"""Small run directories with real checkpoints, for the evaluation and export tests (no training loop needed)."""

from __future__ import annotations

from pathlib import Path

from lfcs.running.agents import AgentGroup
from tests.conftest import make_cfg

TINY = ["network.num_neurons=50", "progress=false"]


def save_groups(run_dir: Path, groups: list[list[int]], *overrides: str, episodes: int = 1) -> list[AgentGroup]:
    """One checkpoint per group of agent ids, each after ``episodes`` training episodes."""
    cfg = make_cfg(*TINY, f"num_agents={sum(len(g) for g in groups)}", *overrides)
    saved = []
    for ids in groups:
        group = AgentGroup(cfg, ids)
        for _ in range(episodes):
            group.run_episode()
        group.save(run_dir)
        saved.append(group)
    return saved
