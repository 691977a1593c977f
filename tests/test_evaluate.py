"""scripts/evaluate.py: held-out evaluation of pi_ref, eval.json, agent look-up, video, greedy acting."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import envs
from lfcs import backends
from lfcs.environments import make_env
from lfcs.export.evaluate import HELDOUT_ENV_SEED_BASE, bootstrap_ci, evaluate, interquartile_mean, summarize
from lfcs.export.saved_agent import load_agent
from lfcs.learning.acting import play_episode
from tests.conftest import load_script, run_script
from tests.saved_runs import save_groups


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run directory of agents 0-1 (one file) and 2 (another file), after 2 training episodes."""
    run_dir = tmp_path_factory.mktemp("run")
    groups = save_groups(run_dir, [[0, 1], [2]], episodes=2)
    return run_dir, groups


def test_statistics_on_hand_computed_values():
    assert interquartile_mean(np.arange(1.0, 9.0)) == 4.5  # mean of 3, 4, 5, 6
    assert interquartile_mean(np.array([0.0, 1.0, 2.0, 3.0, 100.0])) == 2.0  # drop one value at each end
    assert bootstrap_ci(np.full(7, -1.5)) == (-1.5, -1.5)
    stats = summarize([-2.0, 0.0, 1.0, 1.0])
    assert stats["mean"] == 0.0 and stats["std"] == pytest.approx(np.std([-2, 0, 1, 1], ddof=1))
    low, high = stats["ci95"]
    assert -2.0 <= low < 0.0 < high <= 1.0
    assert summarize([-2.0, 0.0, 1.0, 1.0]) == stats  # fixed bootstrap seed
    assert summarize([3.0])["std"] is None


def test_greedy_plays_the_argmax_and_consumes_the_same_randomness(run):
    saved = load_agent(run[0], 0)
    env = make_env(envs.PONG100_ID)
    results = {}
    for greedy in (False, True):
        gen = torch.Generator().manual_seed(5)
        buffer, _ = play_episode(
            [env], saved.ref_policy, [gen], 100, 0.99, [7], backends.select("kernels", "cpu"), greedy=greedy
        )
        results[greedy] = (buffer, gen.get_state())
    greedy_buffer = results[True][0]
    np.testing.assert_array_equal(greedy_buffer.actions, greedy_buffer.ref_probs.argmax(-1))
    assert not torch.equal(results[False][0].actions, greedy_buffer.actions)  # sampling differs somewhere
    assert torch.equal(results[False][1], results[True][1])
    torch.testing.assert_close(results[False][0].ref_probs[0], greedy_buffer.ref_probs[0], rtol=0, atol=0)


def test_agent_ids_map_to_their_checkpoint_files(run):
    run_dir, groups = run
    for agent, group, index in ((0, groups[0], 0), (1, groups[0], 1), (2, groups[1], 0)):
        saved = load_agent(run_dir, agent)
        assert saved.agent == agent and saved.episode == 2 and saved.run_dir == run_dir
        assert torch.equal(saved.ref_policy.w_out[0], group.ref_policy.w_out[index])
        assert torch.equal(saved.ref_policy.w_in[0], group.ref_policy.w_in[index])
    assert load_agent(run_dir).agent == 0
    assert load_agent(run_dir / "checkpoints" / "agents_2-2.pt").agent == 2


def test_eval_json_is_byte_identical_across_processes_and_complete(run, tmp_path):
    run_dir = run[0]
    args = [str(run_dir), "--episodes", "3", "--policy", "sample", "--agent", "1"]
    first = run_script("scripts/evaluate.py", *args, "--out", str(tmp_path / "a.json"))
    assert first.returncode == 0, first.stderr
    assert "agent 1" in first.stdout and "IQM" in first.stdout and "evaluate" in first.stderr  # tqdm on stderr
    assert load_script("evaluate").main([*args, "--out", str(tmp_path / "b.json"), "--no-progress"]) == 0
    text = (tmp_path / "a.json").read_bytes()
    assert text == (tmp_path / "b.json").read_bytes()
    result = json.loads(text)
    assert result["env_seeds"] == [HELDOUT_ENV_SEED_BASE + i for i in range(3)]
    assert result["policy"] == "sample" and result["agent"] == 1 and result["checkpoint"]["episode"] == 2
    assert result["checkpoint"]["file"] == "agents_0-1.pt" and len(result["checkpoint"]["sha256"]) == 64
    assert len(result["returns"]) == 3 and result["mean"] == pytest.approx(np.mean(result["returns"]))
    assert {"std", "iqm", "ci95", "sample_seeds", "bootstrap"} <= set(result)


def test_default_output_is_the_run_directory(run):
    run_dir = run[0]
    assert load_script("evaluate").main([str(run_dir / "checkpoints" / "agents_2-2.pt"), "--episodes", "1",
                                     "--no-progress"]) == 0  # fmt: skip
    assert json.loads((run_dir / "eval.json").read_text())["agent"] == 2


@pytest.mark.parametrize(
    "args, words",
    [
        (["{run}/missing"], ["no checkpoint", "missing"]),
        (["{run}", "--agent", "5"], ["--agent 5", "0-1, 2-2"]),
        (["{run}/checkpoints/agents_0-1.pt", "--agent", "2"], ["--agent 2", "agents 0-1"]),
        (["{run}", "--episodes", "0"], ["--episodes 0"]),
        (["{run}", "--policy", "best"], ["--policy", "greedy"]),
    ],
)
def test_bad_input_is_one_line_and_exit_2(run, capsys, args, words):
    argv = [a.format(run=run[0]) for a in args]
    try:
        code = load_script("evaluate").main(argv)
    except SystemExit as exc:  # argparse's own checks
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert all(word in err for word in words), err


def test_rendering_leaves_pong100_unchanged():
    plain, rendered = gym.make(envs.PONG100_ID), gym.make(envs.PONG100_ID, render_mode="rgb_array")
    for env in (plain, rendered):
        env.reset(seed=3)
    assert plain.render() is None
    for t in range(40):
        a, b = plain.step(t % 3), rendered.step(t % 3)
        np.testing.assert_array_equal(a[0], b[0])
    frame = rendered.render()
    assert frame.shape == (210, 160, 3) and frame.dtype == np.uint8 and frame.any()


def test_video_is_a_readable_mp4_and_changes_no_result(run, tmp_path):
    import imageio.v2 as imageio

    from lfcs.export.video import canvas_size

    saved = load_agent(run[0], 0)
    video = tmp_path / "clip.mp4"
    with_video = evaluate(saved, episodes=2, video=video, video_episodes=1, progress=False)
    without = evaluate(saved, episodes=2, progress=False)
    assert with_video == without
    reader = imageio.get_reader(video)
    frames = [frame for frame in reader]
    reader.close()
    assert len(frames) == with_video["lengths"][0] == 100
    assert frames[0].shape == (*canvas_size((210, 160, 3)), 3)
    assert video.read_bytes()[4:8] == b"ftyp"  # an ISO media (MP4) file
