"""pi_new's forward pass with gradients for ``learner=bptt``: the network of ``lfcs.network.neurons``, unrolled over
an agent's stored episodes from the reset state, with a surrogate derivative for the spike.

One agent at a time, E episodes side by side (time-major ``(L, E, ...)``). The equations are METHOD.md §2's, with
norse's box steps for s_hat and the membrane (as ``neurons.network_step``)::

    s_hat_t = a_s s_hat_{t-1} + (1 - a_s) z_{t-1}
    v_t     = a_m v_{t-1} + (1 - a_m)(W_rec s_hat_t + W_in x_t + h) - w_res z_{t-1}
    z_t     = 1[v_t > 0], or 1[u_t < sigmoid(v_t / dv)] with acting's uniforms u_t (stochastic spikes)
    r_t     = a_ro r_{t-1} + (1 - a_ro) z_t
    logits  = kappa W_out r_t,   V_t = w_V . r_t      (the value head: a linear read-out of r, like the TD critic's)

The forward value of z_t is computed exactly as acting computes it. Its derivative is norse's HeaviTanh surrogate
(``norse.torch.functional.threshold`` with method "tanh" and alpha = slope) of the spike's margin m_t: v_t, or
v_t - dv logit(u_t) for stochastic spikes (u < sigmoid(v / dv) exactly when v > dv logit(u)), so

    dz_t / dv_t = 1 - tanh(slope m_t)^2             (1 at the threshold, half of it at |m_t| = 0.88 / slope)

Not norse's SuperSpike: in norse 1.1.0 it ignores its ``alpha`` (the derivative is always 1 / (1 + |x|)^2), and its
``setup_context`` form makes torch 2.13 bind its arguments with ``inspect.signature`` on every call (~0.1 ms per
step). The self-inhibition uses the spike without its derivative (``z.detach()``): with w_res / a_m = 117, a
gradient through the reset would multiply every step's gradient by about -100 near the threshold. The forward pass
is unchanged by both choices.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from norse.torch.functional.leaky_integrator_box import LIBoxState, li_box_feed_forward_step
from norse.torch.functional.lif_box import LIFBoxFeedForwardState, lif_box_feed_forward_step
from norse.torch.functional.threshold import threshold

from lfcs.network.neurons import DT, NeuronParams, eligibility_step


class AgentWeights(NamedTuple):
    """One agent's weights, each a fresh tensor (a leaf with ``requires_grad`` where it is learned)."""

    w_in: torch.Tensor  # (N, I)
    w_rec: torch.Tensor | None  # (N, N), None when the network has no recurrent matrix
    w_out: torch.Tensor  # (O, N)
    w_v: torch.Tensor  # (N,) value head


class Unroll(NamedTuple):
    logits: torch.Tensor  # (L, E, O): kappa W_out r_t; pi_t = softmax(logits)
    values: torch.Tensor  # (L, E): V_t = w_V . r_t
    spikes: torch.Tensor  # (L, E, N): z_t


def surrogate_spikes(
    v_pre: torch.Tensor, spike_u: torch.Tensor | None, params: NeuronParams, slope: float
) -> torch.Tensor:
    """z_t (E, N) from the pre-reset membrane: acting's value, HeaviTanh's derivative (see the module docstring)."""
    if params.spike_noise_width is None:
        return threshold(v_pre, "tanh", slope)  # forward: norse's heaviside, as the acting step
    width = params.spike_noise_width
    hard = (spike_u < torch.sigmoid(v_pre / width)).to(v_pre.dtype)  # as neurons.network_step
    soft = threshold(v_pre - width * torch.logit(spike_u), "tanh", slope)
    return hard + (soft - soft.detach())  # the value of hard (soft - soft.detach() is exactly 0), soft's gradient


class _RecurrentWeightGradient(torch.autograd.Function):
    """Zero currents, one (E, N) per step, that carry W_rec's gradient: sum_t g_t^T s_hat_t as one product.

    Autograd would form and add an N x N outer product at every step (three passes over N^2 numbers per step, the
    largest cost of an N = 500 unroll); here the steps multiply s_hat_t by W_rec without its gradient, add these
    zeros, and the gradients g_t of the currents meet the stored s_hat_t once, in backward: the same sum, 1.8x faster
    per step (measured at N = 500, float64)."""

    @staticmethod
    def forward(ctx, w_rec, like, steps, s_hats):
        ctx.s_hats = s_hats  # filled by the unroll, read in backward
        return tuple(torch.zeros_like(like) for _ in range(steps))

    @staticmethod
    def backward(ctx, *grads):
        currents = torch.stack(grads).flatten(0, 1)  # (L E, N)
        return currents.T @ torch.stack(ctx.s_hats).flatten(0, 1), None, None, None


def unroll(
    obs: torch.Tensor, spike_u: torch.Tensor | None, weights: AgentWeights, params: NeuronParams, slope: float
) -> Unroll:
    """Run the network over obs (L, E, I) from the episode-start state; spike_u (L, E, N) or None."""
    steps, episodes = obs.shape[:2]
    num_neurons = weights.w_out.shape[1]
    zeros = obs.new_zeros(episodes, num_neurons)
    v, z, s_hat, r = torch.full_like(zeros, params.v_episode_start), zeros, zeros, zeros
    reset = params.self_inhibition / params.decay_mem
    readouts, spikes, s_hats, carriers = [], [], [], None
    w_rec = weights.w_rec
    if w_rec is not None and w_rec.requires_grad and torch.is_grad_enabled():
        carriers = _RecurrentWeightGradient.apply(w_rec, zeros, steps, s_hats)
        w_rec = w_rec.detach()
    for t in range(steps):
        s_hat, _ = li_box_feed_forward_step(z, LIBoxState(v=s_hat), params.synapse, dt=DT)
        current = obs[t] @ weights.w_in.T  # (E, I) @ (I, N)
        if w_rec is not None:
            current = current + s_hat @ w_rec.T
        if carriers is not None:
            current = current + carriers[t]  # + 0: the value is unchanged
            s_hats.append(s_hat.detach())
        _, membrane = lif_box_feed_forward_step(current, LIFBoxFeedForwardState(v=v), params.membrane, dt=DT)
        v_pre = membrane.v  # params.membrane keeps the membrane: v_t before the self-inhibition
        z = surrogate_spikes(v_pre, None if spike_u is None else spike_u[t], params, slope)
        v = v_pre - z.detach() * reset
        r = eligibility_step(z, r, params.decay_readout)
        readouts.append(r)
        spikes.append(z)
    readout = torch.stack(readouts)  # (L, E, N)
    logits = params.readout_gain * (readout @ weights.w_out.T)
    return Unroll(logits, readout @ weights.w_v, torch.stack(spikes))
