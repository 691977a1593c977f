"""Faults lose nothing: exact resume, SIGKILL at any moment (even mid-checkpoint), SIGTERM, NaN."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lfcs import checkpoint, train
from lfcs.checkpoint import KILL_BEFORE_RENAME_ENV
from tests.conftest import ROOT, SMALL, make_cfg, read_metrics, run_script

TINY = ["network.num_neurons=20", "progress=false", "num_agents=2", "checkpoint_every=1"]


def final_weights(run_dir):
    (path,) = (run_dir / "checkpoints").glob("*.pt")
    state = checkpoint.load(path)
    return state["new_policy"]["w_out"], state["ref_policy"]["w_out"], state["adam"]


@pytest.mark.parametrize("learner", ["lfcs", "eprop"])
def test_resume_equals_uninterrupted_bit_for_bit(tmp_path, learner):
    whole, split = tmp_path / "whole", tmp_path / "split"
    train(make_cfg(*SMALL, f"learner={learner}", "num_agents=2", "iterations=4", f"run_dir={whole}"))
    train(make_cfg(*SMALL, f"learner={learner}", "num_agents=2", "iterations=2", f"run_dir={split}"))
    train(make_cfg(*SMALL, f"learner={learner}", "num_agents=2", "iterations=4", f"run_dir={split}", "resume=true"))
    assert read_metrics(whole / "metrics.csv") == read_metrics(split / "metrics.csv")
    for a, b in zip(final_weights(whole)[:2], final_weights(split)[:2]):
        assert torch.equal(a, b)
    adam_a, adam_b = final_weights(whole)[2], final_weights(split)[2]
    assert adam_a.keys() == adam_b.keys()
    for key in adam_a:
        assert torch.equal(adam_a[key], adam_b[key]), key
    for agent in (0, 1):  # TensorBoard continues: no split, no duplicate step
        events = EventAccumulator(str(split / "tb" / f"agent_{agent}"))
        events.Reload()
        assert [e.step for e in events.Scalars("charts/episodic_return")] == [100, 200, 300, 400]


def command(run_dir, iterations=6):
    return [sys.executable, "scripts/train.py", *TINY, f"iterations={iterations}", f"run_dir={run_dir}"]


def wait_for_checkpoints(run_dir, count, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if (run_dir / "metrics.csv").exists() and len(read_metrics(run_dir / "metrics.csv")) >= 2 * count:
            return
        time.sleep(0.05)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    assert subprocess.run(command(run_dir), cwd=ROOT, capture_output=True).returncode == 0
    return read_metrics(run_dir / "metrics.csv"), final_weights(run_dir)[0]


@pytest.mark.parametrize("kill_at", ["before-first-checkpoint", "mid-checkpoint-write", "after-two-episodes"])
def test_sigkill_then_rerun_ends_identical(tmp_path, reference_run, kill_at):
    run_dir = tmp_path / "run"
    env = {**os.environ}
    if kill_at == "mid-checkpoint-write":
        env[KILL_BEFORE_RENAME_ENV] = "3"
    proc = subprocess.Popen(command(run_dir), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if kill_at == "before-first-checkpoint":
        while not (run_dir / "config.yaml").exists() and proc.poll() is None:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    elif kill_at == "after-two-episodes":
        wait_for_checkpoints(run_dir, 2, proc)
        proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=120) == -signal.SIGKILL
    if kill_at == "mid-checkpoint-write":
        assert list((run_dir / "checkpoints").glob("*.tmp"))  # died with a half-done write on disk
    rerun = subprocess.run(command(run_dir), cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    rows, weights = reference_run
    assert read_metrics(run_dir / "metrics.csv") == rows
    assert torch.equal(final_weights(run_dir)[0], weights)


def test_sigterm_checkpoints_and_says_how_to_resume(tmp_path, reference_run):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(command(run_dir), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_checkpoints(run_dir, 1, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert f"resume={run_dir}" in out + err
    done = len(read_metrics(run_dir / "metrics.csv"))
    assert 2 <= done < 12
    state = checkpoint.load(next((run_dir / "checkpoints").glob("*.pt")))
    assert state["episode"] * 2 == done  # the checkpoint holds exactly what was logged
    result = run_script("scripts/train.py", f"resume={run_dir}", "iterations=6")
    assert result.returncode == 0, result.stderr
    rows, weights = reference_run
    assert read_metrics(run_dir / "metrics.csv") == rows
    assert torch.equal(final_weights(run_dir)[0], weights)


def test_non_finite_weights_stop_the_run_and_keep_the_last_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    result = run_script(
        "scripts/train.py",
        *TINY,
        "iterations=5",
        "env.id=tests.bad_envs:InfReward-v0",
        "env.max_episode_steps=10",
        f"run_dir={run_dir}",
        env={"PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 3, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "non-finite" in line and "agent 0" in line and "episode 2" in line  # episodes count from 0
    state = checkpoint.load(next((run_dir / "checkpoints").glob("*.pt")))
    assert state["episode"] == 2 and torch.isfinite(state["new_policy"]["w_out"]).all()
