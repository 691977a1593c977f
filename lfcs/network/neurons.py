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

``network.neuron=alif`` (adaptive threshold, LSNN / e-prop, Bellec et al. 2018, 2020) adds per neuron j::

    a_t     = a_a  * a_{t-1}     + z_{t-1}                                     adaptation, a_a = exp(-1 / tau_a)
    z_t     = 1[v_t - beta_j a_t > 0]   or   Bernoulli(sigmoid((v_t - beta_j a_t) / dv))

with beta_j = ``adapt_beta`` on the first round(adapt_fraction N) neurons and 0 on the others (a plain LIF neuron):
each spike raises the neuron's threshold by beta_j, and the raise decays with tau_a. The membrane stays norse's
lif_box step, its threshold moved to beta_j a_t. ``network.tau_mem_steps=[lo, hi]`` draws a_m per neuron and agent
(log-uniform tau_m, ``lfcs.network.policy.build_policy``); the policy then passes its (B, N) decays in here.

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

    decay_mem: float | torch.Tensor | None  # a_m = exp(-dt / tau_mem); (B, N) per neuron; None = not drawn yet
    decay_syn: float  # a_s = exp(-dt / tau_syn)
    decay_readout: float  # a_ro = exp(-dt / tau_readout)
    bias: float | torch.Tensor  # h: one value for every neuron, or a (N,) tensor
    self_inhibition: float  # w_res, subtracted from v the step after a spike
    v_episode_start: float  # V0, the membrane at every episode start
    readout_gain: float  # kappa, multiplies W_out r before the softmax
    spike_noise_width: float | None  # dv of the stochastic variant; None = deterministic spikes
    synapse: LIBoxParameters  # norse parameters of the s_hat trace (built once)
    membrane: LIFBoxParameters  # norse parameters of the membrane (built once)
    decay_adapt: float = 1.0  # a_a = exp(-dt / tau_adapt) of alif neurons
    adapt_beta: torch.Tensor | None = None  # (N,) beta_j of alif (0 on non-adaptive neurons); None = lif_box


NEURONS = ("lif_box", "alif")


def is_range(tau_mem_steps) -> bool:
    """network.tau_mem_steps given as [min, max] (drawn per neuron and agent) rather than one number."""
    return not isinstance(tau_mem_steps, (int, float))


def adaptive_count(num_neurons: int, adapt_fraction: float) -> int:
    """How many neurons adapt: the first round(adapt_fraction * N) (Python's round, half to even)."""
    return int(round(adapt_fraction * num_neurons))


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
    neuron: str = "lif_box",
    num_neurons: int | None = None,
    tau_adapt_steps: float = 100.0,
    adapt_beta: float = 0.4,
    adapt_fraction: float = 0.5,
) -> NeuronParams:
    """The network's constants. A [min, max] ``tau_mem_steps`` leaves decay_mem None: the policy holds the per-neuron
    decays it drew. ``neuron="alif"`` needs ``num_neurons`` (beta_j is set on the first neurons)."""
    if neuron not in NEURONS:
        raise ValueError(f"network.neuron={neuron!r}: allowed values are {', '.join(NEURONS)}")
    decay_mem = None if is_range(tau_mem_steps) else math.exp(-DT / tau_mem_steps)
    decay_syn = math.exp(-DT / tau_syn_steps)
    beta = None
    if neuron == "alif":
        beta = torch.zeros(num_neurons, dtype=torch.float64)
        beta[: adaptive_count(num_neurons, adapt_fraction)] = float(adapt_beta)
    params = NeuronParams(
        decay_mem=None,
        decay_syn=decay_syn,
        decay_readout=math.exp(-DT / tau_readout_steps),
        bias=bias if isinstance(bias, torch.Tensor) else float(bias),
        self_inhibition=float(self_inhibition),
        v_episode_start=float(v_episode_start),
        readout_gain=float(readout_gain),
        spike_noise_width=float(spike_noise_width) if stochastic_spikes else None,
        synapse=LIBoxParameters(tau_mem_inv=1.0 - decay_syn, v_leak=0.0),
        membrane=LIFBoxParameters(
            tau_mem_inv=None,
            v_leak=bias if isinstance(bias, torch.Tensor) else float(bias),
            v_th=0.0,
            method="heaviside",
            reset_method=_keep_membrane,
        ),
        decay_adapt=math.exp(-DT / tau_adapt_steps),
        adapt_beta=beta,
    )
    return params if decay_mem is None else with_decay_mem(params, decay_mem)


