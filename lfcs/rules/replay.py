"""What a replay pass reads and returns (METHOD.md §3): the rule's settings, the pass's record, its statistics.

A pass itself is an operation of the backend (``lfcs.backends.base.Backend.replay_pass``); the learner
(``lfcs.learning.learner``) decides which episodes are replayed, how often, and with which rule.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class PassRecord(NamedTuple):
    """What parity checks of the first pass: probabilities (T-1, B, O), masks (T-1, B), sum of A_t E_rec_{t-1}
    (B, N, N); and with ``learn_in`` the same sum for W_in (B, N, I). (With terminal credit every step is replayed:
    T rows, and the sums are of delta_t E_t.)"""

    new_probs: torch.Tensor
    mask: torch.Tensor
    rec_grad_sum: torch.Tensor | None
    in_grad_sum: torch.Tensor | None = None


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
    # e-prop's traces for the hidden weights (lfcs.rules.maths; each default is the behaviour from before it existed)
    learn_in: bool = False  # also learn W_in with G_in (learner.learn_in)
    in_lr: float = 0.0  # Adam lr of W_in (learner.in_lr; = lr when null)
    rec_update: str = "per_step"  # W_rec / W_in: per_step (with timescale fast) | per_pass (one Adam step a pass)
    rate_reg: float = 0.0  # learner.rate_reg: c of the firing-rate regulariser -c/2 sum_j (f_j - f_target)^2
    rate_target: float = 0.01  # learner.rate_target: f_target in spikes per neuron and step


REC_UPDATES = ("per_step", "per_pass")
