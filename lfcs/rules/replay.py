"""What a replay pass reads and returns (METHOD.md §3): the rule's settings, the pass's record, its statistics.

A pass itself is an operation of the backend (``lfcs.backends.base.Backend.replay_pass``); the learner
(``lfcs.learning.learner``) decides which episodes are replayed, how often, and with which rule.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class PassRecord(NamedTuple):
    """What parity checks of the first pass: probabilities (T-1, B, O), masks (T-1, B), sum of A_t E_rec_{t-1}
    (B, N, N); and with ``learn_in`` the same sum for W_in (B, N, I); the sums only when the rule records them
    (``record_sums``), else None. (With terminal credit every step is replayed: T rows, and the sums are of
    delta_t E_t.)"""

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
    record_sums: bool = False  # return the pass's sums of the D_rec / D_in terms (parity, tests); training never reads


REC_UPDATES = ("per_step", "per_pass")


def steps_hidden_per_replayed_step(rule: ReplayRule) -> bool:
    """Whether W_rec / W_in take an Adam step at every replayed step (fast timescale, rec_update=per_step) rather than
    one per pass. The rate regulariser needs the pass's firing rates, so it is refused with per-step updates."""
    if rule.rec_update not in REC_UPDATES:
        raise ValueError(f"learner.rec_update={rule.rec_update!r}: allowed values are {', '.join(REC_UPDATES)}")
    per_step = rule.fast and rule.rec_update == "per_step"
    if per_step and rule.rate_reg > 0:
        raise ValueError("learner.rate_reg > 0 needs W_rec / W_in updated once per pass (rec_update=per_pass or slow)")
    return per_step
