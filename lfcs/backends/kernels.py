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
Arrays are numpy views of the policy's torch tensors (CPU only); nothing here allocates per step.
``error_model="numpy"``: a float division follows IEEE (no Python ZeroDivisionError check, which kept the Adam loop
from vectorising); no divisor here can be 0 (smooth(q) >= 0.01 / (1 + 0.01 O), a softmax sum >= 1).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from lfcs.rules.maths import CLIP_MODES

# Indices into the `out_stats` rows of a replay pass.
STAT_MASKED, STAT_ABS_LOG_RATIO, STAT_APPROX_KL = 0, 1, 2
# learner.clip as the kernel's clip_mode.
CLIP_MASK, CLIP_NONE, CLIP_PPO = CLIP_MODES["mask"], CLIP_MODES["none"], CLIP_MODES["ppo"]


@njit(cache=True, inline="always", error_model="numpy")
def _neuron_step(x, w_in, w_rec, has_rec, bias, v, z, s_hat, p, r, v_pre, spike_u, noise_width, c):
    """One network step of one agent, in place on its state rows (v, z, s_hat, p, r; v_pre receives v_t).

    c = (a_m, a_s, a_ro, w_res, V0, smoothing floor): see ``constants``. noise_width <= 0: deterministic spikes.
    """
    a_m, a_s, a_ro, w_res = c[0], c[1], c[2], c[3]
    n, n_in = w_in.shape
    for i in range(n):  # s_hat_t = a_s s_hat + (1 - a_s) z_{t-1}  (norse li_box: s + (1 - a_s)((0 - s) + z))
        s_hat[i] = s_hat[i] + (1.0 - a_s) * ((0.0 - s_hat[i]) + z[i])
    for i in range(n):
        current = 0.0
        for j in range(n_in):
            current += w_in[i, j] * x[j]
        if has_rec:
            current += _dot(w_rec[i], s_hat)
        # norse lif_box: v + (1 - a_m)((h - v) + I) = a_m v + (1 - a_m)(I + h)
        vp = v[i] + (1.0 - a_m) * ((bias[i] - v[i]) + current)
        v_pre[i] = vp
        if noise_width > 0.0:
            spike = 1.0 if spike_u[i] < 1.0 / (1.0 + math.exp(-vp / noise_width)) else 0.0
        else:
            spike = 1.0 if vp > 0.0 else 0.0
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
def act_step(t, obs, spike_u, action_u, running, probs, actions, spike_count, w_in, w_rec, has_rec, w_out, bias, v,
             z, s_hat, p, r, v_pre, noise_width, c, gain):  # fmt: skip
    """Acting step t of every running agent: network step, policy, inverse-CDF action sample.

    Whole-episode buffers, indexed at t inside (so the caller passes the same arguments every step): obs (T, B, I),
    spike_u (T, B, N) or (T, B, 0), action_u (T, B); running (B,) bool; writes probs (T, B, O), actions (T, B) at t
    and adds each agent's spikes to spike_count (B,). State rows v, z, s_hat, p, r (B, N) change in place; v_pre
    (N,) is scratch.
    """
    num_agents, num_actions = w_out.shape[0], w_out.shape[1]
    for b in range(num_agents):
        if not running[b]:
            continue
        _neuron_step(obs[t, b], w_in[b], w_rec[b], has_rec, bias, v[b], z[b], s_hat[b], p[b], r[b], v_pre,
                     spike_u[t, b], noise_width, c)  # fmt: skip
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


