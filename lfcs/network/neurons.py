"""Neuron dynamics and policy read-out of the lf-cs network, as pure functions (METHOD.md §2).

Every function here is ``f(input, state, params) -> (output, new_state)`` or a plain map, over tensors with a
leading agent axis ``B``. Nothing mutates its arguments or draws from a global RNG: spike noise comes in as
pre-drawn uniforms.

Equations (dt = 1, one network step per environment step)::

    s_hat_t = a_s  * s_hat_{t-1} + (1 - a_s)  * z_{t-1}                       norse li_box step
    v_t     = a_m  * v_{t-1}     + (1 - a_m)  * (W_rec s_hat_t + W_in x_t + h) - w_res z_{t-1}
    z_t     = 1[v_t > 0]   or   Bernoulli(sigmoid(v_t / dv))                   norse lif_box step
    p_t     = a_m  * p_{t-1}     + (1 - a_m)  * s_hat_t                        presynaptic eligibility
    r_t     = a_ro * r_{t-1}     + (1 - a_ro) * z_t                            read-out trace
    pi_t    = softmax(kappa * W_out r_t)

norse's ``lif_box_feed_forward_step`` integrates the membrane and thresholds it; we give it a reset that leaves
the membrane untouched so that it returns ``v_t`` *before* the reset (the learning rule's pseudo-derivative needs
that value), and apply the subtractive self-inhibition ``v <- v - z * w_res / a_m`` ourselves. That is exactly
norse's subtractive reset (the ``1 / a_m`` undoes the next step's decay, METHOD.md §2), split in two so the
pre-reset membrane is kept and the stochastic spike variant can replace the threshold.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from norse.torch.functional.leaky_integrator_box import LIBoxParameters, LIBoxState, li_box_feed_forward_step
from norse.torch.functional.lif_box import (
    LIFBoxFeedForwardState,
    LIFBoxParameters,
    lif_box_feed_forward_step,
)

DT = 1.0  # one network step per environment step


class NeuronParams(NamedTuple):
    """Constants of the network, with decay factors computed once from the time constants."""

    decay_mem: float  # a_m = exp(-dt / tau_mem)
    decay_syn: float  # a_s = exp(-dt / tau_syn)
    decay_readout: float  # a_ro = exp(-dt / tau_readout)
    bias: float | torch.Tensor  # h: one value for every neuron, or a (N,) tensor
    self_inhibition: float  # w_res, subtracted from v the step after a spike
    v_episode_start: float  # V0, the membrane at every episode start
    readout_gain: float  # kappa, multiplies W_out r before the softmax
    spike_noise_width: float | None  # dv of the stochastic variant; None = deterministic spikes
    synapse: LIBoxParameters  # norse parameters of the s_hat trace (built once)
    membrane: LIFBoxParameters  # norse parameters of the membrane (built once)


def _keep_membrane(z, v, v_reset, v_th):  # signature of norse's ResetMethod
    return v


def make_neuron_params(
    tau_mem_steps: float,
    tau_syn_steps: float,
    tau_readout_steps: float,
    bias: float | torch.Tensor,
    self_inhibition: float,
    v_episode_start: float,
    readout_gain: float,
    stochastic_spikes: bool = False,
    spike_noise_width: float = 0.05,
) -> NeuronParams:
    decay_mem = math.exp(-DT / tau_mem_steps)
    decay_syn = math.exp(-DT / tau_syn_steps)
    return NeuronParams(
        decay_mem=decay_mem,
        decay_syn=decay_syn,
        decay_readout=math.exp(-DT / tau_readout_steps),
        bias=bias if isinstance(bias, torch.Tensor) else float(bias),
        self_inhibition=float(self_inhibition),
        v_episode_start=float(v_episode_start),
        readout_gain=float(readout_gain),
        spike_noise_width=float(spike_noise_width) if stochastic_spikes else None,
        synapse=LIBoxParameters(tau_mem_inv=1.0 - decay_syn, v_leak=0.0),
        membrane=LIFBoxParameters(
            tau_mem_inv=1.0 - decay_mem,
            v_leak=bias if isinstance(bias, torch.Tensor) else float(bias),
            v_th=0.0,
            method="heaviside",
            reset_method=_keep_membrane,
        ),
    )


class NeuronState(NamedTuple):
    """Per-agent network state, every field ``(B, N)``. ``v`` is the membrane after the self-inhibition."""

    v: torch.Tensor
    z: torch.Tensor
    s_hat: torch.Tensor
    p: torch.Tensor
    r: torch.Tensor


def initial_state(batch: int, num_neurons: int, params: NeuronParams, like: torch.Tensor) -> NeuronState:
    """The state at every episode (and replay pass) start: v = V0, everything else 0."""
    zeros = like.new_zeros(batch, num_neurons)
    return NeuronState(v=torch.full_like(zeros, params.v_episode_start), z=zeros, s_hat=zeros, p=zeros, r=zeros)


def batched_matvec(weights: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``(B, M, K) @ (B, K) -> (B, M)``, one independent product per agent.

    An elementwise product reduced over each row, not ``torch.bmm``: on the CPU a batched BLAS product rounds the
    last bit differently for B = 1 and B > 1 at N = 500 (PITFALLS.md), so an agent's numbers would depend on its
    company. The CPU training path uses ``lfcs.backends.kernels``; this form serves the torch path on any device.
    """
    return (weights * x.unsqueeze(-2)).sum(-1)


