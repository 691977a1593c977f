"""The one seam between the model and the code that computes it: what a backend must do, and nothing else.

Everything above ``lfcs.backends`` (the learner, the critic, acting, evaluation) holds a :class:`Backend` chosen
once per agent group (``lfcs.backends.select``) and calls only these operations. Each is the whole inner loop of
one phase, so a backend is free to run it as one compiled call (``compiled``: numba, CPU) or as a sequence of
torch ops (``torch_ops``: any device). Tensors cross the seam as torch tensors; weights and Adam states are
updated in place. The maths each operation must compute is in the pure functions of ``lfcs.network.neurons``
(network step, read-out) and ``lfcs.rules.maths`` (ratio, clip weights, traces, Adam); ``tests/test_kernels.py``
pins the backends together and the golden files pin both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

from lfcs.network.policy import SpikingPolicy
from lfcs.rules.episodes import EpisodeBuffer, StoredEpisode
from lfcs.rules.maths import AdamState
from lfcs.rules.replay import PassRecord, ReplayRule


class Actor(ABC):
    """pi_ref stepping through one episode, one environment step at a time, into the episode's buffers."""

    @abstractmethod
    def step(self, t: int, running: np.ndarray) -> None:
        """Network step t for every agent: read obs[t] (and the spike uniforms), write probs[t] and actions[t]
        (sampled with the action uniforms), add each running agent's spikes to spike_count."""


class Backend(ABC):
    """The operations of acting, replay and the critic. ``name`` is the value of the ``backend`` key."""

    name: str

    @abstractmethod
    def actor(
        self,
        policy: SpikingPolicy,
        obs: torch.Tensor,
        spike_uniforms: torch.Tensor | None,
        action_uniforms: torch.Tensor,
        probs: torch.Tensor,
        actions: torch.Tensor,
        spike_count: np.ndarray,
    ) -> Actor:
        """An :class:`Actor` over the episode's CPU buffers: obs (T, B, I), spike uniforms (T, B, N) or None,
        action uniforms (T, B); it writes probs (T, B, O) and actions (T, B), and counts spikes into (B,)."""

    @abstractmethod
    def replay_pass(
        self,
        policy: SpikingPolicy,
        stored: StoredEpisode,
        rule: ReplayRule,
        adam_out: AdamState,
        adam_rec: AdamState | None,
        adam_in: AdamState | None = None,
    ) -> tuple[torch.Tensor, PassRecord]:
        """One pass of pi_new over a stored episode (METHOD.md §3): network step, ratio and mask, eligibility
        traces (e-prop's for W_rec and W_in, ``lfcs.rules.maths``), Adam ascent on W_out (and W_rec, W_in), in
        place. Returns per-agent sums (B, len(STATS)) over the replayed steps, and the pass's record."""

    @abstractmethod
    def readout_traces(self, policy: SpikingPolicy, buf: EpisodeBuffer) -> torch.Tensor:
        """The read-out traces r_t (T, B, N) of ``policy`` replayed over the episode's inputs and spike noise."""

    @abstractmethod
    def td_deltas(
        self,
        readout: torch.Tensor,
        buf: EpisodeBuffer,
        terminated: torch.Tensor,
        gamma: float,
        w_v: torch.Tensor,
        adam: AdamState,
        settings: tuple[float, float, float, float],
    ) -> torch.Tensor:
        """Online TD(0) of V = w_V . r over the episode in the order it was played (``lfcs.learning.critic``):
        delta_t (T, B), 0 past each agent's end; w_V (B, N) and its Adam state learn in place.
        settings = (lr, beta1, beta2, adam_eps); terminated (B,) bool: V = 0 after the last step, else bootstrap."""

    @abstractmethod
    def adam_zero_step(self, weights: torch.Tensor, state: AdamState, lr: float, betas, adam_eps: float) -> None:
        """One Adam ascent step with a zero gradient for every agent (METHOD.md §3, end of episode), in place."""
