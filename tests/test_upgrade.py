"""A run directory whose checkpoints were written before metric columns were added (ADDED_COLUMNS) continues, and
ends bit for bit where a run of this version ends."""

from __future__ import annotations

import csv

import pytest
import torch

from lfcs import checkpoint, train
from lfcs.running.logger import ADDED_COLUMNS, CSV_COLUMNS, upgrade_history
from tests.conftest import SMALL, make_cfg, read_metrics

OLD = [c for c in CSV_COLUMNS if c not in ADDED_COLUMNS]


def as_earlier_version(run_dir) -> None:
    """Rewrite a run directory as the code before ADDED_COLUMNS wrote it: fewer history columns, fewer CSV columns."""
    keep = [CSV_COLUMNS.index(c) for c in OLD]
    for path in checkpoint.checkpoint_files(run_dir):
        state = checkpoint.load(path)
        state["history"] = state["history"][..., keep].contiguous()
        checkpoint.save_atomic(state, path)
    with open(run_dir / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    with open(run_dir / "metrics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, OLD, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def test_a_checkpoint_without_the_added_columns_resumes_to_the_same_end(tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    train(make_cfg(*SMALL, "num_agents=2", "iterations=4", f"run_dir={whole}"))
    train(make_cfg(*SMALL, "num_agents=2", "iterations=2", f"run_dir={split}"))
    as_earlier_version(split)
    assert checkpoint.load(checkpoint.checkpoint_files(split)[0])["history"].shape[-1] == len(OLD)
    train(make_cfg(*SMALL, "num_agents=2", "iterations=4", f"run_dir={split}", "resume=true"))
    assert read_metrics(whole / "metrics.csv") == read_metrics(split / "metrics.csv")
    runs = [checkpoint.load(checkpoint.checkpoint_files(d)[0])["history"] for d in (whole, split)]
    timeless = [i for i, c in enumerate(CSV_COLUMNS) if c not in ("sps", "sps_total")]
    assert torch.equal(runs[0][..., timeless], runs[1][..., timeless])


def test_upgrade_puts_each_column_in_its_place_and_refuses_other_widths():
    old = torch.arange(3 * len(OLD), dtype=torch.float64).view(3, len(OLD))
    new = upgrade_history(old)
    for column, value in ADDED_COLUMNS.items():
        assert (new[:, CSV_COLUMNS.index(column)] == value).all()
    for i, column in enumerate(OLD):
        assert torch.equal(new[:, CSV_COLUMNS.index(column)], old[:, i])
    assert upgrade_history(new) is new
    with pytest.raises(ValueError, match="metric columns"):
        upgrade_history(old[:, :-1])
