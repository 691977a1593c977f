"""Masked CartPole: CartPole-v1 with its two velocities removed, a task that needs memory.

The observation is [x, theta] (cart position, pole angle) of CartPole-v1's [x, x_dot, theta, theta_dot]; the
dynamics, reward, termination, reset distribution and rendering are CartPole-v1's. A policy that sees one step
cannot tell which way the pole is falling: it must infer the velocities from successive inputs. The registered id
``lfcs/MaskedCartPole-v0`` cuts episodes at 500 steps, as CartPole-v1 does.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

KEPT = np.array([0, 2])  # x, theta of CartPole's [x, x_dot, theta, theta_dot]


class MaskedCartPoleEnv(CartPoleEnv):
    def __init__(self, render_mode: str | None = None, **kwargs):
        super().__init__(render_mode=render_mode, **kwargs)
        full = self.observation_space
        self.observation_space = spaces.Box(full.low[KEPT], full.high[KEPT], dtype=full.dtype)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = super().reset(seed=seed, options=options)
        return obs[KEPT], info

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs[KEPT], reward, terminated, truncated, info
