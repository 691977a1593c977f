"""The environments: Pong-100 (METHOD.md §4), masked CartPole, and the observation scaling of config group env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import envs
from envs.wrappers import ScaledObservation
from lfcs import train
from lfcs.environments import env_state, episode_horizon, make_env, make_env_from_config, set_env_state
from lfcs.errors import ConfigError
from lfcs.export.evaluate import evaluate
from lfcs.export.saved_agent import load_agent
from lfcs.running.agents import AgentGroup
from tests.conftest import make_cfg


def test_check_env_passes():
    check_env(gym.make(envs.PONG100_ID).unwrapped)


def test_protocol():
    env = gym.make(envs.PONG100_ID)
    assert env.action_space.n == 3 and env.observation_space.shape == (4,)
    inner = env.unwrapped._ale_env
    assert inner.ale.cloneState().getDifficulty() == 0
    assert inner.ale.getFloat("repeat_action_probability") == 0.25
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float64 and np.all((0 <= obs) & (obs <= 1))
    ram = inner.ale.getRAM()
    np.testing.assert_array_equal(obs, ram[[49, 50, 51, 54]] / 255.0)
    assert inner.ale.getEpisodeFrameNumber() == 21 * 4  # 1 + 20 NOOP agent steps at frameskip 4
    steps, done = 0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        steps, done = steps + 1, terminated or truncated
    assert steps == 100 and truncated


def test_env_state_round_trip_reproduces_the_next_episode():
    def episode(env):
        env.reset()
        return [env.step(i % 3)[0].tolist() for i in range(30)]

    env = gym.make(envs.PONG100_ID)
    env.reset(seed=5)
    saved = env_state(env)
    first = episode(env)
    set_env_state(env, saved)
    assert episode(env) == first
    cart = gym.make("CartPole-v1")
    cart.reset(seed=1)
    saved = env_state(cart)
    a = cart.reset()[0]
    set_env_state(cart, saved)
    np.testing.assert_array_equal(cart.reset()[0], a)


# Observation scaling (env.obs_shift / env.obs_scale) and masked CartPole.

CARTPOLE_SHIFT, CARTPOLE_SCALE = [-2.4, -3.0, -0.20944, -3.5], [4.8, 6.0, 0.41888, 7.0]


class _FixedObservation(gym.Env):
    """Always observes ``VALUE``: inside its Box [-1, 1] in the first dimension, beyond it in the others."""

    VALUE = np.array([0.5, -3.0, 7.0])
    observation_space = gym.spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float64)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.VALUE.copy(), {}

    def step(self, action):
        return self.VALUE.copy(), 0.0, False, False, {}


def test_scaling_maps_a_known_observation_and_never_clips():
    env = ScaledObservation(_FixedObservation(), shift=np.array([-1.0, 0.0, 1.0]), scale=np.array([2.0, 4.0, 0.5]))
    expected = [(0.5 + 1.0) / 2.0, -3.0 / 4.0, (7.0 - 1.0) / 0.5]  # 0.75, -0.75, 12.0
    np.testing.assert_array_equal(env.reset(seed=0)[0], expected)
    np.testing.assert_array_equal(env.step(0)[0], expected)
    np.testing.assert_array_equal(env.observation_space.low, [0.0, -0.25, -4.0])  # (low - shift) / scale
    np.testing.assert_array_equal(env.observation_space.high, [1.0, 0.25, 0.0])
    assert not env.observation_space.contains(env.step(0)[0])  # beyond the bounds, as the raw value was


def test_cartpole_scaling_passes_values_beyond_the_nominal_range():
    env = make_env("CartPole-v1", None, {}, CARTPOLE_SHIFT, CARTPOLE_SCALE)
    env.reset(seed=0)
    env.unwrapped.state = np.array([3.6, -7.5, 0.5, 10.0])  # every value outside its nominal range [-c, c]
    obs, *_ = env.step(0)
    raw = np.array(env.unwrapped.state, dtype=np.float32)  # what CartPole itself reports after the step
    expected = (raw.astype(np.float64) - np.array(CARTPOLE_SHIFT)) / np.array(CARTPOLE_SCALE)
    np.testing.assert_array_equal(obs, expected)
    assert obs.dtype == np.float64
    assert obs[0] > 1 and obs[1] < 0 and obs[2] > 1 and obs[3] > 1  # scaled past [0, 1], not clipped


def test_scaling_of_one_number_and_shift_only():
    env = make_env("CartPole-v1", None, {}, None, 2.0)
    first, _ = env.reset(seed=3)
    raw, _ = gym.make("CartPole-v1").reset(seed=3)
    np.testing.assert_array_equal(first, raw.astype(np.float64) / 2.0)
    env = make_env("CartPole-v1", None, {}, 1.0, None)
    np.testing.assert_array_equal(env.reset(seed=3)[0], raw.astype(np.float64) - 1.0)


def test_scaled_observation_space_bounds():
    env = make_env("CartPole-v1", None, {}, CARTPOLE_SHIFT, CARTPOLE_SCALE)
    space, raw = env.observation_space, gym.make("CartPole-v1").observation_space
    assert space.dtype == np.float64 and space.shape == (4,)
    np.testing.assert_allclose(space.low[[0, 2]], [-0.5, -0.5], atol=1e-3)  # CartPole allows +-2c: (-2c + c) / 2c
    np.testing.assert_allclose(space.high[[0, 2]], [1.5, 1.5], atol=1e-3)
    assert np.all(np.isinf(space.low[[1, 3]])) and np.all(np.isinf(space.high[[1, 3]]))
    np.testing.assert_array_equal(space.high, (raw.high.astype(np.float64) - CARTPOLE_SHIFT) / CARTPOLE_SCALE)
    env.action_space.seed(0)
    obs, _ = env.reset(seed=1)
    for _ in range(200):  # observations of a random play stay inside the mapped bounds
        assert space.contains(obs)
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    check_env(env, skip_render_check=True)  # no pygame here: CartPole renders with it


def test_no_scaling_keeps_the_env_as_registered():
    env = make_env("CartPole-v1")
    assert env.observation_space == gym.make("CartPole-v1").observation_space
    assert env.spec.max_episode_steps == 500


def test_scaled_env_keeps_its_step_limit_and_state_round_trip():
    env = make_env("CartPole-v1", 30, {}, CARTPOLE_SHIFT, CARTPOLE_SCALE)
    assert episode_horizon(env) == 30
    env.reset(seed=1)
    saved = env_state(env)
    first = env.reset()[0]
    set_env_state(env, saved)
    np.testing.assert_array_equal(env.reset()[0], first)


@pytest.mark.parametrize(
    "shift,scale,words",
    [
        (None, [1.0, 2.0], ["env.obs_scale=[1.0, 2.0]", "list of 4", "CartPole-v1"]),
        ([0.0, 1.0, 2.0], None, ["env.obs_shift=[0.0, 1.0, 2.0]", "list of 4", "CartPole-v1"]),
    ],
)
def test_wrong_length_is_a_config_error(shift, scale, words):
    with pytest.raises(ConfigError) as caught:
        make_env("CartPole-v1", None, {}, shift, scale)
    for word in words:
        assert word in str(caught.value)


def test_masked_cartpole_passes_the_env_checker():
    env = gym.make(envs.MASKED_CARTPOLE_ID)
    check_env(env.unwrapped, skip_render_check=True)  # no pygame here: CartPole renders with it
    assert env.spec.max_episode_steps == 500
    assert env.observation_space.shape == (2,) and env.action_space.n == 2


def test_masked_cartpole_is_cartpole_without_velocities():
    """Same seed and actions: the masked observation is the full one at indices 0 (x) and 2 (theta)."""
    masked, full = gym.make(envs.MASKED_CARTPOLE_ID), gym.make("CartPole-v1")
    actions = np.random.default_rng(0).integers(0, 2, size=500)
    for seed in (0, 7):
        obs, _ = masked.reset(seed=seed)
        reference, _ = full.reset(seed=seed)
        np.testing.assert_array_equal(obs, reference[[0, 2]])
        for action in actions:
            obs, reward, terminated, truncated, _ = masked.step(int(action))
            reference, reward_full, terminated_full, truncated_full, _ = full.step(int(action))
            np.testing.assert_array_equal(obs, reference[[0, 2]])
            assert (reward, terminated, truncated) == (reward_full, terminated_full, truncated_full)
            if terminated or truncated:
                break
    space = masked.observation_space
    np.testing.assert_array_equal(space.high, full.observation_space.high[[0, 2]])


def test_masked_cartpole_is_deterministic_under_reset_seed():
    def episode(seed):
        env = gym.make(envs.MASKED_CARTPOLE_ID)
        out = [env.reset(seed=seed)[0].tolist()]
        for i in range(40):
            obs, _, terminated, truncated, _ = env.step(i % 2)
            out.append(obs.tolist())
            if terminated or truncated:
                break
        return out

    assert episode(4) == episode(4)
    assert episode(4) != episode(5)


def test_env_configs_scale_to_their_observation_size():
    """Every conf/env file builds, and the scaling it sets fits its env's observation (CartPole: x / c)."""
    for name in ("cartpole", "masked_cartpole", "pong100", "pong100_nosticky"):
        cfg = make_cfg(f"env={name}")
        env = make_env_from_config(cfg.env)
        obs, _ = env.reset(seed=0)
        assert env.observation_space.contains(obs), name
        assert episode_horizon(env) == {"pong100": 100, "pong100_nosticky": 100}.get(name, 500), name
        env.close()
    cart = make_cfg("env=cartpole").env
    assert cart.obs_shift is None and list(cart.obs_scale) == [0.5, 0.5, 0.05, 0.5]
    masked = make_cfg("env=masked_cartpole").env
    assert masked.obs_shift is None
    assert list(masked.obs_scale) == [cart.obs_scale[i] for i in (0, 2)]


