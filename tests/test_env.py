"""Pong-100 (METHOD.md §4) as a registered gymnasium environment."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

import envs
from lfcs.rollout import env_state, set_env_state


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