def network_step(
    x: torch.Tensor,
    state: NeuronState,
    w_in: torch.Tensor,
    w_rec: torch.Tensor | None,
    params: NeuronParams,
    spike_uniforms: torch.Tensor | None = None,
) -> tuple[torch.Tensor, NeuronState]:
    """One step of the recurrent network for B agents.

    x: (B, I) input; w_in: (B, N, I); w_rec: (B, N, N) or None when it is zero and fixed.
    spike_uniforms: (B, N) uniforms in [0, 1), needed only by the stochastic variant.
    Returns the pre-reset membrane v_t (B, N) and the new state.
    """
    s_hat, _ = li_box_feed_forward_step(state.z, LIBoxState(v=state.s_hat), params.synapse, dt=DT)
    current = batched_matvec(w_in, x)
    if w_rec is not None:
        current = current + batched_matvec(w_rec, s_hat)
    z, lif_state = lif_box_feed_forward_step(current, LIFBoxFeedForwardState(v=state.v), params.membrane, dt=DT)
    v_pre = lif_state.v
    if params.spike_noise_width is not None:
        if spike_uniforms is None:
            raise ValueError("stochastic spikes need spike_uniforms")
        z = (spike_uniforms < torch.sigmoid(v_pre / params.spike_noise_width)).to(v_pre.dtype)
    v_post = v_pre - z * (params.self_inhibition / params.decay_mem)
    p = eligibility_step(s_hat, state.p, params.decay_mem)
    r = eligibility_step(z, state.r, params.decay_readout)
    return v_pre, NeuronState(v=v_post, z=z, s_hat=s_hat, p=p, r=r)


def eligibility_step(signal: torch.Tensor, trace: torch.Tensor, decay: float) -> torch.Tensor:
    """Low-pass trace ``trace' = decay * trace + (1 - decay) * signal`` (presynaptic and read-out traces)."""
    return decay * trace + (1.0 - decay) * signal


def policy_probs(w_out: torch.Tensor, readout: torch.Tensor, readout_gain: float) -> torch.Tensor:
    """pi = softmax(kappa * W_out r): w_out (B, O, N), readout (B, N) -> (B, O)."""
    return torch.softmax(readout_gain * batched_matvec(w_out, readout), dim=-1)


def pseudo_derivative(v_pre: torch.Tensor) -> torch.Tensor:
    """sigma'(v) = sigmoid(v) (1 - sigmoid(v)), width 1 (METHOD.md §3), on the pre-reset membrane."""
    s = torch.sigmoid(v_pre)
    return s * (1.0 - s)


def sample_actions(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Categorical samples by inverse CDF: probs (B, O), uniforms (B,) in [0, 1) -> (B,) long."""
    cdf = probs.cumsum(dim=-1)
    actions = (uniforms.unsqueeze(-1) >= cdf).sum(dim=-1)
    return actions.clamp_(max=probs.shape[-1] - 1)
