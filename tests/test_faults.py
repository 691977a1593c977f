"""Faults lose nothing: exact resume, SIGKILL at any moment (even mid-checkpoint), SIGTERM, NaN."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lfcs import checkpoint, train
from lfcs.checkpoint import KILL_BEFORE_RENAME_ENV
from lfcs.config import ConfigError
from tests.bad_envs import BAD_STEP
from tests.conftest import ROOT, SMALL, make_cfg, read_metrics, run_script, session_processes

TINY = ["network.num_neurons=20", "progress=false", "num_agents=2", "checkpoint_every=1"]


def final_weights(run_dir):
    (path,) = (run_dir / "checkpoints").glob("*.pt")
    state = checkpoint.load(path)
    return state["new_policy"]["w_out"], state["ref_policy"]["w_out"], state["adam"]


def all_weights(run_dir) -> list[torch.Tensor]:
    """pi_new's W_out of every checkpoint file (one per worker), in file order."""
    return [checkpoint.load(p)["new_policy"]["w_out"] for p in sorted((run_dir / "checkpoints").glob("*.pt"))]


def sorted_metrics(run_dir) -> list[dict]:
    """Rows by (agent, episode): with several workers the arrival order of rows is not deterministic."""
    return sorted(read_metrics(run_dir / "metrics.csv"), key=lambda r: (int(r["agent"]), int(r["episode"])))


RESUME_CASES = {
    "lfcs": ["learner=lfcs"],
    "eprop": ["learner=eprop"],
    # The stored episodes, the critic and its Adam state are part of the checkpoint.
    "replay3-critic-ppo": ["learner.replay_episodes=3", "learner.critic=td", "learner.clip=ppo"],
}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_resume_equals_uninterrupted_bit_for_bit(tmp_path, case):
    whole, split, knobs = tmp_path / "whole", tmp_path / "split", RESUME_CASES[case]
    train(make_cfg(*SMALL, *knobs, "num_agents=2", "iterations=4", f"run_dir={whole}"))
    train(make_cfg(*SMALL, *knobs, "num_agents=2", "iterations=2", f"run_dir={split}"))
    train(make_cfg(*SMALL, *knobs, "num_agents=2", "iterations=4", f"run_dir={split}", "resume=true"))
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


def test_a_run_directory_of_an_earlier_version_continues(tmp_path):
    """A config.yaml written before a key existed (here learner.rec_lr, learner.critic): rerunning the command
    continues the run as if uninterrupted; setting the missing key to anything but its default is refused."""
    whole, split, knobs = tmp_path / "whole", tmp_path / "split", [*SMALL, "num_agents=2"]
    train(make_cfg(*knobs, "iterations=4", f"run_dir={whole}"))
    train(make_cfg(*knobs, "iterations=2", f"run_dir={split}"))
    stored = (split / "config.yaml").read_text()
    older = "\n".join(line for line in stored.splitlines() if not line.strip().startswith(("rec_lr:", "critic:")))
    assert older != stored
    (split / "config.yaml").write_text(older + "\n")
    with pytest.raises(ConfigError, match="learner.critic='td' is not allowed here"):
        train(make_cfg(*knobs, "iterations=4", f"run_dir={split}", "learner.critic=td"))
    train(make_cfg(*knobs, "iterations=4", f"run_dir={split}"))
    assert read_metrics(whole / "metrics.csv") == read_metrics(split / "metrics.csv")
    assert torch.equal(final_weights(whole)[0], final_weights(split)[0])


def command(run_dir, iterations=6, workers=1):
    return [
        sys.executable,
        "scripts/train.py",
        *TINY,
        f"iterations={iterations}",
        f"workers={workers}",
        f"run_dir={run_dir}",
    ]


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


WORKER_ITERATIONS = 40  # long enough that workers left behind by a killed parent would still be running


