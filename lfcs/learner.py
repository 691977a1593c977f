"""The lf-cs learner (METHOD.md §3): pi_new replays pi_ref's last episode with eligibility traces.

For replayed step t (stored input x_t, pi_ref's action a_t and probabilities q_t, advantage A_t)::

    smooth(u) = (u + 0.01) / 1.03
    rho       = smooth(pi_t) / smooth(q_t)                                  (vector over actions)
    m         = 1[1 - eps < rho[a_t] < 1 + eps]
    G_out     = ((onehot(a_t) - pi_t) * rho * m) outer r_t
    G_rec     = ((W_out^T ((onehot(a_t) - smooth(pi_t)) * rho * m)) * sigma'(v_t)) outer p_t
    D        += A_t * E_{t-1};   E_t = gamma * E_{t-1} + G

``fast`` takes one Adam ascent step per replayed step on that step's D; ``slow`` one per pass on the summed D.
A pass replays t = 0 .. T-2 from the reset network state. The end of episode k (k > 0) takes one Adam step with a
zero gradient (``trailing_zero_step``) and copies pi_ref <- pi_new every ``ref_update_every`` episodes.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from lfcs.buffer import EpisodeBuffer
from lfcs.neurons import pseudo_derivative
from lfcs.policy import SpikingPolicy

SMOOTH_FLOOR = 0.01  # smooth(u) = (u + 0.01) / 1.03 keeps the ratio finite for tiny probabilities
SMOOTH_SCALE = 1.0 + 3 * SMOOTH_FLOOR  # 1.03 in the authors' code (three actions)


def smooth(probs: torch.Tensor) -> torch.Tensor:
    return (probs + SMOOTH_FLOOR) / SMOOTH_SCALE


class HiddenTraces(NamedTuple):
    """Hidden dynamics of one replay, time-major (T, B, N). v_pre and p are only needed for G_rec."""

    r: torch.Tensor
    v_pre: torch.Tensor | None
    p: torch.Tensor | None


class PassRecord(NamedTuple):
    """What parity checks of the first pass: probabilities (T-1, B, O), masks (T-1, B), sum of A_t E_rec_{t-1}."""

    new_probs: torch.Tensor
    mask: torch.Tensor
    rec_grad_sum: torch.Tensor | None


def hidden_traces(policy: SpikingPolicy, obs: torch.Tensor, with_rec_inputs: bool) -> HiddenTraces:
    """Run the network over stored inputs obs (T, B, I) from the reset state (deterministic spikes)."""
    state = policy.initial_state()
    rs, vs, ps = [], [], []
    for x in obs:
        _, v_pre, state = policy.step(x, state)
        rs.append(state.r)
        vs.append(v_pre)
        ps.append(state.p)
    if with_rec_inputs:
        return HiddenTraces(torch.stack(rs), torch.stack(vs), torch.stack(ps))
    return HiddenTraces(torch.stack(rs), None, None)


class LfcsLearner:
    """Owns pi_new's optimisers and the replay; pi_ref is only ever overwritten by copies of pi_new.

    Constructor keywords are the keys of config group ``learner``.
    """

    def __init__(
        self,
        new_policy: SpikingPolicy,
        ref_policy: SpikingPolicy,
        *,
        timescale: str = "fast",
        n_passes: int = 2,
        eps: float = 0.2,
        lr: float = 1.5e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        adam_eps: float = 1e-5,
        gamma: float = 0.99,
        trailing_zero_step: bool = True,
        ref_update_every: int = 1,
        learn_rec: bool = False,
        track_rec_grad: bool = False,
    ):
        if timescale not in ("fast", "slow"):
            raise ValueError(f"learner.timescale={timescale!r}: allowed values are fast, slow")
        self.new_policy, self.ref_policy = new_policy, ref_policy
        self.fast = timescale == "fast"
        self.n_passes, self.eps, self.gamma = int(n_passes), float(eps), float(gamma)
        self.trailing_zero_step, self.ref_update_every = bool(trailing_zero_step), int(ref_update_every)
        self.learn_rec = bool(learn_rec)
        if self.learn_rec and new_policy.w_rec is None:
            raise ValueError("learner.learn_rec=true needs a network with a recurrent matrix")
        # G_rec is computed when it is applied or when a caller (parity, diagnostics) asks for its sum.
        self.compute_rec = self.learn_rec or (bool(track_rec_grad) and new_policy.w_rec is not None)
        # One parameter per agent (views into the batched weights): Adam is elementwise, so this is exactly B
        # independent optimisers, and an agent whose episode ended early can sit out a step (grad None).
        self.params = list(new_policy.w_out.unbind(0))
        if self.learn_rec:
            self.params += list(new_policy.w_rec.unbind(0))
        adam = dict(lr=lr, betas=tuple(betas), eps=adam_eps, maximize=True)
        self.optimizer = torch.optim.Adam(self.params, **adam, **_fastest_adam_impl(new_policy.w_out))
        # Gradients live in persistent buffers whose per-agent views are the params' .grad: a step writes D
        # into them in place and calls optimizer.step(), with no per-agent Python work.
        self.grad_out = torch.zeros_like(new_policy.w_out)
        self._grads = list(self.grad_out.unbind(0))
        if self.learn_rec:
            self.grad_rec = torch.zeros_like(new_policy.w_rec)
            self._grads += list(self.grad_rec.unbind(0))
        for param, grad in zip(self.params, self._grads):
            param.grad = grad
        self._all_active = False

    # -- replay ------------------------------------------------------------------------------------------------
    def learn(
        self, buffer: EpisodeBuffer, generators: list[torch.Generator] | None = None
    ) -> tuple[dict[str, torch.Tensor], PassRecord]:
        """All replay passes of one episode. Returns per-agent statistics (B,) and the first pass's record."""
        pass_invariant = not self.learn_rec and self.new_policy.params.spike_noise_width is None
        traces = None
        if pass_invariant:
            if buffer.readout is not None and not self.compute_rec:
                traces = HiddenTraces(buffer.readout, None, None)
            else:
                traces = hidden_traces(self.new_policy, buffer.obs, self.compute_rec)
        # Steps t = 0 .. len-2 of each agent are replayed; later entries are padding.
        steps = torch.arange(buffer.horizon - 1, device=buffer.lengths.device)
        active = (steps.unsqueeze(1) < (buffer.lengths - 1).unsqueeze(0)).to(buffer.obs.dtype)  # (T-1, B)
        self._all_active = bool(active.all())  # the common case: every agent played the full horizon
        totals, record = None, None
        for k in range(self.n_passes):
            uniforms = None if traces is not None else self._spike_uniforms(buffer, generators)
            stats, rec = self._replay_pass(buffer, traces, active, uniforms, record=k == 0)
            totals = stats if totals is None else {key: totals[key] + stats[key] for key in stats}
            record = rec if k == 0 else record
        n = active.sum(0).clamp(min=1) * self.n_passes
        return {key: value / n for key, value in totals.items()}, record

    def _replay_pass(self, buf, traces, active, uniforms, record):
        """One pass over t = 0 .. T-2. Shapes keep a trailing singleton so that no step needs a reshape:
        probabilities and ratios are (B, O, 1), read-outs (B, 1, N), so E += coef r^T is one baddbmm."""
        new = self.new_policy
        w_out, w_rec, gain = new.w_out, new.w_rec, new.params.readout_gain
        onehot = torch.nn.functional.one_hot(buf.actions, w_out.shape[1]).to(w_out.dtype).unsqueeze(-1)
        inv_smooth_ref = 1.0 / smooth(buf.ref_probs).unsqueeze(-1)  # (T, B, O, 1)
        taken = buf.actions.view(*buf.actions.shape, 1, 1)  # (T, B, 1, 1)
        adv = (buf.advantages[:-1] * active).view(*active.shape, 1, 1)  # (T-1, B, 1, 1); padding gives 0
        lo, hi = 1.0 - self.eps, 1.0 + self.eps
        use_mask = self.eps != float("inf")
        elig_out = torch.zeros_like(w_out)  # E_out (B, O, N)
        if not self.fast:
            self.grad_out.zero_()  # D_out, summed over the pass
        elig_rec = rec_sum = None
        if self.compute_rec:
            elig_rec, rec_sum = torch.zeros_like(w_rec), torch.zeros_like(w_rec)
            if self.learn_rec and not self.fast:
                self.grad_rec.zero_()
        state = new.initial_state() if traces is None else None
        probs_log, ratio_log, mask_log = [], [], []
        for t in range(buf.horizon - 1):
            if traces is None:
                spikes_u = None if uniforms is None else uniforms[t]
                _, v_pre, state = new.step(buf.obs[t], state, spikes_u)
                readout, presyn = state.r, state.p
            else:
                readout, v_pre, presyn = traces.r[t], _at(traces.v_pre, t), _at(traces.p, t)
            readout = readout.unsqueeze(1)  # (B, 1, N)
            probs = torch.softmax(torch.bmm(w_out, readout.transpose(1, 2)) * gain, dim=1)  # (B, O, 1)
            rho = smooth(probs) * inv_smooth_ref[t]  # (B, O, 1)
            rho_taken = rho.gather(1, taken[t])  # (B, 1, 1)
            if use_mask:
                mask = ((rho_taken > lo) & (rho_taken < hi)).to(probs.dtype)
                weight = rho * mask
            else:
                mask, weight = torch.ones_like(rho_taken), rho
            # D += A_t E_{t-1}: the reward that followed a_{t-1} meets the trace up to t-1.
            if self.fast:
                torch.mul(elig_out, adv[t], out=self.grad_out)
            else:
                self.grad_out.addcmul_(elig_out, adv[t])
            elig_out = torch.baddbmm(elig_out, (onehot[t] - probs) * weight, readout, beta=self.gamma)
            if self.compute_rec:
                step_grad_rec = elig_rec * adv[t]
                rec_sum += step_grad_rec
                if self.learn_rec:
                    self.grad_rec.copy_(step_grad_rec) if self.fast else self.grad_rec.add_(step_grad_rec)
                coef_rec = (onehot[t] - smooth(probs)) * weight  # (B, O, 1)
                post = torch.bmm(w_out.transpose(1, 2), coef_rec) * pseudo_derivative(v_pre).unsqueeze(2)
                elig_rec = torch.baddbmm(elig_rec, post, presyn.unsqueeze(1), beta=self.gamma)  # (B, N, N)
            if self.fast:
                self._adam_step(active[t])
            ratio_log.append(rho_taken)
            mask_log.append(mask)
            if record:
                probs_log.append(probs)
        if not self.fast:
            self._adam_step((active.sum(0) > 0).to(active.dtype))
        ratios = torch.stack(ratio_log).view(active.shape)  # (T-1, B)
        masks = torch.stack(mask_log).view(active.shape)
        log_ratio = torch.log(ratios)
        stats = {
            "mask_fraction": _sum_over_time((1.0 - masks) * active),
            "abs_log_ratio": _sum_over_time(log_ratio.abs() * active),
            "approx_kl": _sum_over_time(((ratios - 1.0) - log_ratio) * active),
        }
        rec = None
        if record:
            rec = PassRecord(torch.stack(probs_log).squeeze(-1), masks, rec_sum)
        return stats, rec

    def _spike_uniforms(self, buf: EpisodeBuffer, generators: list[torch.Generator] | None) -> torch.Tensor | None:
        if self.new_policy.params.spike_noise_width is None:
            return None
        if generators is None:
            raise ValueError("stochastic spikes need the agents' generators")
        shape = (buf.horizon, self.new_policy.num_neurons)
        u = [torch.rand(shape, generator=g, dtype=torch.float64) for g in generators]
        return torch.stack(u, dim=1).to(buf.obs)  # (T, B, N)

    def _adam_step(self, active: torch.Tensor) -> None:
        """One Adam ascent step on the gradients in ``grad_out`` / ``grad_rec``.

        active: (B,) 0/1. Agents at 0 sit this step out (their episode ended earlier): weights and moments stay.
        """
        if self.learn_rec:
            self.grad_rec.diagonal(dim1=1, dim2=2).zero_()  # W_rec has no self-connections, and keeps none
        if self._all_active or bool(active.all()):
            self.optimizer.step()
            return
        keep = active.bool().tolist() * (len(self.params) // len(active))
        for param, grad, on in zip(self.params, self._grads, keep):
            param.grad = grad if on else None
        self.optimizer.step()
        for param, grad in zip(self.params, self._grads):
            param.grad = grad

    # -- end of episode ----------------------------------------------------------------------------------------
    def end_episode(self, episode: int) -> None:
        """METHOD.md §3 'End of episode': for k > 0 a zero-gradient Adam step, then pi_ref <- pi_new."""
        if episode <= 0:
            return
        if self.trailing_zero_step:
            for grad in self._grads:
                grad.zero_()
            self.optimizer.step()
        if episode % self.ref_update_every == 0:
            self.ref_policy.load_state_dict(self.new_policy.state_dict())

    # -- state -------------------------------------------------------------------------------------------------
    def adam_state(self, agent: int) -> dict[str, torch.Tensor]:
        """One agent's Adam moments of W_out in torch's maximize convention (exp_avg holds the moment of -D)."""
        return self.optimizer.state.get(self.params[agent], {})


def _sum_over_time(x: torch.Tensor) -> torch.Tensor:
    """(T, B) -> (B,), summing each agent's contiguous row: the result does not depend on B."""
    return x.t().contiguous().sum(dim=1)


def _at(x: torch.Tensor | None, t: int) -> torch.Tensor | None:
    return None if x is None else x[t]


def _fastest_adam_impl(weights: torch.Tensor) -> dict[str, bool]:
    """torch's fused Adam (one kernel for all agents) where it exists, else the multi-tensor one. Same maths."""
    if weights.device.type in ("cpu", "cuda") and weights.dtype in (torch.float32, torch.float64):
        return {"fused": True}
    return {"foreach": True}