def test_pong100_nosticky_has_no_sticky_actions():
    cfg = make_cfg("env=pong100_nosticky")
    env = make_env_from_config(cfg.env)
    assert env.unwrapped._ale_env.ale.getFloat("repeat_action_probability") == 0.0
    assert cfg.env.id == envs.PONG100_ID


def test_training_evaluation_and_checkpoint_see_the_same_scaled_inputs(tmp_path):
    run_dir = tmp_path / "run"
    overrides = ["env=cartpole", "network.num_neurons=20", "iterations=2", "eval_every=2", "eval_episodes=3"]
    train(make_cfg(*overrides, "progress=false", f"run_dir={run_dir}"))
    group = AgentGroup(make_cfg(*overrides), [0])
    assert isinstance(group.envs[0], ScaledObservation)
    saved = load_agent(run_dir)
    assert isinstance(make_env_from_config(saved.cfg.env), ScaledObservation)  # the checkpoint's config scales too
    result = evaluate(saved, episodes=3, progress=False)
    assert result["env"]["obs_scale"] == list(make_cfg("env=cartpole").env.obs_scale)
    assert result["env"].get("obs_shift") is None
    events = EventAccumulator(str(run_dir / "tb" / "agent_0"))
    events.Reload()
    (during_training,) = events.Scalars("eval/return_mean")  # the same held-out episodes, in training's own envs
    assert during_training.value == pytest.approx(result["mean"], rel=1e-6)
