"""The episode store between acting (pi_ref) and replay (pi_new). Time-major ``(T, B, ...)``."""

from __future__ import annotations

from dataclasses import dataclass

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
    """

    obs: torch.Tensor
    actions: torch.Tensor
    ref_probs: torch.Tensor
    rewards: torch.Tensor
    advantages: torch.Tensor
    lengths: torch.Tensor
    spike_uniforms: torch.Tensor | None = None

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
