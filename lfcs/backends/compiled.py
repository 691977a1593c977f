"""``backend=kernels``: the :class:`~lfcs.backends.base.Backend` operations as compiled numba kernels (CPU only).

Each operation hands numpy views of the torch tensors to one kernel call of ``kernels`` (network, policy, replay,
Adam) or ``critic_kernels`` (read-out traces, TD(0)); the kernels loop one agent at a time, so an agent's numbers
do not depend on which agents share its group.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch

from lfcs.backends import critic_kernels, kernels, replay_kernels
from lfcs.backends.base import Actor, Backend
from lfcs.network.policy import SpikingPolicy
from lfcs.rules.episodes import EpisodeBuffer, StoredEpisode
from lfcs.rules.maths import CLIP_MODES, SMOOTH_FLOOR, AdamState, smooth, smooth_scale
from lfcs.rules.replay import STATS, PassRecord, ReplayRule, steps_hidden_per_replayed_step


class KernelView(NamedTuple):
    """The network as numpy views of the policy's CPU tensors, in the argument forms of ``kernels``."""

    w_in: np.ndarray  # (B, N, I)
    w_rec: np.ndarray  # (B, N, N), or (B, 0, 0) when there is no recurrent matrix
    has_rec: bool
    w_out: np.ndarray  # (B, O, N)
    bias: np.ndarray  # (N,) h
    noise_width: float  # dv of the stochastic spikes; 0 = deterministic
    constants: np.ndarray  # (a_a, a_s, a_ro, w_res, V0, smoothing floor)
    gain: float  # kappa
    decay: np.ndarray  # (B, N) a_m of every agent's neurons, float64 (as the scalar a_m was)
    beta: np.ndarray  # (N,) beta_j of alif, float64; zeros for lif_box
    has_adapt: bool  # network.neuron=alif
    n_adapt: int  # rows of eps_a: the neurons up to the last one with beta_j != 0
    hetero: bool  # per-neuron a_m (network.tau_mem_steps=[lo, hi]): per-synapse eps_v
    feedback: np.ndarray  # (B, O, N): W_out, or learner.feedback=random's fixed matrix


def kernel_view(policy: SpikingPolicy) -> KernelView:
    p, (num_agents, num_neurons) = policy.params, (policy.num_agents, policy.num_neurons)
    dtype = policy.w_out.dtype
    w_rec = policy.w_rec if policy.w_rec is not None else torch.zeros(num_agents, 0, 0, dtype=dtype)
    bias = torch.as_tensor(p.bias, dtype=dtype).expand(num_neurons).contiguous()
    constants = [p.decay_adapt, p.decay_syn, p.decay_readout, p.self_inhibition, p.v_episode_start, SMOOTH_FLOOR]
    hetero = policy.decay_mem is not None
    if hetero:
        decay = policy.decay_mem.to(torch.float64).contiguous()
    else:
        decay = torch.full((num_agents, num_neurons), p.decay_mem, dtype=torch.float64)
    beta = torch.zeros(num_neurons, dtype=torch.float64) if p.adapt_beta is None else p.adapt_beta.to(torch.float64)
    nonzero = beta.nonzero()
    return KernelView(
        policy.w_in.numpy(),
        w_rec.numpy(),
        policy.w_rec is not None,
        policy.w_out.numpy(),
        bias.numpy(),
        p.spike_noise_width or 0.0,
        np.array(constants, dtype=np.float64),
        p.readout_gain,
        decay.numpy(),
        beta.contiguous().numpy(),
        p.adapt_beta is not None,
        int(nonzero[-1]) + 1 if len(nonzero) else 0,
        hetero,
        policy.feedback.numpy(),
    )


