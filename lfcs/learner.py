"""The lf-cs learner (METHOD.md §3): pi_new replays pi_ref's last episode with eligibility traces.

``fast`` takes one Adam ascent step per replayed step on that step's D; ``slow`` one per pass on the summed D.
A pass replays t = 0 .. T-2 from the reset network state, with the spike noise acting drew (common random numbers).
The end of episode k (k > 0) takes one Adam step with a zero gradient (``trailing_zero_step``) and copies
pi_ref <- pi_new every ``ref_update_every`` episodes. The rule's per-step maths is in ``lfcs.rule`` (torch, any
device) and ``lfcs.kernels`` (compiled, CPU); ``backend`` picks one.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from lfcs.buffer import EpisodeBuffer, ReplayStore, StoredEpisode
from lfcs.critic import TdCritic
from lfcs.policy import SpikingPolicy, use_kernels
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
    step_credit,
    trace_step,
)


class PassRecord(NamedTuple):
    """What parity checks of the first pass: probabilities (T-1, B, O), masks (T-1, B), sum of A_t E_rec_{t-1}."""

    new_probs: torch.Tensor
    mask: torch.Tensor
    rec_grad_sum: torch.Tensor | None


STATS = ("mask_fraction", "abs_log_ratio", "approx_kl")


class LfcsLearner:
    """Owns pi_new's Adam state, the replay store and the critic; pi_ref is only ever overwritten by copies of pi_new.

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
        clip: str = "mask",
        replay_episodes: int = 1,
        terminal_credit: bool = False,
        critic: str = "none",
        critic_lr: float = 1e-3,
        track_rec_grad: bool = False,
        backend: str = "auto",
    ):
        if timescale not in ("fast", "slow"):
            raise ValueError(f"learner.timescale={timescale!r}: allowed values are fast, slow")
        if clip not in CLIP_WEIGHTS:
            raise ValueError(f"learner.clip={clip!r}: allowed values are {', '.join(CLIP_WEIGHTS)}")
        if critic not in ("none", "td"):
            raise ValueError(f"learner.critic={critic!r}: allowed values are none, td")
        self.new_policy, self.ref_policy = new_policy, ref_policy
        self.fast = timescale == "fast"
        self.n_passes, self.eps, self.gamma = int(n_passes), float(eps), float(gamma)
        self.lr, self.betas, self.adam_eps = float(lr), (float(betas[0]), float(betas[1])), float(adam_eps)
        self.trailing_zero_step, self.ref_update_every = bool(trailing_zero_step), int(ref_update_every)
        self.learn_rec, self.clip, self.pair_after = bool(learn_rec), clip, bool(terminal_credit)
        if self.learn_rec and new_policy.w_rec is None:
            raise ValueError("learner.learn_rec=true needs a network with a recurrent matrix")
        # G_rec is computed when it is applied or when a caller (parity, diagnostics) asks for its sum.
        self.compute_rec = self.learn_rec or (bool(track_rec_grad) and new_policy.w_rec is not None)
        self.adam_out = AdamState.zeros_like(new_policy.w_out)
        self.adam_rec = AdamState.zeros_like(new_policy.w_rec) if self.learn_rec else None
        self.use_kernels = use_kernels(backend, new_policy.w_out.device)
        self.store = ReplayStore(replay_episodes)
        self.critic = None
        if critic == "td":
            like = new_policy.w_out[:, 0, :]  # (B, N)
            self.critic = TdCritic(like, float(critic_lr), self.betas, self.adam_eps, self.use_kernels)

    # -- replay ------------------------------------------------------------------------------------------------
    def learn(self, buffer: EpisodeBuffer) -> tuple[dict[str, torch.Tensor], PassRecord]:
        """One learning phase: store the episode, then n_passes rounds over the stored episodes (oldest first).

        Returns per-agent mean statistics (B,) over every replayed step, and the record of the new episode's first
        pass.
        """
        met = self._met_advantages(buffer)
        credit = step_credit(met, buffer.lengths, self.gamma, self.pair_after) if self.clip == "ppo" else None
        self.store.add(StoredEpisode(buffer, met, credit))
        replay = self._kernel_pass if self.use_kernels else self._torch_pass
        totals, replayed, record = None, None, None
        newest = len(self.store.episodes) - 1
        for k in range(self.n_passes):
            for i, stored in enumerate(self.store.episodes):
                sums, rec = replay(stored)
                steps = replayed_steps(stored.buffer.lengths.cpu(), self.pair_after).clamp(min=1).to(sums.dtype)
                totals = sums if totals is None else totals + sums
                replayed = steps if replayed is None else replayed + steps
                record = rec if (k == 0 and i == newest) else record
        means = totals / replayed.unsqueeze(1)
        return {name: means[:, i] for i, name in enumerate(STATS)}, record

    def _met_advantages(self, buf: EpisodeBuffer) -> torch.Tensor:
        """The advantage (T, B) that replayed step t meets: A_t with E_{t-1} (the paper), or delta_t with E_t
        (terminal credit). Without a critic A_t = r_{t-1} (the buffer's advantages) and delta_t = r_t."""
        if self.critic is None:
            return buf.rewards if self.pair_after else buf.advantages
        deltas = self.critic.deltas(buf, self.ref_policy, self.gamma)  # pi_ref: the policy that played buf
        if self.pair_after:
            return deltas
        met = torch.zeros_like(deltas)
        met[1:] = deltas[:-1]  # A_t = r_{t-1} - V_{t-1} + gamma V_t = delta_{t-1}, A_0 = 0
        return met

    def _kernel_pass(self, stored: StoredEpisode) -> tuple[torch.Tensor, PassRecord]:
        from lfcs import kernels

        buf, new = stored.buffer, self.new_policy
        horizon, num_agents = buf.horizon, buf.num_agents
        num_actions, n = new.w_out.shape[1], new.num_neurons
        dtype = new.w_out.dtype
        rows = horizon if self.pair_after else horizon - 1
        probs = torch.zeros(rows, num_agents, num_actions, dtype=dtype)
        ratio, mask = torch.zeros(rows, num_agents, dtype=dtype), torch.zeros(rows, num_agents, dtype=dtype)
        stats = torch.zeros(num_agents, len(STATS), dtype=torch.float64)
        rec_sum = torch.zeros((num_agents, n, n) if self.compute_rec else (num_agents, 0, 0), dtype=dtype)
        empty = torch.zeros(num_agents, 0, dtype=dtype)
        rec = self.adam_rec or AdamState(empty, empty, torch.zeros(num_agents, dtype=torch.float64))
        spike_u = (
            buf.spike_uniforms if buf.spike_uniforms is not None else torch.zeros(horizon, num_agents, 0, dtype=dtype)
        )
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
            self.gamma,
            1.0 - self.eps,
            1.0 + self.eps,
            self.fast,
            self.compute_rec,
            self.learn_rec,
            torch.tensor([self.lr, *self.betas, self.adam_eps], dtype=torch.float64).numpy(),
            self.adam_out.exp_avg.view(num_agents, -1).numpy(),
            self.adam_out.exp_avg_sq.view(num_agents, -1).numpy(),
            self.adam_out.step.numpy(),
            rec.exp_avg.view(num_agents, -1).numpy(),
            rec.exp_avg_sq.view(num_agents, -1).numpy(),
            rec.step.numpy(),
            probs.numpy(),
            ratio.numpy(),
            mask.numpy(),
            stats.numpy(),
            rec_sum.numpy(),
            CLIP_MODES[self.clip],
            credit.numpy(),
            self.pair_after,
        )
        return stats, PassRecord(probs, mask, rec_sum if self.compute_rec else None)

    def _torch_pass(self, stored: StoredEpisode) -> tuple[torch.Tensor, PassRecord]:
        """One pass over the replayed steps with torch ops (any device): network step, ratio, traces, Adam."""
        buf, new = stored.buffer, self.new_policy
        w_out = new.w_out
        onehot = torch.nn.functional.one_hot(buf.actions, w_out.shape[1]).to(w_out.dtype)  # (T, B, O)
        smooth_ref = smooth(buf.ref_probs)  # (T, B, O)
        rows = buf.horizon if self.pair_after else buf.horizon - 1
        steps = torch.arange(rows, device=w_out.device).unsqueeze(1)
        active = steps < replayed_steps(buf.lengths, self.pair_after).unsqueeze(0)  # (rows, B)
        adv = stored.met[:rows] * active  # padding gives 0
        credit = None if stored.credit is None else stored.credit[:rows]
        weight = CLIP_WEIGHTS[self.clip]
        lo, hi = 1.0 - self.eps, 1.0 + self.eps
        elig_out, grad_out = torch.zeros_like(w_out), torch.zeros_like(w_out)  # E_out, D_out (B, O, N)
        elig_rec = grad_rec = rec_sum = None
        if self.compute_rec:
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
            if not self.pair_after:  # D += A_t E_{t-1}: the reward that followed a_{t-1} meets the trace up to t-1
                grad_out = elig_out * a_t if self.fast else grad_out + elig_out * a_t
            elig_out = trace_step(elig_out, g_out, state.r, self.gamma)
            if self.pair_after:  # D += delta_t E_t: the reward for a_t meets the trace up to t
                grad_out = elig_out * a_t if self.fast else grad_out + elig_out * a_t
            if self.compute_rec:
                post = recurrent_post(probs, rho, mask, onehot[t], w_out, v_pre)
                if self.pair_after:
                    elig_rec = trace_step(elig_rec, post, state.p, self.gamma)
                step_grad = elig_rec * a_t
                rec_sum = rec_sum + step_grad
                grad_rec = step_grad if self.fast else grad_rec + step_grad
                if not self.pair_after:
                    elig_rec = trace_step(elig_rec, post, state.p, self.gamma)
            if self.fast:
                self._adam(grad_out, grad_rec, active[t])
            probs_log.append(probs)
            ratio_log.append(taken)
            mask_log.append(mask)
        if not self.fast:
            self._adam(grad_out, grad_rec, active.any(0))
        ratios, masks = torch.stack(ratio_log), torch.stack(mask_log)  # (rows, B)
        log_ratio = torch.where(active, ratios, torch.ones_like(ratios)).log()
        per_step = torch.stack([1.0 - masks, log_ratio.abs(), (ratios - 1.0) - log_ratio], dim=-1)  # (rows, B, 3)
        sums = (per_step * active.unsqueeze(-1)).transpose(0, 1).contiguous().sum(1)  # per agent's own row
        return sums.to(torch.float64).cpu(), PassRecord(torch.stack(probs_log), masks, rec_sum)

    def _adam(self, grad_out: torch.Tensor, grad_rec: torch.Tensor | None, active: torch.Tensor) -> None:
        adam_ascent_(self.new_policy.w_out, grad_out, self.adam_out, active, self.lr, self.betas, self.adam_eps)
        if self.learn_rec:
            grad_rec = grad_rec.clone()
            grad_rec.diagonal(dim1=1, dim2=2).zero_()  # W_rec has no self-connections, and keeps none
            adam_ascent_(self.new_policy.w_rec, grad_rec, self.adam_rec, active, self.lr, self.betas, self.adam_eps)

    # -- end of episode ----------------------------------------------------------------------------------------
    def end_episode(self, episode: int) -> None:
        """METHOD.md §3 'End of episode': for k > 0 a zero-gradient Adam step, then pi_ref <- pi_new."""
        if episode <= 0:
            return
        if self.trailing_zero_step:
            for weights, state in self._adam_pairs():
                if self.use_kernels:
                    from lfcs import kernels

                    flat = weights.view(weights.shape[0], -1)
                    kernels.adam_zero_step(
                        flat.numpy(),
                        state.exp_avg.view(flat.shape).numpy(),
                        state.exp_avg_sq.view(flat.shape).numpy(),
                        state.step.numpy(),
                        self.lr,
                        *self.betas,
                        self.adam_eps,
                    )
                else:
                    active = torch.ones(weights.shape[0], dtype=torch.bool, device=weights.device)
                    adam_ascent_(weights, torch.zeros_like(weights), state, active, self.lr, self.betas, self.adam_eps)
        if episode % self.ref_update_every == 0:
            self.ref_policy.load_state_dict(self.new_policy.state_dict())

    def _adam_pairs(self) -> list[tuple[torch.Tensor, AdamState]]:
        pairs = [(self.new_policy.w_out, self.adam_out)]
        if self.learn_rec:
            pairs.append((self.new_policy.w_rec, self.adam_rec))
        return pairs

    # -- state -------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Adam state of W_out (and W_rec), moments in torch's maximize convention (exp_avg holds the moment of -D);
        with a critic its w_V and Adam state; with replay_episodes > 1 the stored episodes still to be replayed."""
        state = {f"out.{key}": value.cpu() for key, value in self.adam_out._asdict().items()}
        if self.learn_rec:
            state.update({f"rec.{key}": value.cpu() for key, value in self.adam_rec._asdict().items()})
        if self.critic is not None:
            state.update(self.critic.state_dict())
        state.update(self.store.state_dict())
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for prefix, adam in (("out", self.adam_out), ("rec", self.adam_rec)):
            if adam is None:
                continue
            for key, tensor in adam._asdict().items():
                saved = state[f"{prefix}.{key}"]
                if saved.shape != tensor.shape:
                    raise ValueError(
                        f"Adam state {prefix}.{key} has shape {tuple(saved.shape)}, expected {tuple(tensor.shape)}"
                    )
                tensor.copy_(saved)
        if self.critic is not None:
            self.critic.load_state_dict(state)
        self.store.load_state_dict(state, self.new_policy.w_out.device)
