"""Pong-100, the paper's protocol (METHOD.md §4), as a gymnasium environment.

ALE Pong-v5 from RAM (difficulty 0, v5 defaults: frameskip 4, sticky actions 0.25). Each episode: reset, then
1 + 20 NOOP steps that the agent does not see, then agent steps; the registered id ``lfcs/Pong100-v0`` cuts
the episode at 100 agent steps (gymnasium's TimeLimit, ``max_episode_steps``). The
observation is 4 RAM bytes / 255 (ball x, opponent paddle y, player paddle y, ball y); the 3 actions are NOOP,
RIGHT (up), LEFT (down), i.e. ALE actions 0, 2, 3. ``render_mode="rgb_array"``: ``render()`` returns the
emulator's screen (210 x 160 x 3, uint8); rendering does not change the dynamics.
"""

from __future__ import annotations

import ale_py
import gymnasium as gym
import numpy as np
from gymnasium import spaces

RAM_BYTES = (49, 50, 51, 54)  # ball x, opponent paddle y, player paddle y, ball y
RAM_SCALE = 255.0
ACTIONS = (0, 2, 3)  # indices into Pong's minimal action set: NOOP, RIGHT (up), LEFT (down)
ACTION_NAMES = ("NOOP", "UP", "DOWN")
NOOP = 0
SKIPPED_NOOP_STEPS = 1 + 20  # after reset, before the agent acts


class Pong100Env(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}  # 15 agent steps of 4 frames: 60 Hz / 4
    action_names = ACTION_NAMES

    def __init__(
        self,
        skipped_noop_steps: int = SKIPPED_NOOP_STEPS,
        difficulty: int = 0,
        repeat_action_probability: float = 0.25,
        frameskip: int = 4,
        render_mode: str | None = None,
    ):
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode={render_mode!r} is not allowed: one of {self.metadata['render_modes']}")
        self.render_mode = render_mode
        gym.register_envs(ale_py)
        self._ale_env = gym.make(
            "ALE/Pong-v5",
            obs_type="ram",
            difficulty=difficulty,
            repeat_action_probability=repeat_action_probability,
            frameskip=frameskip,
            render_mode=render_mode,
        ).unwrapped
        self.skipped_noop_steps = int(skipped_noop_steps)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(len(RAM_BYTES),), dtype=np.float64)
        self.action_space = spaces.Discrete(len(ACTIONS))
        self._ram_index = np.array(RAM_BYTES)

    def _observe(self, ram: np.ndarray) -> np.ndarray:
        return ram[self._ram_index].astype(np.float64) / RAM_SCALE

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        ram, info = self._ale_env.reset(seed=seed)
        for _ in range(self.skipped_noop_steps):
            ram, _, terminated, truncated, info = self._ale_env.step(NOOP)
        return self._observe(ram), info

    def step(self, action):
        ram, reward, terminated, truncated, info = self._ale_env.step(ACTIONS[int(action)])
        return self._observe(ram), float(reward), bool(terminated), bool(truncated), info

    def render(self) -> np.ndarray | None:
        return self._ale_env.render() if self.render_mode == "rgb_array" else None

    # Everything in the emulator that affects future episodes (game state and its RNG), for exact resume.
    def get_state(self) -> bytes:
        return bytes(self._ale_env.ale.cloneState(include_rng=True).serialize())

    def set_state(self, state: bytes) -> None:
        self._ale_env.ale.restoreState(ale_py.ALEState(state))

    def close(self):
        self._ale_env.close()
