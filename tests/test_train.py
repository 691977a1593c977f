"""Smoke and determinism: train(cfg) end to end into a temporary run directory."""

from __future__ import annotations

import json

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lfcs import train
from lfcs.running.logger import TAGS
from tests.conftest import SMALL, make_cfg, read_metrics

REQUIRED_TAGS = {
    "charts/episodic_return",
    "charts/reward_mean50",
    "charts/SPS",
    "lfcs/mask_fraction",
    "lfcs/abs_log_ratio",
    "lfcs/approx_kl",
    "snn/firing_rate",
    "weights/w_out_norm",
}


def test_train_leaves_a_complete_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    summary = train(make_cfg(*SMALL, "num_agents=2", "iterations=3", f"run_dir={run_dir}"))
    assert (run_dir / "config.yaml").exists() and (run_dir / "summary.json").exists()
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["agents_0-1.pt"]
    rows = read_metrics(run_dir / "metrics.csv")
    assert [(int(r["agent"]), int(r["episode"])) for r in rows] == [(a, e) for e in (1, 2, 3) for a in (0, 1)]
    assert [int(r["env_steps"]) for r in rows if r["agent"] == "0"] == [100, 200, 300]
    assert json.loads((run_dir / "summary.json").read_text())["objective"] == summary["objective"]
    for agent in (0, 1):
        events = EventAccumulator(str(run_dir / "tb" / f"agent_{agent}"))
        events.Reload()
        scalars = set(events.Tags()["scalars"])
        assert REQUIRED_TAGS <= scalars
        assert [e.step for e in events.Scalars("charts/episodic_return")] == [100, 200, 300]
        assert "config" in "".join(events.Tags()["tensors"])  # the resolved config as text
    assert REQUIRED_TAGS <= {tag for tag, _ in TAGS.values()}


def test_same_seed_same_curve_and_seed_zero_is_a_seed(tmp_path):
    def curve(seed, name):
        run_dir = tmp_path / name
        train(make_cfg(*SMALL, "iterations=4", f"seed={seed}", f"run_dir={run_dir}"))
        return read_metrics(run_dir / "metrics.csv")

    first, second, other = curve(0, "a"), curve(0, "b"), curve(1, "c")
    assert first == second
    assert [r["w_out_norm"] for r in first] != [r["w_out_norm"] for r in other]


def test_two_workers_give_the_same_curves_as_one(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    train(make_cfg(*SMALL, "num_agents=2", "iterations=2", f"run_dir={one}"))
    train(make_cfg(*SMALL, "num_agents=2", "iterations=2", "workers=2", f"run_dir={two}"))
    key = lambda r: (r["agent"], r["episode"])  # noqa: E731
    assert sorted(read_metrics(one / "metrics.csv"), key=key) == sorted(read_metrics(two / "metrics.csv"), key=key)
    assert sorted(p.name for p in (two / "checkpoints").iterdir()) == ["agents_0-0.pt", "agents_1-1.pt"]


def test_float32_runs_and_keeps_its_dtype(tmp_path):
    from lfcs import checkpoint

    run_dir = tmp_path / "f32"
    train(make_cfg(*SMALL, "dtype=float32", "iterations=2", f"run_dir={run_dir}"))
    state = checkpoint.load(next((run_dir / "checkpoints").glob("*.pt")))
    assert state["new_policy"]["w_out"].dtype == torch.float32
