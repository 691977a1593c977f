"""One replay pass of pi_new over a stored episode (METHOD.md §3), in two implementations of the same maths.

``kernel_pass`` is one call of the compiled CPU kernel ``lfcs.kernels.replay_pass``; ``torch_pass`` runs the
per-step functions of ``lfcs.rule`` with torch ops on any device. Both update pi_new's weights and Adam states in
place and return the pass's per-agent statistic sums (B, 3) and its record. ``tests/test_kernels.py`` pins them
together; the golden files and ``tests/test_rule.py``'s numpy reference pin both. The learner (``lfcs.learner``)
decides which episodes are replayed, how often, and with which rule.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from lfcs.buffer import StoredEpisode
from lfcs.policy import SpikingPolicy
from lfcs.rule import (
    CLIP_MODES,
    CLIP_WEIGHTS,
    AdamState,
    adam_ascent_,
    ratio,
    readout_coef,
    recurrent_post,
    replayed_steps,
    smooth,
    smooth_scale,
    trace_step,
)


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
    clip: str  # mask | none | ppo (lfcs.rule.CLIP_WEIGHTS)
    pair_after: bool  # terminal_credit
    compute_rec: bool  # compute G_rec (applied when learn_rec, or only summed for parity)
    learn_rec: bool
    lr: float
    betas: tuple[float, float]
    adam_eps: float
    rec_lr: float  # Adam lr of W_rec (learner.rec_lr; = lr when null)


def kernel_pass(
    policy: SpikingPolicy, stored: StoredEpisode, rule: ReplayRule, adam_out: AdamState, adam_rec: AdamState | None
) -> tuple[torch.Tensor, PassRecord]:
    """One pass as one call of ``lfcs.kernels.replay_pass`` (CPU); updates the weights and Adam states in place."""
    from lfcs import kernels

    buf, new = stored.buffer, policy
    horizon, num_agents = buf.horizon, buf.num_agents
    num_actions, n = new.w_out.shape[1], new.num_neurons
    dtype = new.w_out.dtype
    rows = horizon if rule.pair_after else horizon - 1
    probs = torch.zeros(rows, num_agents, num_actions, dtype=dtype)
    ratio, mask = torch.zeros(rows, num_agents, dtype=dtype), torch.zeros(rows, num_agents, dtype=dtype)
    stats = torch.zeros(num_agents, len(STATS), dtype=torch.float64)
    rec_sum = torch.zeros((num_agents, n, n) if rule.compute_rec else (num_agents, 0, 0), dtype=dtype)
    empty = torch.zeros(num_agents, 0, dtype=dtype)
    rec = adam_rec or AdamState(empty, empty, torch.zeros(num_agents, dtype=torch.float64))
    spike_u = buf.spike_uniforms if buf.spike_uniforms is not None else torch.zeros(horizon, num_agents, 0, dtype=dtype)
    credit = stored.credit if stored.credit is not None else stored.met  # read only with clip=ppo
    net = new.kernel_view()
    kernels.replay_pass(
        buf.obs.numpy(),
        buf.actions.numpy(),
        smooth(buf.ref_probs).numpy(),
        stored.met.numpy(),
        buf.lengths.numpy(),
        spike_u.numpy(),
        net.w_in,
        net.w_rec,
        net.has_rec,
        net.w_out,
        net.bias,
        net.noise_width,
        net.constants,
        net.gain,
        smooth_scale(num_actions),
        rule.gamma,
        1.0 - rule.eps,
        1.0 + rule.eps,
        rule.fast,
        rule.compute_rec,
        rule.learn_rec,
        torch.tensor([rule.lr, *rule.betas, rule.adam_eps, rule.rec_lr], dtype=torch.float64).numpy(),
        adam_out.exp_avg.view(num_agents, -1).numpy(),
        adam_out.exp_avg_sq.view(num_agents, -1).numpy(),
        adam_out.step.numpy(),
        rec.exp_avg.view(num_agents, -1).numpy(),
        rec.exp_avg_sq.view(num_agents, -1).numpy(),
        rec.step.numpy(),
        probs.numpy(),
        ratio.numpy(),
        mask.numpy(),
        stats.numpy(),
        rec_sum.numpy(),
        CLIP_MODES[rule.clip],
        credit.numpy(),
        rule.pair_after,
    )
    return stats, PassRecord(probs, mask, rec_sum if rule.compute_rec else None)


def torch_pass(
    policy: SpikingPolicy, stored: StoredEpisode, rule: ReplayRule, adam_out: AdamState, adam_rec: AdamState | None
) -> tuple[torch.Tensor, PassRecord]:
    """One pass over the replayed steps with torch ops (any device): network step, ratio, traces, Adam."""
    buf, new = stored.buffer, policy
    w_out = new.w_out
    onehot = torch.nn.functional.one_hot(buf.actions, w_out.shape[1]).to(w_out.dtype)  # (T, B, O)
    smooth_ref = smooth(buf.ref_probs)  # (T, B, O)
    rows = buf.horizon if rule.pair_after else buf.horizon - 1
    steps = torch.arange(rows, device=w_out.device).unsqueeze(1)
    active = steps < replayed_steps(buf.lengths, rule.pair_after).unsqueeze(0)  # (rows, B)
    adv = stored.met[:rows] * active  # padding gives 0
    credit = None if stored.credit is None else stored.credit[:rows]
    weight = CLIP_WEIGHTS[rule.clip]
    lo, hi = 1.0 - rule.eps, 1.0 + rule.eps
    elig_out, grad_out = torch.zeros_like(w_out), torch.zeros_like(w_out)  # E_out, D_out (B, O, N)
    elig_rec = grad_rec = rec_sum = None
    if rule.compute_rec:
        elig_rec, grad_rec, rec_sum = (torch.zeros_like(new.w_rec) for _ in range(3))
    state = new.initial_state()
    probs_log, ratio_log, mask_log = [], [], []
    for t in range(rows):
        spike_u = None if buf.spike_uniforms is None else buf.spike_uniforms[t]
        probs, v_pre, state = new.step(buf.obs[t], state, spike_u)
        rho, taken = ratio(probs, smooth_ref[t], buf.actions[t])
        mask = weight(taken, None if credit is None else credit[t], lo, hi)
        a_t = adv[t].view(-1, 1, 1)
        g_out = readout_coef(probs, rho, mask, onehot[t])
        if not rule.pair_after:  # D += A_t E_{t-1}: the reward that followed a_{t-1} meets the trace up to t-1
            grad_out = elig_out * a_t if rule.fast else grad_out + elig_out * a_t
        elig_out = trace_step(elig_out, g_out, state.r, rule.gamma)
        if rule.pair_after:  # D += delta_t E_t: the reward for a_t meets the trace up to t
            grad_out = elig_out * a_t if rule.fast else grad_out + elig_out * a_t
        if rule.compute_rec:
            post = recurrent_post(probs, rho, mask, onehot[t], w_out, v_pre)
            if rule.pair_after:
                elig_rec = trace_step(elig_rec, post, state.p, rule.gamma)
            step_grad = elig_rec * a_t
            rec_sum = rec_sum + step_grad
            grad_rec = step_grad if rule.fast else grad_rec + step_grad
            if not rule.pair_after:
                elig_rec = trace_step(elig_rec, post, state.p, rule.gamma)
        if rule.fast:
            _adam(policy, rule, adam_out, adam_rec, grad_out, grad_rec, active[t])
        probs_log.append(probs)
        ratio_log.append(taken)
        mask_log.append(mask)
    if not rule.fast:
        _adam(policy, rule, adam_out, adam_rec, grad_out, grad_rec, active.any(0))
    ratios, masks = torch.stack(ratio_log), torch.stack(mask_log)  # (rows, B)
    log_ratio = torch.where(active, ratios, torch.ones_like(ratios)).log()
    per_step = torch.stack([1.0 - masks, log_ratio.abs(), (ratios - 1.0) - log_ratio], dim=-1)  # (rows, B, 3)
    sums = (per_step * active.unsqueeze(-1)).transpose(0, 1).contiguous().sum(1)  # per agent's own row
    return sums.to(torch.float64).cpu(), PassRecord(torch.stack(probs_log), masks, rec_sum)


def _adam(policy, rule, adam_out, adam_rec, grad_out: torch.Tensor, grad_rec: torch.Tensor | None, active) -> None:
    """One Adam ascent step of W_out (and W_rec) for the agents with active = 1."""
    adam_ascent_(policy.w_out, grad_out, adam_out, active, rule.lr, rule.betas, rule.adam_eps)
    if rule.learn_rec:
        grad_rec = grad_rec.clone()
        grad_rec.diagonal(dim1=1, dim2=2).zero_()  # W_rec has no self-connections, and keeps none
        adam_ascent_(policy.w_rec, grad_rec, adam_rec, active, rule.rec_lr, rule.betas, rule.adam_eps)