def with_decay_mem(params: NeuronParams, decay_mem: float | torch.Tensor) -> NeuronParams:
    """params with the membrane decay a_m: one number, or (B, N) per agent and neuron (heterogeneous tau_m)."""
    membrane = params.membrane._replace(tau_mem_inv=1.0 - decay_mem)
    return params._replace(decay_mem=decay_mem, membrane=membrane)


class NeuronState(NamedTuple):
    """Per-agent network state, every field ``(B, N)``. ``v`` is the membrane after the self-inhibition; ``a`` the
    adaptation of alif neurons (0 for lif_box)."""

    v: torch.Tensor
    z: torch.Tensor
    s_hat: torch.Tensor
    p: torch.Tensor
    r: torch.Tensor
    a: torch.Tensor


def initial_state(batch: int, num_neurons: int, params: NeuronParams, like: torch.Tensor) -> NeuronState:
    """The state at every episode (and replay pass) start: v = V0, everything else 0."""
    zeros = like.new_zeros(batch, num_neurons)
    v = torch.full_like(zeros, params.v_episode_start)
    return NeuronState(v=v, z=zeros, s_hat=zeros, p=zeros, r=zeros, a=zeros)


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
    membrane, a = params.membrane, state.a
    if params.adapt_beta is not None:  # alif: the threshold beta_j a_t, with a_t = a_a a_{t-1} + z_{t-1}
        a = adaptation_step(state.z, state.a, params.decay_adapt)
        membrane = membrane._replace(v_th=adaptive_threshold(a, params))
    z, lif_state = lif_box_feed_forward_step(current, LIFBoxFeedForwardState(v=state.v), membrane, dt=DT)
    v_pre = lif_state.v
    if params.spike_noise_width is not None:
        if spike_uniforms is None:
            raise ValueError("stochastic spikes need spike_uniforms")
        drive = v_pre if params.adapt_beta is None else v_pre - membrane.v_th
        z = (spike_uniforms < torch.sigmoid(drive / params.spike_noise_width)).to(v_pre.dtype)
    v_post = v_pre - z * (params.self_inhibition / params.decay_mem)
    p = eligibility_step(s_hat, state.p, params.decay_mem)
    r = eligibility_step(z, state.r, params.decay_readout)
    return v_pre, NeuronState(v=v_post, z=z, s_hat=s_hat, p=p, r=r, a=a)


def adaptation_step(z_prev: torch.Tensor, a_prev: torch.Tensor, decay_adapt: float) -> torch.Tensor:
    """a_t = a_a a_{t-1} + z_{t-1}: e-prop's adaptation variable (each spike adds 1, decaying with tau_a)."""
    return decay_adapt * a_prev + z_prev


def adaptive_threshold(a: torch.Tensor, params: NeuronParams) -> torch.Tensor:
    """The spike threshold beta_j a_t (B, N) of alif neurons (0 on non-adaptive ones); 0 for lif_box."""
    if params.adapt_beta is None:
        return torch.zeros_like(a)
    return params.adapt_beta.to(a) * a


def eligibility_step(signal: torch.Tensor, trace: torch.Tensor, decay: float) -> torch.Tensor:
    """Low-pass trace ``trace' = decay * trace + (1 - decay) * signal`` (presynaptic and read-out traces)."""
    return decay * trace + (1.0 - decay) * signal


def policy_probs(w_out: torch.Tensor, readout: torch.Tensor, readout_gain: float) -> torch.Tensor:
    """pi = softmax(kappa * W_out r): w_out (B, O, N), readout (B, N) -> (B, O)."""
    return torch.softmax(readout_gain * batched_matvec(w_out, readout), dim=-1)


def pseudo_derivative(v_pre: torch.Tensor) -> torch.Tensor:
    """sigma'(v) = sigmoid(v) (1 - sigmoid(v)), width 1 (METHOD.md §3), on the pre-reset membrane (alif: on
    v_t - beta_j a_t, the distance to the neuron's threshold)."""
    s = torch.sigmoid(v_pre)
    return s * (1.0 - s)


def sample_actions(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Categorical samples by inverse CDF: probs (B, O), uniforms (B,) in [0, 1) -> (B,) long."""
    cdf = probs.cumsum(dim=-1)
    actions = (uniforms.unsqueeze(-1) >= cdf).sum(dim=-1)
    return actions.clamp_(max=probs.shape[-1] - 1)
