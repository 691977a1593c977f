"""The lf-cs learner (METHOD.md §3): pi_new replays pi_ref's last episode with eligibility traces.

``fast`` takes one Adam ascent step per replayed step on that step's D; ``slow`` one per pass on the summed D.
A pass replays t = 0 .. T-2 from the reset network state, with the spike noise acting drew (common random numbers).
The end of episode k (k > 0) takes one Adam step with a zero gradient (``trailing_zero_step``) and copies
pi_ref <- pi_new every ``ref_update_every`` episodes. The learner drives episodes, passes and optimisers: a pass is
the backend's ``replay_pass`` (``lfcs.backends``, chosen once per agent group); the critic is
``lfcs.learning.critic``, the stored episodes ``lfcs.rules.episodes.ReplayStore``, the corrections of the older
stored episodes (``learner.off_policy``) ``lfcs.learning.offpolicy``.
"""

from __future__ import annotations

import torch

from lfcs.backends.base import Backend
from lfcs.learning import offpolicy
from lfcs.learning.critic import TdCritic
from lfcs.network.policy import SpikingPolicy
from lfcs.rules.episodes import EpisodeBuffer, ReplayStore, StoredEpisode
from lfcs.rules.maths import CLIP_WEIGHTS, AdamState, replayed_steps, step_credit
from lfcs.rules.replay import STATS, PassRecord, ReplayRule


