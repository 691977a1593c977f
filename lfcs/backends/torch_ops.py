"""``backend=torch``: the :class:`~lfcs.backends.base.Backend` operations as torch ops, on any device.

Each operation is a loop over time of the pure functions of ``lfcs.network`` (``SpikingPolicy.step``) and
``lfcs.rules.maths`` (ratio, clip weights, traces, Adam); the agent axis B is a batch dimension.
"""

from __future__ import annotations

import numpy as np
import torch

from lfcs.backends.base import Actor, Backend
from lfcs.network.neurons import adaptive_threshold, sample_actions
from lfcs.network.policy import SpikingPolicy
from lfcs.rules.episodes import EpisodeBuffer, StoredEpisode
from lfcs.rules.maths import (
    CLIP_WEIGHTS,
    AdamState,
    adam_ascent_,
    adaptation_trace_step,
    adapted_presynaptic,
    rate_regulariser,
    ratio,
    readout_coef,
    recurrent_post,
    replayed_steps,
    smooth,
    surrogate_derivative,
    synapse_trace_step,
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
        self,
        policy: SpikingPolicy,
        stored: StoredEpisode,
        rule: ReplayRule,
        adam_out: AdamState,
        adam_rec,
        adam_in=None,
    ) -> tuple[torch.Tensor, PassRecord]:
        buf, w_out, params = stored.buffer, policy.w_out, policy.step_params
        onehot = torch.nn.functional.one_hot(buf.actions, w_out.shape[1]).to(w_out.dtype)  # (T, B, O)
        smooth_ref = smooth(buf.ref_probs)  # (T, B, O)
        rows = buf.horizon if rule.pair_after else buf.horizon - 1
        steps = torch.arange(rows, device=w_out.device).unsqueeze(1)
        replayed = replayed_steps(buf.lengths, rule.pair_after)
        active = steps < replayed.unsqueeze(0)  # (rows, B)
        adv = stored.met[:rows] * active  # padding gives 0
        credit = None if stored.credit is None else stored.credit[:rows]
        weight = CLIP_WEIGHTS[rule.clip]
        lo, hi = 1.0 - rule.eps, 1.0 + rule.eps
        elig_out, grad_out = torch.zeros_like(w_out), torch.zeros_like(w_out)  # E_out, D_out (B, O, N)
        step_hidden = rule.fast and rule.rec_update == "per_step"
        hidden = {}
        if rule.compute_rec:
            hidden["rec"] = HiddenTraces(policy.w_rec, policy, rule, step_hidden)
        if rule.learn_in:
            hidden["in"] = HiddenTraces(policy.w_in, policy, rule, step_hidden)
        state = policy.initial_state()
        psi_prev = torch.zeros_like(state.v)
        counts = torch.zeros_like(state.v)  # spikes per neuron over the pass (learner.rate_reg)
        probs_log, ratio_log, mask_log = [], [], []
        for t in range(rows):
            for traces in hidden.values():  # eps_a moves with psi_{t-1} and eps_v_{t-1}
                traces.adapt(psi_prev, params)
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
            if hidden:  # presynaptic signals: s_hat_t into W_rec, x_t into W_in
                drive = v_pre if params.adapt_beta is None else v_pre - adaptive_threshold(state.a, params)
                psi = surrogate_derivative(drive)
                post = recurrent_post(probs, rho, mask, onehot[t], policy.feedback, drive)
                signals = {"rec": (state.s_hat, state.p), "in": (buf.obs[t], None)}
                for name, traces in hidden.items():
                    traces.step(*signals[name], post, psi, a_t, active[t])
                counts = counts + state.z * active[t].unsqueeze(1).to(counts)
                psi_prev = psi
            if rule.fast:
                adam_ascent_(w_out, grad_out, adam_out, active[t], rule.lr, rule.betas, rule.adam_eps)
            if step_hidden:
                _adam_hidden(policy, rule, hidden, adam_rec, adam_in, active[t])
            probs_log.append(probs)
            ratio_log.append(taken)
            mask_log.append(mask)
        if not rule.fast:
            adam_ascent_(w_out, grad_out, adam_out, active.any(0), rule.lr, rule.betas, rule.adam_eps)
        if not step_hidden:
            if rule.rate_reg > 0:
                for traces in hidden.values():
                    traces.regularise(counts, replayed.clamp(min=1), rule)
            _adam_hidden(policy, rule, hidden, adam_rec, adam_in, active.any(0))
        ratios, masks = torch.stack(ratio_log), torch.stack(mask_log)  # (rows, B)
        log_ratio = torch.where(active, ratios, torch.ones_like(ratios)).log()
        per_step = torch.stack([1.0 - masks, log_ratio.abs(), (ratios - 1.0) - log_ratio], dim=-1)  # (rows, B, 3)
        sums = (per_step * active.unsqueeze(-1)).transpose(0, 1).contiguous().sum(1)  # per agent's own row
        sum_of = {name: traces.pass_sum for name, traces in hidden.items()}
        record = PassRecord(torch.stack(probs_log), masks, sum_of.get("rec"), sum_of.get("in"))
        return sums.to(torch.float64).cpu(), record

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