@contextmanager
def flush_subnormals(on: bool) -> Iterator[None]:
    """While on: subnormal floats read and computed as 0 (x86 FTZ/DAZ, this thread only), then IEEE again (the default).

    Every float32 kernel runs so. Its W_rec sweep computes in float32, where Adam's moments and the traces of neurons
    far below threshold (sigma'(v) ~ e^-100 right after a spike) fall below 1.2e-38: each subnormal operand cost a
    microcode assist (~100x an ordinary operation) and made float32 replay 2.5x slower than float64. Acting and the
    critic's read-out traces run so too, so that a replay with pi_ref's weights still reproduces acting exactly.
    float64 is left IEEE. (torch.set_flush_denormal does nothing off x86: there float32 keeps subnormals.)
    """
    if not on:
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _float32_flushed(operation):
    """Runs a backend operation inside ``flush_subnormals`` when its first argument (policy or tensor) is float32."""

    @functools.wraps(operation)
    def run(self, first, *args, **kwargs):
        dtype = first.w_out.dtype if isinstance(first, SpikingPolicy) else first.dtype
        with flush_subnormals(dtype == torch.float32):
            return operation(self, first, *args, **kwargs)

    return run


class KernelActor(Actor):
    """pi_ref's acting step as one compiled call for all agents (``kernels.act_step``), on numpy views."""

    def __init__(self, policy: SpikingPolicy, obs, spike_u, action_u, probs, actions, spike_count):
        net = kernel_view(policy)
        state = [x.numpy().copy() for x in policy.initial_state()]  # v, z, s_hat, p, r, a: (B, N)
        noise = np.zeros((*obs.shape[:2], 0), dtype=state[0].dtype) if spike_u is None else spike_u.numpy()
        buffers = (obs.numpy(), noise, action_u.numpy())
        outputs = (probs.numpy(), actions.numpy(), spike_count)
        # pi_ref's W_rec transposed, once per episode: acting's spike-driven product reads its rows (kernels.act_step)
        w_rec_t = np.ascontiguousarray(net.w_rec.transpose(0, 2, 1)) if net.has_rec else net.w_rec
        weights = (net.w_in, net.w_rec, w_rec_t, net.has_rec, net.w_out, net.bias, net.decay, net.beta, net.has_adapt)
        scratch = np.empty(policy.num_neurons, dtype=state[0].dtype)
        self.args = (buffers, outputs, weights, (*state, scratch, net.noise_width, net.constants, net.gain))
        self.float32 = policy.w_out.dtype == torch.float32

    def step(self, t: int, running: np.ndarray) -> None:
        buffers, outputs, weights, rest = self.args
        if not self.float32:  # once per env step: no context manager where there is nothing to switch
            kernels.act_step(t, *buffers, running, *outputs, *weights, *rest)
            return
        with flush_subnormals(True):
            kernels.act_step(t, *buffers, running, *outputs, *weights, *rest)