class LfcsLearner:
    """Owns pi_new's Adam state, the replay store and the critic; pi_ref is only ever overwritten by copies of pi_new.

    Constructor keywords are the keys of config group ``learner``.
    """

    def __init__(
        self,
        new_policy: SpikingPolicy,
        ref_policy: SpikingPolicy,
        backend: Backend,
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
        rec_lr: float | None = None,
        clip: str = "mask",
        replay_episodes: int = 1,
        terminal_credit: bool = False,
        critic: str = "none",
        critic_lr: float = 1e-3,
        off_policy: str = "none",
        behaviour_cbar: float = 1.0,
        vtrace_rho: float = 1.0,
        vtrace_c: float = 1.0,
        lr_scale: str = "none",
        learn_in: bool = False,
        in_lr: float | None = None,
        feedback: str = "symmetric",
        rec_update: str = "per_step",
        rate_reg: float = 0.0,
        rate_target: float = 0.01,
        track_rec_grad: bool = False,
    ):
        if timescale not in ("fast", "slow"):
            raise ValueError(f"learner.timescale={timescale!r}: allowed values are fast, slow")
        if clip not in CLIP_WEIGHTS:
            raise ValueError(f"learner.clip={clip!r}: allowed values are {', '.join(CLIP_WEIGHTS)}")
        if critic not in ("none", "td"):
            raise ValueError(f"learner.critic={critic!r}: allowed values are none, td")
        if off_policy not in offpolicy.OFF_POLICY or (off_policy == "vtrace" and critic != "td"):
            raise ValueError(
                f"learner.off_policy={off_policy!r}: allowed values are none, decoupled, vtrace (critic td)"
            )
        if lr_scale not in offpolicy.LR_SCALES:
            raise ValueError(f"learner.lr_scale={lr_scale!r}: allowed values are {', '.join(offpolicy.LR_SCALES)}")
        if learn_rec and new_policy.w_rec is None:
            raise ValueError("learner.learn_rec=true needs a network with a recurrent matrix")
        if (feedback == "random") != (new_policy.w_feedback is not None):
            raise ValueError(f"learner.feedback={feedback!r} does not match the policy (built with another feedback)")
        self.new_policy, self.ref_policy = new_policy, ref_policy
        self.n_passes = int(n_passes)
        self.trailing_zero_step, self.ref_update_every = bool(trailing_zero_step), int(ref_update_every)
        # The rule is the one home of the settings a pass reads; the learner reads them from it too.
        # G_rec is computed when it is applied or when a caller (parity, diagnostics) asks for its sum.
        compute_rec = bool(learn_rec) or (bool(track_rec_grad) and new_policy.w_rec is not None)
        # lr_scale=per_episode: every stored episode is replayed at lr / K, so a new episode moves the weights about
        # as far as at K = 1 (W_rec's rate and the trailing zero step alike).
        scale = int(replay_episodes) if lr_scale == "per_episode" else 1
        lr, rec_lr = float(lr) / scale, (float(lr) if rec_lr is None else float(rec_lr)) / scale
        self.rule = ReplayRule(timescale == "fast", float(gamma), float(eps), clip, bool(terminal_credit), compute_rec,
                               bool(learn_rec), lr, (float(betas[0]), float(betas[1])), float(adam_eps),
                               rec_lr, bool(learn_in), lr if in_lr is None else float(in_lr) / scale, rec_update,
                               float(rate_reg), float(rate_target))  # fmt: skip
        self.adam_out = AdamState.zeros_like(new_policy.w_out)
        self.adam_rec = AdamState.zeros_like(new_policy.w_rec) if learn_rec else None
        self.adam_in = AdamState.zeros_like(new_policy.w_in) if learn_in else None
        self.backend = backend
        self.store = ReplayStore(replay_episodes)
        self.critic = None
        if critic == "td":
            like = new_policy.w_out[:, 0, :]  # (B, N)
            self.critic = TdCritic(like, float(critic_lr), self.rule.betas, self.rule.adam_eps, backend)
        self.off_policy = None
        if off_policy != "none":
            settings = (float(behaviour_cbar), float(vtrace_rho), float(vtrace_c))
            self.off_policy = offpolicy.OffPolicy(off_policy, *settings)

    # -- replay ------------------------------------------------------------------------------------------------
    def learn(self, buffer: EpisodeBuffer) -> tuple[dict[str, torch.Tensor], PassRecord]:
        """One learning phase: store the episode, then n_passes rounds over the stored episodes (oldest first).

        With ``off_policy`` the older episodes are replayed as corrected copies (``lfcs.learning.offpolicy``).
        Returns per-agent mean statistics (B,) over every replayed step, with ``ref_kl`` and ``old_episode_weight``
        (0 with off_policy=none: not measured), and the record of the new episode's first pass.
        """
        met = self._met_advantages(buffer)
        rule = self.rule
        credit = step_credit(met, buffer.lengths, rule.gamma, rule.pair_after) if rule.clip == "ppo" else None
        self.store.add(StoredEpisode(buffer, met, credit))
        episodes, fixed = self._episodes_to_replay()
        replay = self.backend.replay_pass
        totals, replayed, records = None, None, []
        for k in range(self.n_passes):
            for stored in episodes:
                sums, rec = replay(self.new_policy, stored, rule, self.adam_out, self.adam_rec, self.adam_in)
                steps = replayed_steps(stored.buffer.lengths.cpu(), rule.pair_after).clamp(min=1).to(sums.dtype)
                totals = sums if totals is None else totals + sums
                replayed = steps if replayed is None else replayed + steps
                if k == 0:
                    records.append(rec)
        means = totals / replayed.unsqueeze(1)
        stats = {name: means[:, i] for i, name in enumerate(STATS)}
        stats.update(self._off_policy_stats(buffer, fixed, records))
        return stats, records[-1]

    def _episodes_to_replay(self) -> tuple[list[StoredEpisode], list[offpolicy.Corrected]]:
        """The stored episodes as this phase replays them: with off_policy, each older one as its corrected copy
        (pi_ref and the critic as they stand after the new episode's TD pass); then the critic's V-trace steps."""
        episodes = list(self.store.episodes)
        if self.off_policy is None or len(episodes) == 1:
            return episodes, []
        fixed = [
            offpolicy.correct(stored, self.ref_policy, self.backend, self.rule, self.off_policy, self.critic)
            for stored in episodes[:-1]
        ]
        for corrected in fixed:
            if corrected.critic_grad is not None:
                self.critic.ascend_(corrected.critic_grad)
        return [corrected.stored for corrected in fixed] + episodes[-1:], fixed

    def _off_policy_stats(self, buffer, fixed, records) -> dict[str, torch.Tensor]:
        """ref_kl: KL(pi_ref || pi_new after the phase) on the new episode; old_episode_weight: the mean over the
        older episodes of their share c_t m_t (``lfcs.learning.offpolicy``); 0 where not measured."""
        zeros = torch.zeros(buffer.num_agents, dtype=torch.float64)
        if self.off_policy is None:
            return {"ref_kl": zeros, "old_episode_weight": zeros}
        shares = [
            offpolicy.kept_share(c.weight, rec.mask, c.stored.buffer.lengths, self.rule.pair_after)
            for c, rec in zip(fixed, records)
        ]
        kept = zeros
        for share in shares:  # elementwise, agent by agent (a reduction over a stacked axis is not B-invariant)
            kept = kept + share
        kept = kept / max(len(shares), 1)
        return {"ref_kl": offpolicy.successive_kl(buffer, self.new_policy, self.backend), "old_episode_weight": kept}

    def _met_advantages(self, buf: EpisodeBuffer) -> torch.Tensor:
        """The advantage (T, B) that replayed step t meets: A_t with E_{t-1} (the paper), or delta_t with E_t
        (terminal credit). Without a critic A_t = r_{t-1} (the buffer's advantages) and delta_t = r_t."""
        if self.critic is None:
            return buf.rewards if self.rule.pair_after else buf.advantages
        deltas = self.critic.deltas(buf, self.ref_policy, self.rule.gamma)  # pi_ref: the policy that played buf
        if self.rule.pair_after:
            return deltas
        met = torch.zeros_like(deltas)
        met[1:] = deltas[:-1]  # A_t = r_{t-1} - V_{t-1} + gamma V_t = delta_{t-1}, A_0 = 0
        return met

    # -- end of episode ----------------------------------------------------------------------------------------
    def end_episode(self, episode: int) -> None:
        """METHOD.md §3 'End of episode': for k > 0 a zero-gradient Adam step, then pi_ref <- pi_new."""
        if episode <= 0:
            return
        if self.trailing_zero_step:
            betas, adam_eps = self.rule.betas, self.rule.adam_eps
            for weights, state, lr in self._adam_pairs():
                self.backend.adam_zero_step(weights, state, lr, betas, adam_eps)
        if episode % self.ref_update_every == 0:
            self.ref_policy.load_state_dict(self.new_policy.state_dict())

    def _adam_pairs(self) -> list[tuple[torch.Tensor, AdamState, float]]:
        pairs = [(self.new_policy.w_out, self.adam_out, self.rule.lr)]
        if self.rule.learn_rec:
            pairs.append((self.new_policy.w_rec, self.adam_rec, self.rule.rec_lr))
        if self.rule.learn_in:
            pairs.append((self.new_policy.w_in, self.adam_in, self.rule.in_lr))
        return pairs

    # -- state -------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Adam state of W_out (and W_rec), moments in torch's maximize convention (exp_avg holds the moment of -D);
        with a critic its w_V and Adam state; with replay_episodes > 1 the stored episodes still to be replayed."""
        state = {f"out.{key}": value.cpu() for key, value in self.adam_out._asdict().items()}
        if self.rule.learn_rec:
            state.update({f"rec.{key}": value.cpu() for key, value in self.adam_rec._asdict().items()})
        if self.rule.learn_in:
            state.update({f"in.{key}": value.cpu() for key, value in self.adam_in._asdict().items()})
        if self.critic is not None:
            state.update(self.critic.state_dict())
        state.update(self.store.state_dict())
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for prefix, adam in (("out", self.adam_out), ("rec", self.adam_rec), ("in", self.adam_in)):
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