def _adam_hidden(policy, rule, hidden, adam_rec, adam_in, active) -> None:
    """One Adam ascent step of the learned hidden weights (W_rec, W_in) for the agents with active = 1."""
    if rule.learn_rec:
        grad_rec = hidden["rec"].grad.clone()
        grad_rec.diagonal(dim1=1, dim2=2).zero_()  # W_rec has no self-connections, and keeps none
        adam_ascent_(policy.w_rec, grad_rec, adam_rec, active, rule.rec_lr, rule.betas, rule.adam_eps)
    if rule.learn_in:
        adam_ascent_(policy.w_in, hidden["in"].grad, adam_in, active, rule.in_lr, rule.betas, rule.adam_eps)


class HiddenTraces:
    """e-prop's traces of one hidden matrix W (B, N, K) over a pass (``lfcs.rules.maths``): eps_v (one vector per
    agent, or per synapse with per-neuron a_m), eps_a (alif), E, D, the pass's sum of the D terms, the sum of e_t."""

    def __init__(self, weights: torch.Tensor, policy: SpikingPolicy, rule: ReplayRule, step_hidden: bool):
        self.rule, self.step_hidden, self.params = rule, step_hidden, policy.step_params
        per_synapse = policy.decay_mem is not None
        self.eps_v = torch.zeros_like(weights if per_synapse else weights[:, 0, :])  # (B, N, K) or (B, K)
        self.eps_a = None if self.params.adapt_beta is None else torch.zeros_like(weights)
        self.beta = None if self.eps_a is None else self.params.adapt_beta.to(weights)
        self.elig, self.grad, self.pass_sum = (torch.zeros_like(weights) for _ in range(3))
        self.e_sum = torch.zeros_like(weights) if rule.rate_reg > 0 else None

    def adapt(self, psi_prev: torch.Tensor, params) -> None:
        if self.eps_a is not None:
            self.eps_a = adaptation_trace_step(self.eps_a, self.eps_v, psi_prev, self.beta, params.decay_adapt)

    def step(self, signal, shared_trace, post, psi, a_t, active) -> None:
        """One replayed step: eps_v moves (W_rec's equals the network's p when every a_m is the same), then E and D
        in the pairing of W_out's trace; with the regulariser, e_t joins the pass's sum."""
        rule = self.rule
        decay = self.params.decay_mem
        self.eps_v = shared_trace if shared_trace is not None and self.eps_v.dim() == 2 else (
            synapse_trace_step(self.eps_v, signal, decay))  # fmt: skip
        pre = adapted_presynaptic(self.eps_v, self.eps_a, self.beta)
        if rule.pair_after:
            self.elig = trace_step(self.elig, post, pre, rule.gamma)
        step_grad = self.elig * a_t
        self.pass_sum = self.pass_sum + step_grad
        self.grad = step_grad if self.step_hidden else self.grad + step_grad
        if not rule.pair_after:
            self.elig = trace_step(self.elig, post, pre, rule.gamma)
        if self.e_sum is not None:
            pre = pre.unsqueeze(1) if pre.dim() == 2 else pre
            self.e_sum = self.e_sum + (psi.unsqueeze(2) * pre) * active.view(-1, 1, 1).to(pre)

    def regularise(self, counts: torch.Tensor, steps: torch.Tensor, rule: ReplayRule) -> None:
        self.grad = self.grad + rate_regulariser(self.e_sum, counts, steps, rule.rate_reg, rule.rate_target)
