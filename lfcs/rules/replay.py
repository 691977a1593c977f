"""What a replay pass reads and returns (METHOD.md §3): the rule's settings, the pass's record, its statistics.

A pass itself is an operation of the backend (``lfcs.backends.base.Backend.replay_pass``); the learner
(``lfcs.learning.learner``) decides which episodes are replayed, how often, and with which rule.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class PassRecord(NamedTuple):
    """What parity checks of the first pass: probabilities (T-1, B, O), masks (T-1, B), sum of A_t E_rec_{t-1}.
    (With terminal credit every step is replayed: T rows.)"""

    new_probs: torch.Tensor
    mask: torch.Tensor
    rec_grad_sum: torch.Tensor | None


STATS = ("mask_fraction", "abs_log_ratio", "approx_kl")


class ReplayRule(NamedTuple):
    """The learner's settings that a pass reads (config group ``learner``)."""

    fast: bool  # timescale: one Adam step per replayed step (True) or per pass
    gamma: float
    eps: float
    clip: str  # mask | none | ppo (lfcs.rules.maths.CLIP_WEIGHTS)
    pair_after: bool  # terminal_credit
    compute_rec: bool  # compute G_rec (applied when learn_rec, or only summed for parity)
    learn_rec: bool
    lr: float
    betas: tuple[float, float]
    adam_eps: float
    rec_lr: float  # Adam lr of W_rec (learner.rec_lr; = lr when null)