@njit(cache=True, error_model="numpy")
def replay_pass(obs, actions, smooth_ref, adv, lengths, spike_u, w_in, w_rec, has_rec, w_out, bias, noise_width,
                c, gain, smooth_scale, gamma, lo, hi, fast, compute_rec, learn_rec, adam, out_m, out_v, out_steps,
                rec_m, rec_v, rec_steps, out_probs, out_ratio, out_mask, out_stats, rec_sum, clip_mode, credit,
                pair_after):  # fmt: skip
    """One replay pass of pi_new over every agent's stored episode (METHOD.md §3), updating its weights in place.

    obs (T, B, I); actions (T, B); smooth_ref (T, B, O) = smooth(q_t); adv (T, B): the advantage met at step t;
    lengths (B,). spike_u (T, B, N): the uniforms acting drew (common random numbers).
    pair_after false (the paper): agent b replays t = 0 .. lengths[b] - 2 and D += adv_t E_{t-1} before the trace
    moves; true (``terminal_credit``): t = 0 .. lengths[b] - 1 and D += adv_t E_t after it.
    clip_mode: CLIP_MASK (m = 1[lo < rho < hi]), CLIP_NONE (m = 1) or CLIP_PPO (m = 1[rho C <= clip(rho) C] with
    C = credit[t, b], the discounted advantage that step t's trace meets).
    adam = (lr, beta1, beta2, eps, lr of W_rec); Adam moments (B, K) and step counts (B,) of W_out and, with learn_rec,
    of W_rec.
    Records probabilities (T, B, O), rho(a_t) and masks (T, B) of the replayed steps, per-agent sums of the
    statistics (B, 3) and, with compute_rec, the pass's sum of the D_rec terms (B, N, N).
    """
    horizon, num_agents, _ = obs.shape
    num_actions, n = w_out.shape[1], w_out.shape[2]
    lr, beta1, beta2, adam_eps, rec_lr = adam[0], adam[1], adam[2], adam[3], adam[4]
    dtype = w_out.dtype
    v, z, s_hat, p = np.empty(n, dtype=dtype), np.empty(n, dtype=dtype), np.empty(n, dtype=dtype), np.empty(n, dtype)
    r, v_pre, post = np.empty(n, dtype=dtype), np.empty(n, dtype=dtype), np.empty(n, dtype=dtype)
    probs, coef = np.empty(num_actions, dtype=dtype), np.empty(num_actions, dtype=dtype)
    elig_out, grad_out = np.empty((num_actions, n), dtype=dtype), np.empty((num_actions, n), dtype=dtype)
    rec_shape = (n, n) if compute_rec else (0, 0)
    elig_rec, grad_rec = np.empty(rec_shape, dtype=dtype), np.empty(rec_shape, dtype=dtype)
    for b in range(num_agents):
        v[:] = c[4]  # V0; everything else starts at 0 on every pass
        z[:], s_hat[:], p[:], r[:] = 0.0, 0.0, 0.0, 0.0
        elig_out[:, :], grad_out[:, :] = 0.0, 0.0
        if compute_rec:
            elig_rec[:, :], grad_rec[:, :] = 0.0, 0.0
        w_out_b, flat_out = w_out[b], w_out[b].reshape(-1)
        steps = lengths[b] if pair_after else lengths[b] - 1
        for t in range(steps):
            _neuron_step(obs[t, b], w_in[b], w_rec[b], has_rec, bias, v, z, s_hat, p, r, v_pre, spike_u[t, b],
                         noise_width, c)  # fmt: skip
            _policy(w_out_b, r, gain, probs)
            a = actions[t, b]
            ratio = ((probs[a] + c[5]) / smooth_scale) / smooth_ref[t, b, a]
            if clip_mode == CLIP_MASK:
                mask = 1.0 if lo < ratio < hi else 0.0
            elif clip_mode == CLIP_NONE:
                mask = 1.0
            else:  # PPO's min(rho C, clip(rho) C): the gradient survives where the unclipped term is the smaller
                clipped = min(max(ratio, lo), hi)
                mask = 1.0 if ratio * credit[t, b] <= clipped * credit[t, b] else 0.0
            log_ratio = math.log(ratio)
            out_stats[b, STAT_MASKED] += 1.0 - mask
            out_stats[b, STAT_ABS_LOG_RATIO] += abs(log_ratio)
            out_stats[b, STAT_APPROX_KL] += (ratio - 1.0) - log_ratio
            out_ratio[t, b], out_mask[t, b] = ratio, mask
            out_probs[t, b, :] = probs
            a_t = adv[t, b]
            if compute_rec:  # before W_out moves: G_rec reads this step's W_out
                if not pair_after:
                    _rec_accumulate(elig_rec, grad_rec, rec_sum[b], a_t, fast, learn_rec)
                _rec_trace(w_out_b, probs, a, c, smooth_scale, smooth_ref[t, b], mask, v_pre, p, gamma, elig_rec,
                           post, coef)  # fmt: skip
                if pair_after:
                    _rec_accumulate(elig_rec, grad_rec, rec_sum[b], a_t, fast, learn_rec)
            for o in range(num_actions):
                onehot = 1.0 if o == a else 0.0
                rho_o = ((probs[o] + c[5]) / smooth_scale) / smooth_ref[t, b, o]
                coef_o = (onehot - probs[o]) * rho_o * mask  # G_out = coef outer r
                e_row, d_row = elig_out[o], grad_out[o]
                if pair_after:
                    for i in range(n):
                        e_row[i] = gamma * e_row[i] + coef_o * r[i]
                        d = a_t * e_row[i]  # D += adv_t E_t: the reward for a_t meets the trace up to t
                        d_row[i] = d if fast else d_row[i] + d
                else:
                    for i in range(n):
                        d = a_t * e_row[i]  # D += A_t E_{t-1}: the reward after a_{t-1} meets the trace up to t-1
                        d_row[i] = d if fast else d_row[i] + d  # fast: this step's D alone
                        e_row[i] = gamma * e_row[i] + coef_o * r[i]  # E_t = gamma E_{t-1} + G_out
            if fast:
                out_steps[b] += 1.0
                _adam_ascent(flat_out, grad_out.reshape(-1), out_m[b], out_v[b], out_steps[b], lr, beta1, beta2,
                             adam_eps)  # fmt: skip
            if fast and learn_rec:
                rec_steps[b] += 1.0
                _adam_ascent(w_rec[b].reshape(-1), grad_rec.reshape(-1), rec_m[b], rec_v[b], rec_steps[b], rec_lr,
                             beta1, beta2, adam_eps)  # fmt: skip
        if not fast and steps > 0:
            out_steps[b] += 1.0
            _adam_ascent(flat_out, grad_out.reshape(-1), out_m[b], out_v[b], out_steps[b], lr, beta1, beta2, adam_eps)
            if learn_rec:
                rec_steps[b] += 1.0
                _adam_ascent(w_rec[b].reshape(-1), grad_rec.reshape(-1), rec_m[b], rec_v[b], rec_steps[b], rec_lr,
                             beta1, beta2, adam_eps)  # fmt: skip


