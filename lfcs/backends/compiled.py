"""``backend=kernels``: the :class:`~lfcs.backends.base.Backend` operations as compiled numba kernels (CPU only).

Each operation hands numpy views of the torch tensors to one kernel call of ``kernels`` (network, policy, replay,
Adam) or ``critic_kernels`` (read-out traces, TD(0)); the kernels loop one agent at a time, so an agent's numbers
do not depend on which agents share its group.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from lfcs.backends import critic_kernels, kernels
from lfcs.backends.base import Actor, Backend
from lfcs.network.policy import SpikingPolicy
from lfcs.rules.episodes import EpisodeBuffer, StoredEpisode
from lfcs.rules.maths import CLIP_MODES, SMOOTH_FLOOR, AdamState, smooth, smooth_scale
from lfcs.rules.replay import STATS, PassRecord, ReplayRule


class KernelView(NamedTuple):
    """The network as numpy views of the policy's CPU tensors, in the argument forms of ``kernels``."""

    w_in: np.ndarray  # (B, N, I)
    w_rec: np.ndarray  # (B, N, N), or (B, 0, 0) when there is no recurrent matrix
    has_rec: bool
    w_out: np.ndarray  # (B, O, N)
    bias: np.ndarray  # (N,) h
    noise_width: float  # dv of the stochastic spikes; 0 = deterministic
    constants: np.ndarray  # (a_m, a_s, a_ro, w_res, V0, smoothing floor)
    gain: float  # kappa


def kernel_view(policy: SpikingPolicy) -> KernelView:
    p, (num_agents, num_neurons) = policy.params, (policy.num_agents, policy.num_neurons)
    dtype = policy.w_out.dtype
    w_rec = policy.w_rec if policy.w_rec is not None else torch.zeros(num_agents, 0, 0, dtype=dtype)
    bias = torch.as_tensor(p.bias, dtype=dtype).expand(num_neurons).contiguous()
    constants = [p.decay_mem, p.decay_syn, p.decay_readout, p.self_inhibition, p.v_episode_start, SMOOTH_FLOOR]
    return KernelView(
        policy.w_in.numpy(),
        w_rec.numpy(),
        policy.w_rec is not None,
        policy.w_out.numpy(),
        bias.numpy(),
        p.spike_noise_width or 0.0,
        np.array(constants, dtype=np.float64),
        p.readout_gain,
    )


class KernelActor(Actor):
    """pi_ref's acting step as one compiled call for all agents (``kernels.act_step``), on numpy views."""

    def __init__(self, policy: SpikingPolicy, obs, spike_u, action_u, probs, actions, spike_count):
        net = kernel_view(policy)
        state = [x.numpy().copy() for x in policy.initial_state()]  # v, z, s_hat, p, r: (B, N)
        noise = np.zeros((*obs.shape[:2], 0), dtype=state[0].dtype) if spike_u is None else spike_u.numpy()
        buffers = (obs.numpy(), noise, action_u.numpy())
        outputs = (probs.numpy(), actions.numpy(), spike_count)
        weights = (net.w_in, net.w_rec, net.has_rec, net.w_out, net.bias)
        scratch = np.empty(policy.num_neurons, dtype=state[0].dtype)
        self.args = (buffers, outputs, weights, (*state, scratch, net.noise_width, net.constants, net.gain))

    def step(self, t: int, running: np.ndarray) -> None:
        buffers, outputs, weights, rest = self.args
        kernels.act_step(t, *buffers, running, *outputs, *weights, *rest)


