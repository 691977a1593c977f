"""Off-policy corrections for the older episodes of the replay store (``learner.off_policy``; README, "Replay that
learns from older episodes").

At the start of a learning phase pi_ref is the policy that played the newest episode and that will act next. An
older episode j was played by an earlier pi_ref, q. For each older episode this module builds the copy that the
phase replays instead of the stored one:

- ``decoupled`` (the decoupled form of PPO; GePPO, Queeney et al. 2021): the ratio's denominator becomes pi_ref's
  probabilities over the episode (``ref_probs`` replaced), so rho = smooth(pi_new) / smooth(pi_ref) and the mask or
  clip is centred on the next acting policy; and the advantage each replayed step meets is multiplied by the
  truncated behaviour weight c = min(c_bar, w) of the action whose consequence it holds, with
  w_t = smooth(pi_ref_t)[a_t] / smooth(q_t)[a_t] (``lfcs.rules.maths.behaviour_ratio`` and ``met_by_step``);
- ``vtrace`` (with ``learner.critic=td``): the same, and the advantages are recomputed from V-trace targets
  (IMPALA, Espeholt et al. 2018) of the current critic; the critic takes one Adam step per older episode towards them.

pi_ref's probabilities over an old episode are its read-out traces on the stored inputs and spike noise
(``Backend.readout_traces``) through the policy's softmax, one agent at a time (a batched product rounds differently
for one agent and for several). The newest episode is never corrected: pi_ref played it, so w = 1 there.
"""

from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

import torch

from lfcs.backends.base import Backend
from lfcs.learning.critic import TdCritic
from lfcs.network.neurons import policy_probs
from lfcs.network.policy import SpikingPolicy
from lfcs.rules.episodes import EpisodeBuffer, StoredEpisode
from lfcs.rules.maths import behaviour_ratio, met_by_step, replayed_steps, smooth_kl, step_credit, vtrace
from lfcs.rules.replay import ReplayRule

OFF_POLICY = ("none", "decoupled", "vtrace")
LR_SCALES = ("none", "per_episode")


class OffPolicy(NamedTuple):
    """The settings of ``learner.off_policy`` other than none."""

    mode: str  # decoupled | vtrace
    cbar: float  # learner.behaviour_cbar: c = min(cbar, w) weights the advantages of older episodes
    vtrace_rho: float  # rho_bar of the V-trace targets
    vtrace_c: float  # c_bar of the V-trace traces


class Corrected(NamedTuple):
    """An older episode as a phase replays it, its behaviour weights c (T, B) (by action) and, with ``vtrace``, the
    critic's gradient (B, N): the mean over the episode's steps of (v_t - V_t) r_t."""

    stored: StoredEpisode
    weight: torch.Tensor
    critic_grad: torch.Tensor | None


def probs_over_episode(policy: SpikingPolicy, readout: torch.Tensor) -> torch.Tensor:
    """pi_t = softmax(kappa W_out r_t) (T, B, O) from read-out traces (T, B, N), one agent at a time."""
    gain = policy.params.readout_gain
    rows = [policy_probs(policy.w_out[b], readout[:, b].contiguous(), gain) for b in range(policy.num_agents)]
    return torch.stack(rows, dim=1)


def agent_means(values: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Per agent, the sum of its column of values (T, B) over its first counts[b] rows, over max(counts[b], 1)."""
    sums = [values[: int(counts[b]), b].contiguous().sum() for b in range(values.shape[1])]
    return torch.stack(sums).to(torch.float64).cpu() / counts.clamp(min=1).to(torch.float64).cpu()


def correct(
    stored: StoredEpisode,
    ref_policy: SpikingPolicy,
    backend: Backend,
    rule: ReplayRule,
    settings: OffPolicy,
    critic: TdCritic | None,
) -> Corrected:
    """The copy of an older stored episode that this phase replays (module docstring), pi_ref as it stands now."""
    buf = stored.buffer
    readout = backend.readout_traces(ref_policy, buf)  # (T, B, N): pi_ref on the stored inputs and spike noise
    valid = (torch.arange(buf.horizon).unsqueeze(1) < buf.lengths.cpu().unsqueeze(0)).to(buf.ref_probs.device)
    ref_probs = torch.where(valid.unsqueeze(-1), probs_over_episode(ref_policy, readout), buf.ref_probs)
    ratio = behaviour_ratio(ref_probs, buf.ref_probs, buf.actions) * valid  # w_t (T, B), 0 past the end
    weight = ratio.clamp(max=settings.cbar)  # c_t
    critic_grad = None
    if settings.mode == "vtrace":
        values = critic.values(readout)  # V_t (T, B) of the current critic
        terminated = buf.terminated
        if terminated is None:
            terminated = torch.ones(buf.num_agents, dtype=torch.bool)
        rho, trace_c = ratio.clamp(max=settings.vtrace_rho), ratio.clamp(max=settings.vtrace_c)
        diff, adv = vtrace(values, buf.rewards, buf.lengths, terminated, rule.gamma, rho, trace_c)
        met = met_by_step(weight * adv, rule.pair_after)
        steps = buf.lengths.clamp(min=1).to(readout.dtype)
        grads = [(diff[:, b].contiguous().unsqueeze(1) * readout[:, b].contiguous()).sum(0) / steps[b]
                 for b in range(buf.num_agents)]  # fmt: skip
        critic_grad = torch.stack(grads)
    else:
        met = met_by_step(weight, rule.pair_after) * stored.met
    credit = step_credit(met, buf.lengths, rule.gamma, rule.pair_after) if rule.clip == "ppo" else None
    return Corrected(StoredEpisode(replace(buf, ref_probs=ref_probs), met, credit), weight, critic_grad)


def successive_kl(buf: EpisodeBuffer, new_policy: SpikingPolicy, backend: Backend) -> torch.Tensor:
    """Per agent (B,): the mean over the new episode's steps of KL(smooth(pi_ref_t) || smooth(pi_new_t)), pi_ref's
    probabilities as it played them and pi_new's after the phase: the change of the acting policy that the copy
    pi_ref <- pi_new then makes."""
    after = probs_over_episode(new_policy, backend.readout_traces(new_policy, buf))
    kl = [smooth_kl(buf.ref_probs[:, b].contiguous(), after[:, b].contiguous()) for b in range(buf.num_agents)]
    return agent_means(torch.stack(kl, dim=1), buf.lengths)


def kept_share(weight: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor, pair_after: bool) -> torch.Tensor:
    """Per agent (B,): the mean over an older episode's replayed steps of c_t m_t, the behaviour weight times the
    clip weight of the first round's pass (1 = the step counts fully, as in the newest episode)."""
    rows = mask.shape[0]
    return agent_means(weight[:rows] * mask, replayed_steps(lengths.cpu(), pair_after))