@njit(cache=True, inline="always", error_model="numpy")
def _rec_accumulate(elig_rec, grad_rec, rec_sum, a_t, fast, learn_rec):
    """D_rec += adv_t E_rec (fast: D_rec = this step's term), for one agent; the diagonal stays 0 when learned."""
    n = elig_rec.shape[0]
    for i in range(n):
        for k in range(n):
            step_grad = a_t * elig_rec[i, k]
            rec_sum[i, k] += step_grad
            if fast:
                grad_rec[i, k] = step_grad
            else:
                grad_rec[i, k] += step_grad
    if learn_rec:
        for i in range(n):
            grad_rec[i, i] = 0.0  # W_rec has no self-connections, and keeps none


@njit(cache=True, inline="always", error_model="numpy")
def _rec_trace(w_out, probs, a, c, smooth_scale, smooth_ref, mask, v_pre, p, gamma, elig_rec, post, coef):
    """E_rec_t = gamma E_rec_{t-1} + G_rec (METHOD.md §3), for one agent."""
    num_actions, n = w_out.shape
    # G_rec = ((W_out^T ((onehot(a) - smooth(pi)) * rho * m)) * sigma'(v_t)) outer p_t
    for o in range(num_actions):
        onehot = 1.0 if o == a else 0.0
        smooth_o = (probs[o] + c[5]) / smooth_scale
        coef[o] = (onehot - smooth_o) * (smooth_o / smooth_ref[o]) * mask
    for i in range(n):
        acc = 0.0
        for o in range(num_actions):
            acc += w_out[o, i] * coef[o]
        sig = 1.0 / (1.0 + math.exp(-v_pre[i]))
        post[i] = acc * (sig * (1.0 - sig))
    for i in range(n):
        for k in range(n):
            elig_rec[i, k] = gamma * elig_rec[i, k] + post[i] * p[k]
