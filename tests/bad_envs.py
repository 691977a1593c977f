"""Environments that misbehave on purpose, for the fault tests (``env.id=tests.bad_envs:InfReward-v0``)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import register, registry

BAD_EPISODE = 3  # the episode (counting from 1) in which the env misbehaves
BAD_STEP = 4  # NaNObservation/NaNReward: the step (counting from 0) whose observation or reward is NaN


class InfRewardEnv(gym.Env):
    """Constant observations; rewards are 0, except +inf in one episode."""

    observation_space = gym.spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float64)
    action_space = gym.spaces.Discrete(3)

    def __init__(self):
        self.resets, self.steps = 0, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.resets, self.steps = self.resets + 1, 0
        return np.full(2, 0.5), {}

    def step(self, action):
        self.steps += 1
        reward = float("inf") if self.resets == BAD_EPISODE else 0.0
        return np.full(2, 0.5), reward, False, False, {}


class NaNObservationEnv(InfRewardEnv):
    """Rewards are 0; the observation of step ``BAD_STEP`` of one episode is NaN."""

    def step(self, action):
        self.steps += 1
        bad = self.resets == BAD_EPISODE and self.steps == BAD_STEP  # the observation the agent sees at BAD_STEP
        return np.full(2, np.nan if bad else 0.5), 0.0, False, False, {}


class NaNRewardEnv(InfRewardEnv):
    """The reward of step ``BAD_STEP`` of one episode is NaN, every other reward is 0."""

    def step(self, action):
        self.steps += 1
        bad = self.resets == BAD_EPISODE and self.steps == BAD_STEP + 1  # the reward for the action at BAD_STEP
        return np.full(2, 0.5), float("nan") if bad else 0.0, False, False, {}


for _name, _cls in (
    ("InfReward-v0", InfRewardEnv),
    ("NaNObservation-v0", NaNObservationEnv),
    ("NaNReward-v0", NaNRewardEnv),
):
    if _name not in registry:
        register(id=_name, entry_point=_cls, max_episode_steps=10)
