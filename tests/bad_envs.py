"""Environments that misbehave on purpose, for the fault tests (``env.id=tests.bad_envs:InfReward-v0``)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import register, registry

INF_REWARD_EPISODE = 3  # the episode (counting from 1) whose rewards are infinite


class InfRewardEnv(gym.Env):
    """Constant observations; rewards are 0, except +inf in one episode."""

    observation_space = gym.spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float64)
    action_space = gym.spaces.Discrete(3)

    def __init__(self):
        self.resets = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.resets += 1
        return np.full(2, 0.5), {}

    def step(self, action):
        reward = float("inf") if self.resets == INF_REWARD_EPISODE else 0.0
        return np.full(2, 0.5), reward, False, False, {}


if "InfReward-v0" not in registry:
    register(id="InfReward-v0", entry_point=InfRewardEnv, max_episode_steps=10)
