"""Compiled CPU kernels of the network (METHOD.md §2) and of the rule (METHOD.md §3), one agent at a time.

Why a kernel: a replayed step of lf-cs is a few thousand floating-point operations, far less than the ~15 tensor
dispatches and one optimiser call it took as torch code; 198 of them per episode made the network cost as much as
the Atari emulator. Here a whole replay pass is one call, and acting is one call per environment step.

Why one agent at a time: every agent runs the same scalar loops over its own rows, so agent b's numbers cannot
depend on which agents share the batch (a batched BLAS product or a vectorised transcendental may round the last
bit differently for different batch sizes). Acting and replay call the same ``_neuron_step`` and ``_policy``, so a
replay with pi_ref's weights reproduces pi_ref's probabilities exactly (e-prop's ratio is exactly 1).

The equations are those of ``lfcs.network.neurons`` (norse's box steps, written in norse's own update form) and
``lfcs.rules.maths``; ``tests/test_kernels.py`` pins the two implementations together and the golden files pin both.
The replay pass and its e-prop traces are in ``replay_kernels``; the critic's kernels in ``critic_kernels``.
Arrays are numpy views of the policy's torch tensors (CPU only); nothing here allocates per step.
``error_model="numpy"``: a float division follows IEEE (no Python ZeroDivisionError check, which kept the Adam loop
from vectorising); no divisor here can be 0 (smooth(q) >= 0.01 / (1 + 0.01 O), a softmax sum >= 1).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, inline="always", error_model="numpy")
def _neuron_step(x, w_in, w_rec, has_rec, bias, decay, beta, has_adapt, v, z, s_hat, p, r, a, v_pre, spike_u,
                 noise_width, c):  # fmt: skip
    """One network step of one agent, in place on its state rows (v, z, s_hat, p, r, a; v_pre receives v_t).

    decay (N,): a_m per neuron. c = (a_a, a_s, a_ro, w_res, V0, smoothing floor): see ``constants``.
    noise_width <= 0: deterministic spikes. has_adapt (alif): a_t = a_a a_{t-1} + z_{t-1} and the threshold
    beta_j a_t (beta (N,), 0 on non-adaptive neurons).
    """
    a_a, a_s, a_ro, w_res = c[0], c[1], c[2], c[3]
    n, n_in = w_in.shape
    for i in range(n):  # s_hat_t = a_s s_hat + (1 - a_s) z_{t-1}  (norse li_box: s + (1 - a_s)((0 - s) + z))
        s_hat[i] = s_hat[i] + (1.0 - a_s) * ((0.0 - s_hat[i]) + z[i])
    for i in range(n):
        a_m = decay[i]
        current = 0.0
        for j in range(n_in):
            current += w_in[i, j] * x[j]
        if has_rec:
            current += _dot(w_rec[i], s_hat)
        # norse lif_box: v + (1 - a_m)((h - v) + I) = a_m v + (1 - a_m)(I + h)
        vp = v[i] + (1.0 - a_m) * ((bias[i] - v[i]) + current)
        v_pre[i] = vp
        drive = vp
        if has_adapt:  # z[i] is still z_{t-1} here
            a[i] = a_a * a[i] + z[i]
            drive = vp - beta[i] * a[i]
        if noise_width > 0.0:
            spike = 1.0 if spike_u[i] < 1.0 / (1.0 + math.exp(-drive / noise_width)) else 0.0
        else:
            spike = 1.0 if drive > 0.0 else 0.0
        z[i] = spike
        v[i] = vp - spike * (w_res / a_m)  # subtractive self-inhibition, before the next decay
        p[i] = a_m * p[i] + (1.0 - a_m) * s_hat[i]
        r[i] = a_ro * r[i] + (1.0 - a_ro) * spike


@njit(cache=True, inline="always", error_model="numpy")
def _dot(a, b):
    """sum_i a[i] b[i] in a fixed order: four interleaved partial sums, then the tail. Four independent chains run
    about four times faster than one, and the order (hence every rounding) is the same wherever it is called."""
    n = a.shape[0]
    s0 = s1 = s2 = s3 = 0.0
    stop = n - n % 4
    for i in range(0, stop, 4):
        s0 += a[i] * b[i]
        s1 += a[i + 1] * b[i + 1]
        s2 += a[i + 2] * b[i + 2]
        s3 += a[i + 3] * b[i + 3]
    total = (s0 + s1) + (s2 + s3)
    for i in range(stop, n):
        total += a[i] * b[i]
    return total


@njit(cache=True, inline="always", error_model="numpy")
def _policy(w_out, r, gain, probs):
    """probs = softmax(gain * W_out r) for one agent (max subtracted, as torch.softmax does)."""
    num_actions = w_out.shape[0]
    top = -np.inf
    for o in range(num_actions):
        acc = _dot(w_out[o], r)
        probs[o] = gain * acc
        top = max(top, probs[o])
    total = 0.0
    for o in range(num_actions):
        probs[o] = math.exp(probs[o] - top)
        total += probs[o]
    for o in range(num_actions):
        probs[o] = probs[o] / total


@njit(cache=True, error_model="numpy")
def act_step(t, obs, spike_u, action_u, running, probs, actions, spike_count, w_in, w_rec, has_rec, w_out, bias, decay,
             beta, has_adapt, v, z, s_hat, p, r, a, v_pre, noise_width, c, gain):  # fmt: skip
    """Acting step t of every running agent: network step, policy, inverse-CDF action sample.

    Whole-episode buffers, indexed at t inside (so the caller passes the same arguments every step): obs (T, B, I),
    spike_u (T, B, N) or (T, B, 0), action_u (T, B); running (B,) bool; writes probs (T, B, O), actions (T, B) at t
    and adds each agent's spikes to spike_count (B,). State rows v, z, s_hat, p, r, a (B, N) change in place; v_pre
    (N,) is scratch; decay (B, N) holds each agent's a_m per neuron.
    """
    num_agents, num_actions = w_out.shape[0], w_out.shape[1]
    for b in range(num_agents):
        if not running[b]:
            continue
        _neuron_step(obs[t, b], w_in[b], w_rec[b], has_rec, bias, decay[b], beta, has_adapt, v[b], z[b], s_hat[b],
                     p[b], r[b], a[b], v_pre, spike_u[t, b], noise_width, c)  # fmt: skip
        _policy(w_out[b], r[b], gain, probs[t, b])
        cdf, action = 0.0, 0
        for o in range(num_actions):
            cdf += probs[t, b, o]
            if action_u[t, b] >= cdf:
                action += 1
        actions[t, b] = min(action, num_actions - 1)
        spike_count[b] += z[b].sum()


@njit(cache=True, inline="always", error_model="numpy")
def _adam_scalars(step, lr, beta1, beta2):
    """Adam's step size lr / (1 - beta1^t) and 1 / sqrt(1 - beta2^t) at step t."""
    return lr / (1.0 - beta1**step), 1.0 / math.sqrt(1.0 - beta2**step)


@njit(cache=True, inline="always", error_model="numpy")
def _adam_ascent(param, grad, m, v, step, lr, beta1, beta2, adam_eps):
    """One Adam step of torch's maximize mode on flat rows (param, grad = D, moments of -D); step already counted."""
    step_size, inv_bias2_sqrt = _adam_scalars(step, lr, beta1, beta2)
    for k in range(param.shape[0]):
        g = -grad[k]
        m[k] = m[k] + (1.0 - beta1) * (g - m[k])
        v[k] = beta2 * v[k] + (1.0 - beta2) * g * g
        param[k] = param[k] - step_size * m[k] / (math.sqrt(v[k]) * inv_bias2_sqrt + adam_eps)


@njit(cache=True, error_model="numpy")
def adam_zero_step(params, m, v, steps, lr, beta1, beta2, adam_eps):
    """The end-of-episode Adam step with a zero gradient for every agent: params, m, v (B, K); steps (B,)."""
    zero = np.zeros(params.shape[1], dtype=params.dtype)
    for b in range(params.shape[0]):
        steps[b] += 1.0
        _adam_ascent(params[b], zero, m[b], v[b], steps[b], lr, beta1, beta2, adam_eps)
