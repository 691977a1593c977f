"""Masked CartPole: CartPole-v1 with its two velocities removed, a task that needs memory.

The observation is [x, theta] (cart position, pole angle) of CartPole-v1's [x, x_dot, theta, theta_dot]; the
dynamics, reward, termination, reset distribution and rendering are CartPole-v1's. A policy that sees one step
cannot tell which way the pole is falling: it must infer the velocities from successive inputs. The registered id
``lfcs/MaskedCartPole-v0`` cuts episodes at 500 steps, as CartPole-v1 does.

Controls (``env.kwargs.control``) that bracket what a memory must supply; they are not the memory task:

- ``none`` (default): [x, theta].
- ``previous``: [x_t, theta_t, x_{t-1}, theta_{t-1}], the inputs plus a one-step copy at the raw scale (at the
  first step of an episode the copy is the first observation itself).
- ``difference``: [x_t, theta_t, (x_t - x_{t-1}) / tau, (theta_t - theta_{t-1}) / tau] with tau = 0.02 s, CartPole's
  time step: the well-scaled one-step difference, in the velocities' units (0 at the first step). CartPole moves by
  Euler steps, so this is exactly the previous step's x_dot and theta_dot.

``hidden_state()`` returns the velocities [x_dot, theta_dot] of the state the current observation came from
(``hidden_names``): the hidden variables that the decoding probe reads out of the network.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

KEPT = np.array([0, 2])  # x, theta of CartPole's [x, x_dot, theta, theta_dot]
HIDDEN = np.array([1, 3])  # x_dot, theta_dot
CONTROLS = ("none", "previous", "difference")


class MaskedCartPoleEnv(CartPoleEnv):
    hidden_names = ("x_dot", "theta_dot")

    def __init__(self, render_mode: str | None = None, control: str = "none", **kwargs):
        if control not in CONTROLS:
            raise ValueError(f"env.kwargs.control={control!r} is not allowed: one of {', '.join(CONTROLS)}")
        super().__init__(render_mode=render_mode, **kwargs)
        self.control = control
        full = self.observation_space
        low, high = full.low[KEPT], full.high[KEPT]
        if control == "previous":
            low, high = np.concatenate([low, low]), np.concatenate([high, high])
        elif control == "difference":
            # A one-step difference of a bounded position is bounded by the position's range over tau.
            span = (high - low) / self.tau
            low, high = np.concatenate([low, -span]), np.concatenate([high, span])
        self.observation_space = spaces.Box(low.astype(full.dtype), high.astype(full.dtype), dtype=full.dtype)
        self._previous = np.zeros(len(KEPT), dtype=full.dtype)

    def _observe(self, obs: np.ndarray) -> np.ndarray:
        kept = obs[KEPT]
        if self.control == "previous":
            kept = np.concatenate([kept, self._previous])
        elif self.control == "difference":
            kept = np.concatenate([kept, (kept - self._previous) / np.float32(self.tau)])
        self._previous = obs[KEPT].copy()
        return kept.astype(self.observation_space.dtype)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = super().reset(seed=seed, options=options)
        self._previous = obs[KEPT].copy()  # the first step's copy is itself, its difference 0
        return self._observe(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return self._observe(obs), reward, terminated, truncated, info

    def hidden_state(self) -> np.ndarray:
        """[x_dot, theta_dot] of the state the last observation came from (float64)."""
        return np.asarray(self.state, dtype=np.float64)[HIDDEN]
