"""``backend=torch``: the :class:`~lfcs.backends.base.Backend` operations as torch ops, on any device.

Each operation is a loop over time of the pure functions of ``lfcs.network`` (``SpikingPolicy.step``) and
``lfcs.rules.maths`` (ratio, clip weights, traces, Adam); the agent axis B is a batch dimension.
"""

from __future__ import annotations

import numpy as np
import torch

from lfcs.backends.base import Actor, Backend
from lfcs.network.neurons import sample_actions
from lfcs.network.policy import SpikingPolicy
from lfcs.rules.episodes import EpisodeBuffer, StoredEpisode
from lfcs.rules.maths import (
    CLIP_WEIGHTS,
    AdamState,
    adam_ascent_,
    ratio,
    readout_coef,
    recurrent_post,
    replayed_steps,
    smooth,
    trace_step,
)
from lfcs.rules.replay import PassRecord, ReplayRule


class TorchActor(Actor):
    """pi_ref's acting step with torch ops on the policy's device; the buffers stay on the CPU."""

    def __init__(self, policy: SpikingPolicy, obs, spike_u, action_u, probs, actions, spike_count):
        self.policy, self.device, self.state = policy, policy.w_out.device, policy.initial_state()
        self.obs, self.spike_u, self.action_u, self.probs, self.actions = obs, spike_u, action_u, probs, actions
        self.spike_count = spike_count

    def step(self, t: int, running: np.ndarray) -> None:
        to = self.device
        spike_u = None if self.spike_u is None else self.spike_u[t].to(to)
        new_probs, _, self.state = self.policy.step(self.obs[t].to(to), self.state, spike_u)
        self.probs[t] = new_probs.cpu()
        self.actions[t] = sample_actions(new_probs, self.action_u[t].to(to)).cpu()
        self.spike_count += self.state.z.sum(dim=1).to(torch.float64).cpu().numpy() * running


class TorchBackend(Backend):
    name = "torch"

    def actor(self, policy, obs, spike_uniforms, action_uniforms, probs, actions, spike_count) -> Actor:
        return TorchActor(policy, obs, spike_uniforms, action_uniforms, probs, actions, spike_count)

    def replay_pass(
        self, policy: SpikingPolicy, stored: StoredEpisode, rule: ReplayRule, adam_out: AdamState, adam_rec
    ) -> tuple[torch.Tensor, PassRecord]:
        buf, w_out = stored.buffer, policy.w_out
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
            elig_rec, grad_rec, rec_sum = (torch.zeros_like(policy.w_rec) for _ in range(3))
        state = policy.initial_state()
        probs_log, ratio_log, mask_log = [], [], []
        for t in range(rows):
            spike_u = None if buf.spike_uniforms is None else buf.spike_uniforms[t]
            probs, v_pre, state = policy.step(buf.obs[t], state, spike_u)
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

    def readout_traces(self, policy: SpikingPolicy, buf: EpisodeBuffer) -> torch.Tensor:
        state, traces = policy.initial_state(), []
        for t in range(buf.horizon):
            spike_u = None if buf.spike_uniforms is None else buf.spike_uniforms[t]
            _, _, state = policy.step(buf.obs[t], state, spike_u)
            traces.append(state.r)
        return torch.stack(traces)

    def td_deltas(self, readout, buf, terminated, gamma, w_v, adam, settings) -> torch.Tensor:
        lr, beta1, beta2, adam_eps = settings
        out = torch.zeros_like(buf.rewards)
        lengths = buf.lengths.to(readout.device)
        bootstrap = ~terminated.to(readout.device)
        for t in range(buf.horizon):
            active = t < lengths
            if not bool(active.any()):
                break
            value = (w_v * readout[t]).sum(-1)
            last = t + 1 == lengths
            value_next = (w_v * readout[t + 1]).sum(-1) if t + 1 < buf.horizon else torch.zeros_like(value)
            value_next = torch.where(last, torch.where(bootstrap, value, torch.zeros_like(value)), value_next)
            delta = (buf.rewards[t] + gamma * value_next - value) * active
            out[t] = delta
            adam_ascent_(w_v, delta.unsqueeze(1) * readout[t], adam, active, lr, (beta1, beta2), adam_eps)
        return out

    def adam_zero_step(self, weights: torch.Tensor, state: AdamState, lr: float, betas, adam_eps: float) -> None:
        active = torch.ones(weights.shape[0], dtype=torch.bool, device=weights.device)
        adam_ascent_(weights, torch.zeros_like(weights), state, active, lr, betas, adam_eps)


def _adam(policy, rule, adam_out, adam_rec, grad_out: torch.Tensor, grad_rec: torch.Tensor | None, active) -> None:
    """One Adam ascent step of W_out (and W_rec) for the agents with active = 1."""
    adam_ascent_(policy.w_out, grad_out, adam_out, active, rule.lr, rule.betas, rule.adam_eps)
    if rule.learn_rec:
        grad_rec = grad_rec.clone()
        grad_rec.diagonal(dim1=1, dim2=2).zero_()  # W_rec has no self-connections, and keeps none
        adam_ascent_(policy.w_rec, grad_rec, adam_rec, active, rule.rec_lr, rule.betas, rule.adam_eps)