@pytest.fixture(scope="module")
def reference_workers_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ref2") / "run"
    result = subprocess.run(command(run_dir, WORKER_ITERATIONS, workers=2), cwd=ROOT, capture_output=True)
    assert result.returncode == 0, result.stderr
    return sorted_metrics(run_dir), all_weights(run_dir)


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


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_checkpoints_and_says_how_to_resume(tmp_path, request, workers):
    """One process: SIGTERM to it. Two workers: SIGINT to the whole group, as Ctrl-C in a terminal sends it."""
    run_dir, iterations = tmp_path / "run", 6 if workers == 1 else WORKER_ITERATIONS
    cmd = command(run_dir, iterations, workers)
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=workers > 1, **pipes)
    wait_for_checkpoints(run_dir, 1, proc)
    if workers == 1:
        proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert f"resume={run_dir}" in out + err
    done = len(read_metrics(run_dir / "metrics.csv"))
    assert 2 <= done < 2 * iterations
    states = [checkpoint.load(p) for p in (run_dir / "checkpoints").glob("*.pt")]
    assert sum(s["episode"] * len(s["agents"]) for s in states) == done  # the checkpoints hold what was logged
    result = run_script("scripts/train.py", f"resume={run_dir}", f"iterations={iterations}")
    assert result.returncode == 0, result.stderr
    if workers == 1:
        rows, weights = request.getfixturevalue("reference_run")
        assert read_metrics(run_dir / "metrics.csv") == rows
        assert torch.equal(final_weights(run_dir)[0], weights)
    else:
        rows, weights = request.getfixturevalue("reference_workers_run")
        assert sorted_metrics(run_dir) == rows
        assert all(torch.equal(a, b) for a, b in zip(all_weights(run_dir), weights, strict=True))


def checkpoint_stamps(run_dir) -> dict:
    return {p.name: p.stat().st_mtime_ns for p in (run_dir / "checkpoints").iterdir()}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_the_parent_alone_takes_its_workers_and_rerun_ends_identical(tmp_path, reference_workers_run):
    run_dir = tmp_path / "run"
    cmd = command(run_dir, WORKER_ITERATIONS, workers=2)
    # Its own session, so that its workers can be found; the kill goes to the parent alone, not the group.
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_checkpoints(run_dir, 2, proc)
        assert proc.poll() is None, "the run ended before the kill"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.time() + 3
        while session_processes(proc.pid) and time.time() < deadline:
            time.sleep(0.05)
        assert session_processes(proc.pid) == [], "workers outlived their parent"
        stamps = checkpoint_stamps(run_dir)
        time.sleep(1.0)
        assert checkpoint_stamps(run_dir) == stamps, "checkpoints were written after the parent died"
    finally:
        for pid in session_processes(proc.pid):  # leave nothing behind if the test fails
            os.kill(pid, signal.SIGKILL)
    rerun = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    rows, weights = reference_workers_run
    assert sorted_metrics(run_dir) == rows
    assert all(torch.equal(a, b) for a, b in zip(all_weights(run_dir), weights, strict=True))


def run_bad_env(run_dir, env_id, workers):
    return run_script(
        "scripts/train.py",
        *TINY,
        "iterations=5",
        f"env.id=tests.bad_envs:{env_id}",
        "env.max_episode_steps=10",
        f"workers={workers}",
        f"run_dir={run_dir}",
        env={"PYTHONPATH": str(ROOT)},
    )


def check_stopped_at_episode_2(result, run_dir, workers) -> str:
    """Exit 3, one line naming an agent and episode 2 (episodes count from 0), its last good checkpoint kept."""
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    agents = ("agent 0",) if workers == 1 else ("agent 0", "agent 1")  # two workers fail: either one first
    assert "non-finite" in line and any(a in line for a in agents) and "episode 2" in line, line
    failed = int(re.search(r"agent (\d+)", line).group(1))
    states = [checkpoint.load(p) for p in (run_dir / "checkpoints").glob("*.pt")]
    assert len(states) == workers
    for state in states:  # the failing agent's group kept episode 2; another worker stopped wherever it was
        assert state["episode"] == 2 if failed in state["agents"] else state["episode"] <= 2
        assert torch.isfinite(state["new_policy"]["w_out"]).all()
    return line


@pytest.mark.parametrize("workers", [1, 2])
def test_non_finite_weights_stop_the_run_and_keep_the_last_checkpoint(tmp_path, workers):
    check_stopped_at_episode_2(run_bad_env(tmp_path / "run", "InfReward-v0", workers), tmp_path / "run", workers)


@pytest.mark.parametrize(
    "env_id, quantity, workers",
    [("NaNObservation-v0", "observation", 1), ("NaNObservation-v0", "observation", 2), ("NaNReward-v0", "reward", 1)],
)
def test_non_finite_env_output_stops_the_run(tmp_path, env_id, quantity, workers):
    line = check_stopped_at_episode_2(run_bad_env(tmp_path / "run", env_id, workers), tmp_path / "run", workers)
    assert f"non-finite {quantity} from env tests.bad_envs:{env_id}" in line, line
    assert f"at step {BAD_STEP}" in line, line