class CompiledBackend(Backend):
    name = "kernels"

    def actor(self, policy, obs, spike_uniforms, action_uniforms, probs, actions, spike_count) -> Actor:
        return KernelActor(policy, obs, spike_uniforms, action_uniforms, probs, actions, spike_count)

    def replay_pass(
        self, policy: SpikingPolicy, stored: StoredEpisode, rule: ReplayRule, adam_out: AdamState, adam_rec
    ) -> tuple[torch.Tensor, PassRecord]:
        buf = stored.buffer
        horizon, num_agents = buf.horizon, buf.num_agents
        num_actions, n = policy.w_out.shape[1], policy.num_neurons
        dtype = policy.w_out.dtype
        rows = horizon if rule.pair_after else horizon - 1
        probs = torch.zeros(rows, num_agents, num_actions, dtype=dtype)
        ratio, mask = torch.zeros(rows, num_agents, dtype=dtype), torch.zeros(rows, num_agents, dtype=dtype)
        stats = torch.zeros(num_agents, len(STATS), dtype=torch.float64)
        rec_sum = torch.zeros((num_agents, n, n) if rule.compute_rec else (num_agents, 0, 0), dtype=dtype)
        empty = torch.zeros(num_agents, 0, dtype=dtype)
        rec = adam_rec or AdamState(empty, empty, torch.zeros(num_agents, dtype=torch.float64))
        spike_u = buf.spike_uniforms
        if spike_u is None:
            spike_u = torch.zeros(horizon, num_agents, 0, dtype=dtype)
        credit = stored.credit if stored.credit is not None else stored.met  # read only with clip=ppo
        net = kernel_view(policy)
        adam = torch.tensor([rule.lr, *rule.betas, rule.adam_eps, rule.rec_lr], dtype=torch.float64)
        kernels.replay_pass(
            buf.obs.numpy(), buf.actions.numpy(), smooth(buf.ref_probs).numpy(), stored.met.numpy(),
            buf.lengths.numpy(), spike_u.numpy(), net.w_in, net.w_rec, net.has_rec, net.w_out, net.bias,
            net.noise_width, net.constants, net.gain, smooth_scale(num_actions), rule.gamma, 1.0 - rule.eps,
            1.0 + rule.eps, rule.fast, rule.compute_rec, rule.learn_rec, adam.numpy(),
            adam_out.exp_avg.view(num_agents, -1).numpy(), adam_out.exp_avg_sq.view(num_agents, -1).numpy(),
            adam_out.step.numpy(), rec.exp_avg.view(num_agents, -1).numpy(),
            rec.exp_avg_sq.view(num_agents, -1).numpy(), rec.step.numpy(), probs.numpy(), ratio.numpy(),
            mask.numpy(), stats.numpy(), rec_sum.numpy(), CLIP_MODES[rule.clip], credit.numpy(), rule.pair_after,
        )  # fmt: skip
        return stats, PassRecord(probs, mask, rec_sum if rule.compute_rec else None)

    def readout_traces(self, policy: SpikingPolicy, buf: EpisodeBuffer) -> torch.Tensor:
        horizon, num_agents, dtype = buf.horizon, buf.num_agents, policy.w_out.dtype
        out = torch.zeros(horizon, num_agents, policy.num_neurons, dtype=dtype)
        spike_u = buf.spike_uniforms if buf.spike_uniforms is not None else torch.zeros(horizon, num_agents, 0)
        net = kernel_view(policy)
        critic_kernels.readout_traces(
            buf.obs.numpy(), buf.lengths.numpy(), spike_u.to(dtype).numpy(), net.w_in, net.w_rec, net.has_rec,
            net.bias, net.noise_width, net.constants, out.numpy(),
        )  # fmt: skip
        return out

    def td_deltas(self, readout, buf, terminated, gamma, w_v, adam, settings) -> torch.Tensor:
        out = torch.zeros_like(buf.rewards)
        critic_kernels.td_critic(
            readout.numpy(), buf.rewards.numpy(), buf.lengths.numpy(), terminated.numpy(), gamma, w_v.numpy(),
            adam.exp_avg.numpy(), adam.exp_avg_sq.numpy(), adam.step.numpy(),
            torch.tensor(settings, dtype=torch.float64).numpy(), out.numpy(),
        )  # fmt: skip
        return out

    def adam_zero_step(self, weights: torch.Tensor, state: AdamState, lr: float, betas, adam_eps: float) -> None:
        flat = weights.view(weights.shape[0], -1)
        kernels.adam_zero_step(
            flat.numpy(), state.exp_avg.view(flat.shape).numpy(), state.exp_avg_sq.view(flat.shape).numpy(),
            state.step.numpy(), lr, *betas, adam_eps,
        )  # fmt: skip
