"""Compiled CPU kernels of the network (METHOD.md §2) and of the rule (METHOD.md §3), one agent at a time.

Why a kernel: a replayed step of lf-cs is a few thousand floating-point operations, far less than the ~15 tensor
dispatches and one optimiser call it took as torch code; 198 of them per episode made the network cost as much as
the Atari emulator. Here a whole replay pass is one call, and acting is one call per environment step.

Why one agent at a time: every agent runs the same scalar loops over its own rows, so agent b's numbers cannot
depend on which agents share the batch (a batched BLAS product or a vectorised transcendental may round the last
bit differently for different batch sizes). Acting and replay call the same ``_neuron_step`` and ``_policy``, so a
replay with pi_ref's weights reproduces pi_ref's probabilities exactly (e-prop's ratio is exactly 1); the three
ways the recurrent input is formed (``REC_ROWS``, ``REC_COLUMNS``, ``REC_GIVEN``) give the same bits.

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

# _neuron_step's rec_form: how the recurrent input W_rec s_hat reaches the membrane (the same bits every way)
REC_ROWS, REC_GIVEN, REC_COLUMNS = 0, 1, 2
# acting reads W_rec's transpose over the spiking neurons only while fewer than this fraction of them have spiked
# (with every neuron read, the column form ran as fast as the row form in float64 and slower in float32: a trial)
SPARSE_BELOW = 0.75


@njit(cache=True, inline="always", error_model="numpy")
def _neuron_step(x, w_in, w_rec, rec_form, has_rec, bias, decay, beta, has_adapt, v, z, s_hat, p, r, a, v_pre,
                 spike_u, noise_width, c, rec_current, lanes):  # fmt: skip
    """One network step of one agent, in place on its state rows (v, z, s_hat, p, r, a; v_pre receives v_t).

    decay (N,): a_m per neuron. c = (a_a, a_s, a_ro, w_res, V0, smoothing floor): see ``constants``.
    noise_width <= 0: deterministic spikes. has_adapt (alif): a_t = a_a a_{t-1} + z_{t-1} and the threshold
    beta_j a_t (beta (N,), 0 on non-adaptive neurons).
    The recurrent input W_rec s_hat_t goes through rec_current (N,) float64, by rec_form: REC_ROWS, from w_rec
    (N, N) row by row; REC_COLUMNS, from w_rec holding W_rec's transpose, column by column over the nonzero entries
    of s_hat (``_dot_columns``, lanes (4, N) its scratch); REC_GIVEN, already there (the replay's fused sweep
    computed it from this step's s_hat). All three give the same bits.
    """
    a_a, a_s, a_ro, w_res = c[0], c[1], c[2], c[3]
    n, n_in = w_in.shape
    _synaptic_step(s_hat, z, a_s)
    if has_rec and rec_form == REC_ROWS:
        _dot_rows(w_rec, s_hat, rec_current)
    elif has_rec and rec_form == REC_COLUMNS:
        _dot_columns(w_rec, s_hat, rec_current, lanes)
    for i in range(n):
        a_m = decay[i]
        current = 0.0
        for j in range(n_in):
            current += w_in[i, j] * x[j]
        if has_rec:
            current += rec_current[i]
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
def _synaptic_step(s_hat, z, a_s):
    """s_hat_t = a_s s_hat + (1 - a_s) z_{t-1}  (norse li_box: s + (1 - a_s)((0 - s) + z)), in place."""
    for i in range(s_hat.shape[0]):
        s_hat[i] = s_hat[i] + (1.0 - a_s) * ((0.0 - s_hat[i]) + z[i])


@njit(cache=True, inline="always", error_model="numpy")
def _dot_row(w_i, b, partial):
    """_dot(w_i, b), bit for bit, written so that LLVM vectorises it: partial[k + 4] = partial[k] + w_i[k] b[k] is
    _dot's four interleaved sums as one recurrence of distance 4, which the loop vectoriser runs as one 4-lane vector
    sum (_dot's scalar chains wait on the adder's latency; 2x faster at N = 500). partial: (n - n % 4 + 4,) float64
    scratch whose first four entries are 0."""
    n = w_i.shape[0]
    stop = n - n % 4
    for k in range(stop):
        partial[k + 4] = partial[k] + w_i[k] * b[k]
    total = (partial[stop] + partial[stop + 1]) + (partial[stop + 2] + partial[stop + 3])
    for k in range(stop, n):
        total += w_i[k] * b[k]
    return total


@njit(cache=True, inline="always", error_model="numpy")
def _dot_rows(w, b, out):
    """out[i] = _dot(w[i], b) for every row, bit for bit (``_dot_row``)."""
    partial = np.zeros(w.shape[1] - w.shape[1] % 4 + 4)  # float64, as _dot sums
    for i in range(w.shape[0]):
        out[i] = _dot_row(w[i], b, partial)


@njit(cache=True, inline="always", error_model="numpy")
def _dot_columns(w_t, b, out, lanes):
    """out[i] = _dot(w[i], b) for every row of w = w_t's transpose, bit for bit, reading only the rows k of w_t
    where b[k] != 0 (acting's spike-driven product: a neuron that has not spiked this episode has s_hat = 0).

    _dot's partial sum s_l (l = k mod 4, k ascending) of every output at once is lanes[l] (4, N) float64, each
    added to in _dot's order; a skipped term w[i, k] * 0 = +-0 would leave it unchanged (a partial sum that starts
    at +0 is never -0), and the tail k >= n - n % 4 is added after (s0 + s1) + (s2 + s3) as _dot adds it. Rows
    of w_t are contiguous: N reads per spiking neuron instead of N strided ones. (W_rec is finite: 0 inf = nan.)
    """
    n_pre, n = w_t.shape
    stop = n_pre - n_pre % 4
    lanes[:, :] = 0.0
    for k in range(stop):
        b_k = b[k]
        if b_k != 0.0:
            row, lane = w_t[k], lanes[k % 4]
            for i in range(n):
                lane[i] += row[i] * b_k
    for i in range(n):
        out[i] = (lanes[0, i] + lanes[1, i]) + (lanes[2, i] + lanes[3, i])
    for k in range(stop, n_pre):
        row, b_k = w_t[k], b[k]
        for i in range(n):
            out[i] += row[i] * b_k


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
def act_step(t, obs, spike_u, action_u, running, probs, actions, spike_count, w_in, w_rec, w_rec_t, has_rec, w_out,
             bias, decay, beta, has_adapt, v, z, s_hat, p, r, a, v_pre, noise_width, c, gain):  # fmt: skip
    """Acting step t of every running agent: network step, policy, inverse-CDF action sample.

    Whole-episode buffers, indexed at t inside (so the caller passes the same arguments every step): obs (T, B, I),
    spike_u (T, B, N) or (T, B, 0), action_u (T, B); running (B,) bool; writes probs (T, B, O), actions (T, B) at t
    and adds each agent's spikes to spike_count (B,). State rows v, z, s_hat, p, r, a (B, N) change in place; v_pre
    (N,) is scratch; decay (B, N) holds each agent's a_m per neuron. w_rec_t: each agent's W_rec transposed, (B, N, N)
    (or (B, 0, 0): rows only); while fewer than SPARSE_BELOW of the N neurons have spiked this episode (s_hat or z
    nonzero), the recurrent input is read from it over those neurons' rows only (``_dot_columns``: the same bits).
    """
    num_agents, num_actions, n = w_out.shape[0], w_out.shape[1], w_out.shape[2]
    rec_current, lanes = np.empty(n), np.empty((4, n))  # float64, as _dot sums
    for b in range(num_agents):
        if not running[b]:
            continue
        rec_form = REC_ROWS
        if has_rec and w_rec_t.shape[1] > 0:
            active = 0
            for i in range(n):
                active += 1 if (s_hat[b, i] != 0.0 or z[b, i] != 0.0) else 0
            rec_form = REC_COLUMNS if active < SPARSE_BELOW * n else REC_ROWS
        w_rec_b = w_rec_t[b] if rec_form == REC_COLUMNS else w_rec[b]
        _neuron_step(obs[t, b], w_in[b], w_rec_b, rec_form, has_rec, bias, decay[b], beta, has_adapt, v[b], z[b],
                     s_hat[b], p[b], r[b], a[b], v_pre, spike_u[t, b], noise_width, c, rec_current, lanes)  # fmt: skip
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