class CompiledBackend(Backend):
    name = "kernels"

    def actor(self, policy, obs, spike_uniforms, action_uniforms, probs, actions, spike_count) -> Actor:
        return KernelActor(policy, obs, spike_uniforms, action_uniforms, probs, actions, spike_count)

    @_float32_flushed
    def replay_pass(
        self,
        policy: SpikingPolicy,
        stored: StoredEpisode,
        rule: ReplayRule,
        adam_out: AdamState,
        adam_rec,
        adam_in=None,
    ) -> tuple[torch.Tensor, PassRecord]:
        buf = stored.buffer
        horizon, num_agents, n_in = buf.horizon, buf.num_agents, buf.obs.shape[2]
        num_actions, n = policy.w_out.shape[1], policy.num_neurons
        dtype = policy.w_out.dtype
        rows = horizon if rule.pair_after else horizon - 1
        probs = torch.zeros(rows, num_agents, num_actions, dtype=dtype)
        ratio, mask = torch.zeros(rows, num_agents, dtype=dtype), torch.zeros(rows, num_agents, dtype=dtype)
        stats = torch.zeros(num_agents, len(STATS), dtype=torch.float64)
        rec_sum = torch.zeros((num_agents, n, n) if rule.compute_rec and rule.record_sums else (num_agents, 0, 0),
                              dtype=dtype)  # fmt: skip
        in_sum = torch.zeros((num_agents, n, n_in) if rule.learn_in and rule.record_sums else (num_agents, 0, 0),
                             dtype=dtype)  # fmt: skip
        spike_u = buf.spike_uniforms
        if spike_u is None:
            spike_u = torch.zeros(horizon, num_agents, 0, dtype=dtype)
        credit = stored.credit if stored.credit is not None else stored.met  # read only with clip=ppo
        net = kernel_view(policy)
        episode = (buf.obs.numpy(), buf.actions.numpy(), smooth(buf.ref_probs).numpy(), stored.met.numpy(),
                   buf.lengths.numpy(), spike_u.numpy(), credit.numpy())  # fmt: skip
        network = (net.w_in, net.w_rec, net.has_rec, net.w_out, net.feedback, net.bias, net.decay, net.beta,
                   net.has_adapt, net.n_adapt, net.hetero, net.noise_width, net.constants, net.gain)  # fmt: skip
        settings = (smooth_scale(num_actions), rule.gamma, 1.0 - rule.eps, 1.0 + rule.eps, rule.fast, rule.compute_rec,
                    rule.learn_rec, CLIP_MODES[rule.clip], rule.pair_after, rule.learn_in,
                    steps_hidden_per_replayed_step(rule), float(rule.rate_reg), float(rule.rate_target))  # fmt: skip
        lrs = torch.tensor([rule.lr, *rule.betas, rule.adam_eps, rule.rec_lr, rule.in_lr], dtype=torch.float64)
        moments = [lrs.numpy()]
        for state in (adam_out, adam_rec, adam_in):
            moments.extend(_adam_views(state, num_agents, dtype))
        outs = (probs.numpy(), ratio.numpy(), mask.numpy(), stats.numpy(), rec_sum.numpy(), in_sum.numpy())
        replay_kernels.replay_pass(episode, network, settings, tuple(moments), outs)
        rec_sum, in_sum = (x if x.shape[1] else None for x in (rec_sum, in_sum))  # recorded or None
        record = PassRecord(probs, mask, rec_sum, in_sum)
        return stats, record

    @_float32_flushed
    def readout_traces(self, policy: SpikingPolicy, buf: EpisodeBuffer) -> torch.Tensor:
        horizon, num_agents, dtype = buf.horizon, buf.num_agents, policy.w_out.dtype
        out = torch.zeros(horizon, num_agents, policy.num_neurons, dtype=dtype)
        spike_u = buf.spike_uniforms if buf.spike_uniforms is not None else torch.zeros(horizon, num_agents, 0)
        net = kernel_view(policy)
        critic_kernels.readout_traces(
            buf.obs.numpy(), buf.lengths.numpy(), spike_u.to(dtype).numpy(), net.w_in, net.w_rec, net.has_rec,
            net.bias, net.decay, net.beta, net.has_adapt, net.noise_width, net.constants, out.numpy(),
        )  # fmt: skip
        return out

    @_float32_flushed
    def td_deltas(self, readout, buf, terminated, gamma, w_v, adam, settings) -> torch.Tensor:
        out = torch.zeros_like(buf.rewards)
        critic_kernels.td_critic(
            readout.numpy(), buf.rewards.numpy(), buf.lengths.numpy(), terminated.numpy(), gamma, w_v.numpy(),
            adam.exp_avg.numpy(), adam.exp_avg_sq.numpy(), adam.step.numpy(),
            torch.tensor(settings, dtype=torch.float64).numpy(), out.numpy(),
        )  # fmt: skip
        return out

    @_float32_flushed
    def adam_zero_step(self, weights: torch.Tensor, state: AdamState, lr: float, betas, adam_eps: float) -> None:
        flat = weights.view(weights.shape[0], -1)
        kernels.adam_zero_step(
            flat.numpy(), state.exp_avg.view(flat.shape).numpy(), state.exp_avg_sq.view(flat.shape).numpy(),
            state.step.numpy(), lr, *betas, adam_eps,
        )  # fmt: skip


def _adam_views(state: AdamState | None, num_agents: int, dtype: torch.dtype) -> list[np.ndarray]:
    """Moments (B, K) and step counts (B,) of one weight's Adam state as numpy views; empty arrays for None."""
    if state is None:
        empty = torch.zeros(num_agents, 0, dtype=dtype)
        return [empty.numpy(), empty.clone().numpy(), np.zeros(num_agents)]
    flat = (state.exp_avg.view(num_agents, -1), state.exp_avg_sq.view(num_agents, -1))
    return [flat[0].numpy(), flat[1].numpy(), state.step.numpy()]
