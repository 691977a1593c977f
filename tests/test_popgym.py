"""POPGym tasks (envs/popgym_envs.py) and masked CartPole's controls: envs, step limits, one-hot inputs, runs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from lfcs.environments import env_state, episode_horizon, make_env_from_config, set_env_state
from lfcs.learning.acting import play_episode
from lfcs.running.agents import AgentGroup
from tests.conftest import SMALL, make_cfg, read_metrics, run_script

# conf/env file -> (registered id, POPGym's episode length, observation inputs after one-hot, actions)
POPGYM = {
    "popgym_position_only_cartpole_easy": ("lfcs/PopGymPositionOnlyCartPoleEasy-v0", 200, 2, 2),
    "popgym_repeat_previous_easy": ("lfcs/PopGymRepeatPreviousEasy-v0", 51, 4, 4),
    "popgym_count_recall_easy": ("lfcs/PopGymCountRecallEasy-v0", 51, 4, 27),
}


@pytest.mark.parametrize("name", list(POPGYM))
def test_each_popgym_env_builds_passes_the_checker_and_keeps_its_own_episode_length(name):
    env_id, length, inputs, actions = POPGYM[name]
    cfg = make_cfg(f"env={name}", *SMALL)
    env = make_env_from_config(cfg.env)
    assert env.spec.id == env_id and episode_horizon(env) == length == env.unwrapped.max_episode_length
    check_env(env.unwrapped, skip_render_check=True)
    group = AgentGroup(cfg, [0])
    assert group.encoder.out_size == inputs and group.new_policy.w_out.shape[1] == actions
    assert len(env.unwrapped.hidden_names) == len(env.unwrapped.hidden_state())
    # the state saved at an episode boundary replays the next episode
    env.reset(seed=3)
    saved = env_state(env)
    first = env.reset()[0]
    set_env_state(env, saved)
    assert np.array_equal(env.reset()[0], first)


def test_a_random_repeat_previous_episode_lasts_51_steps():
    env = gym.make("lfcs/PopGymRepeatPreviousEasy-v0")
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps, done = steps + 1, terminated or truncated
    assert steps == 51


@pytest.mark.parametrize("name", list(POPGYM))
def test_two_episodes_of_train_py_on_each_popgym_memory_experiment(tmp_path, name):
    """experiment=<env>_memory: masked_cartpole_memory's learner (ALIF, W_rec and W_in by e-prop, critic) on it."""
    run_dir = tmp_path / name
    result = run_script("scripts/train.py", f"experiment={name}_memory", "network.num_neurons=40", "iterations=2",
                        "progress=false", f"run_dir={run_dir}", "hydra.output_subdir=null")  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = read_metrics(run_dir / "metrics.csv")
    assert [r["episode"] for r in rows] == ["1", "2"]
    if name != "popgym_position_only_cartpole_easy":
        assert all(r["episode_length"] == "51.0" for r in rows)


def test_discrete_observations_enter_one_hot():
    cfg = make_cfg("env=popgym_count_recall_easy", *SMALL, "num_agents=2")
    group = AgentGroup(cfg, [0, 1])
    buffer, stats = play_episode(group.envs, group.ref_policy, group.generators, group.horizon, 0.99, [0, 1],
                                 group.backend, encoder=group.encoder)  # fmt: skip
    obs = buffer.obs.numpy()  # (51, 2, 4): [colour one-hot, query one-hot]
    assert set(np.unique(obs)) == {0.0, 1.0}
    assert (obs[:, :, :2].sum(-1) == 1).all() and (obs[:, :, 2:].sum(-1) == 1).all()


@pytest.mark.parametrize("control", ["previous", "difference"])
def test_masked_cartpole_controls(control):
    env = gym.make(envs.MASKED_CARTPOLE_ID, control=control)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4,)
    assert np.array_equal(obs[2:], obs[:2] if control == "previous" else np.zeros(2, dtype=np.float32))
    velocities = env.unwrapped.hidden_state()
    for action in (0, 1, 1):
        last = obs
        obs, *_ = env.step(action)
        if control == "previous":
            assert np.array_equal(obs[2:], last[:2])
        else:  # CartPole's Euler step: the one-step difference over tau is the previous step's velocity
            np.testing.assert_allclose(obs[2:], velocities, rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(obs[2:], (obs[:2] - last[:2]) / np.float32(0.02), rtol=1e-6)
        velocities = env.unwrapped.hidden_state()
    with pytest.raises(ValueError, match="env.kwargs.control"):
        gym.make(envs.MASKED_CARTPOLE_ID, control="acceleration")
