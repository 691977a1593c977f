"""Observation scaling for inputs that enter a spiking network as currents: x -> (x - shift) / scale, never clipped.

The network sees x_t through W_in ~ N(0, input_std^2) into neurons with bias h = -8 (METHOD.md §2), a scale chosen
for Pong-100's inputs in [0, 1]. Raw observations of other envs (CartPole's velocities, say) can be far larger or
smaller; this wrapper brings them to about unit range with fixed, documented numbers. Values beyond the nominal
range pass through scaled, not clipped, so the network sees everything the env reports.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class ScaledObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Observations ``(x - shift) / scale`` per dimension, as float64; the Box bounds are mapped the same way.

    ``shift`` and ``scale`` are float64 arrays of the observation's shape; every ``scale`` entry is finite and > 0
    (so the map keeps the order of the bounds, and an infinite bound stays infinite).
    """

    def __init__(self, env: gym.Env, shift: np.ndarray, scale: np.ndarray):
        shift, scale = np.asarray(shift, dtype=np.float64), np.asarray(scale, dtype=np.float64)
        gym.utils.RecordConstructorArgs.__init__(self, shift=shift.tolist(), scale=scale.tolist())  # for env.spec
        gym.ObservationWrapper.__init__(self, env)
        space = env.observation_space
        if not isinstance(space, spaces.Box):
            raise ValueError(f"observation scaling needs a Box observation space, not {space}")
        if shift.shape != space.shape or scale.shape != space.shape:
            raise ValueError(f"shift {shift.shape} and scale {scale.shape} must have the observation's shape")
        if not (np.all(np.isfinite(scale)) and np.all(scale > 0) and np.all(np.isfinite(shift))):
            raise ValueError("every scale must be finite and > 0, every shift finite")
        self.shift, self.scale = shift, scale
        low = (space.low.astype(np.float64) - shift) / scale
        high = (space.high.astype(np.float64) - shift) / scale
        self.observation_space = spaces.Box(low, high, dtype=np.float64)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return (np.asarray(observation, dtype=np.float64) - self.shift) / self.scale
