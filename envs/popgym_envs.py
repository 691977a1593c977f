"""Three POPGym tasks (popgym 1.0.7, Morad et al. 2023) as lfcs envs, each declaring its hidden variables.

The dynamics, observations, rewards and episode ends are POPGym's own; these subclasses only add
``hidden_state()`` / ``hidden_names`` for the decoding probe (the quantity a memory must hold at each step):

- ``PositionOnlyCartPoleEasy``: CartPole without velocities, observation [x, theta] (Box), 200 steps (POPGym's
  ``max_episode_length``); reward 1/200 per step, so a full episode returns 1. Hidden: [x_dot, theta_dot].
- ``RepeatPreviousEasy``: one card per step, observation its suit (``Discrete(4)``); the action is the suit of the
  card dealt k = 4 cards back in the hand (reward +-1/48 from the 4th step on), 51 steps (52 cards). Hidden: the
  one-hot suit of that card (zeros while fewer than k cards are dealt).
- ``CountRecallEasy``: observation [dealt card's colour, queried colour] (``MultiDiscrete([2, 2])``); the next action
  is how many cards of the queried colour were dealt so far (27 actions, reward +-1/51), 51 steps. Hidden: that
  count over 26 (the most cards of one colour). Its info dict is copied (``check_env``).

POPGym's envs have a ``get_state()`` of their own (the hidden Markov state, not bytes); ``lfcs.environments``
therefore saves an env through ``get_state`` only where it also has ``set_state`` (Pong100), and these through
their ``np_random``, the only thing their resets draw from.
"""

from __future__ import annotations

import numpy as np
from popgym.envs.count_recall import CountRecallEasy
from popgym.envs.position_only_cartpole import PositionOnlyCartPoleEasy
from popgym.envs.repeat_previous import RepeatPreviousEasy

SUITS = 4


class PositionOnlyCartPole(PositionOnlyCartPoleEasy):
    hidden_names = ("x_dot", "theta_dot")

    def hidden_state(self) -> np.ndarray:
        return np.asarray(self.state, dtype=np.float64)[[1, 3]]


class RepeatPrevious(RepeatPreviousEasy):
    hidden_names = tuple(f"suit_{s}_k_back" for s in range(SUITS))

    def hidden_state(self) -> np.ndarray:
        out = np.zeros(SUITS)
        hand = self.deck["player"]
        if len(hand) >= self.k:
            out[int(self.deck.suits_idx[hand[-self.k]])] = 1.0
        return out


class CountRecall(CountRecallEasy):
    """POPGym's CountRecallEasy; its info dict returns the env's own count array, which gymnasium's ``check_env``
    refuses (a caller could change the env through it): here the info holds a copy."""

    hidden_names = ("count_of_query",)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = super().reset(seed=seed, options=options)
        return obs, {"counts": info["counts"].copy()}

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated, truncated, {"counts": info["counts"].copy()}

    def hidden_state(self) -> np.ndarray:
        return np.array([self.counts[self.query] / self.max_card_count], dtype=np.float64)
