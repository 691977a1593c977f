"""The episode store between acting (pi_ref) and replay (pi_new). Time-major ``(T, B, ...)``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch


@dataclass(frozen=True)
class EpisodeBuffer:
    """One episode of B agents, as played by pi_ref.

    obs:            (T, B, I)  inputs x_t
    actions:        (T, B)     a_t ~ pi_ref (long)
    ref_probs:      (T, B, O)  q_t, pi_ref's probabilities when it acted
    rewards:        (T, B)     reward returned for a_t
    advantages:     (T, B)     A_t = r_{t-1} - V_{t-1} + gamma V_t, A_0 = 0 (METHOD.md §3)
    lengths:        (B,)       steps each agent actually played (entries past it are padding)
    spike_uniforms: (T, B, N)  the uniforms that drew pi_ref's stochastic spikes, or None (deterministic spikes).
                               Every replay pass reuses them (common random numbers), so rho measures the change of
                               the weights, not fresh noise.
    terminated:     (B,)       whether each agent's episode ended in a terminal state (not a time limit), or None
                               (every end terminal). Only the critic reads it: it bootstraps past a time limit.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    ref_probs: torch.Tensor
    rewards: torch.Tensor
    advantages: torch.Tensor
    lengths: torch.Tensor
    spike_uniforms: torch.Tensor | None = None
    terminated: torch.Tensor | None = None

    @property
    def horizon(self) -> int:
        return self.obs.shape[0]

    @property
    def num_agents(self) -> int:
        return self.obs.shape[1]


def advantages_from_rewards(rewards: torch.Tensor, gamma: float, values: torch.Tensor | None = None) -> torch.Tensor:
    """A_t = r_{t-1} - V_{t-1} + gamma V_t with A_0 = 0; rewards and values (T, B) -> (T, B).

    With no critic (V = 0, the published run) this is the previous step's reward.
    """
    adv = torch.zeros_like(rewards)
    adv[1:] = rewards[:-1]
    if values is not None:
        adv[1:] += gamma * values[1:] - values[:-1]
    return adv


class StoredEpisode(NamedTuple):
    """An episode kept for replay: the buffer as played, the advantage met at each replayed step (T, B) and, for
    ``clip=ppo``, each step's credit C_s (T, B)."""

    buffer: EpisodeBuffer
    met: torch.Tensor
    credit: torch.Tensor | None


class ReplayStore:
    """The last ``capacity`` episodes (``learner.replay_episodes``), oldest first. Memory is bounded by capacity."""

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self.episodes: list[StoredEpisode] = []

    def add(self, episode: StoredEpisode) -> None:
        self.episodes = [*self.episodes, episode][-self.capacity :]

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The episodes that later learning phases still replay (all but the oldest of a full store)."""
        kept = self.episodes[-(self.capacity - 1) :] if self.capacity > 1 else []
        state: dict[str, torch.Tensor] = {}
        for i, stored in enumerate(kept):
            for name in EpisodeBuffer.__dataclass_fields__:
                value = getattr(stored.buffer, name)
                if value is not None:
                    state[f"replay.{i}.{name}"] = value.cpu()
            state[f"replay.{i}.met"] = stored.met.cpu()
            if stored.credit is not None:
                state[f"replay.{i}.credit"] = stored.credit.cpu()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor], device: torch.device) -> None:
        self.episodes = []
        i = 0
        while f"replay.{i}.obs" in state:
            fields = {
                name: state[f"replay.{i}.{name}"].to(device) if f"replay.{i}.{name}" in state else None
                for name in EpisodeBuffer.__dataclass_fields__
            }
            credit = state.get(f"replay.{i}.credit")
            self.episodes.append(
                StoredEpisode(
                    EpisodeBuffer(**fields),
                    state[f"replay.{i}.met"].to(device),
                    None if credit is None else credit.to(device),
                )
            )
            i += 1
        if len(self.episodes) > max(self.capacity - 1, 0):
            raise ValueError(
                f"{len(self.episodes)} stored episodes, learner.replay_episodes={self.capacity} keeps fewer"
            )
