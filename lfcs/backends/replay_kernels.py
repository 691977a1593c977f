"""The compiled replay pass (METHOD.md §3) with e-prop's eligibility traces for W_rec and W_in, one agent at a time.

A pass replays an agent's stored episode with pi_new: network step (``kernels._neuron_step``), policy, ratio and
clip weight, then the traces. W_out's trace is the paper's. A hidden matrix W (W_rec: presynaptic signal s_hat,
K = N; W_in: signal x, K = I) carries e-prop's eligibility for the neuron model (``lfcs.rules.maths``):

    eps_v[j, k] = a_m,j eps_v[j, k] + (1 - a_m,j) signal_k        (= p_k, one vector, when every a_m is the same)
    eps_a[j, k] = (a_a - beta_j psi_j,t-1) eps_a[j, k] + psi_j,t-1 eps_v,t-1[j, k]      (alif rows j < n_adapt)
    G[j, k]     = L_j psi_j (eps_v[j, k] - beta_j eps_a[j, k]),  L = F^T ((onehot - smooth(pi)) rho m)

F = W_out (``learner.feedback=symmetric``) or the agent's fixed random matrix. E and D follow W_out's pairing; W_rec
and W_in take an Adam step per replayed step (``learner.rec_update=per_step``, with ``timescale=fast``) or once per
pass, where ``learner.rate_reg`` adds -c (f_j - f_target) sum_t e_t / S (f_j: the pass's firing rate). Per step the
hidden work is O(N (N + I)): eps_a over the adaptive rows, G into E and D, and with the regulariser one more sum.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from lfcs.backends.floor import rec_sweep, trace_buffers, trace_views
from lfcs.backends.kernels import (
    REC_GIVEN,
    REC_ROWS,
    _adam_ascent,
    _adam_scalars,
    _neuron_step,
    _policy,
    _synaptic_step,
)
from lfcs.rules.maths import CLIP_MODES

# Indices into the `out_stats` rows of a replay pass.
STAT_MASKED, STAT_ABS_LOG_RATIO, STAT_APPROX_KL = 0, 1, 2
# learner.clip as the kernel's clip_mode.
CLIP_MASK, CLIP_NONE, CLIP_PPO = CLIP_MODES["mask"], CLIP_MODES["none"], CLIP_MODES["ppo"]


@njit(cache=True, error_model="numpy")
def replay_pass(episode, net, rule, adam, outs):  # noqa: C901  (one time loop, as in the torch pass)
    """One replay pass of pi_new over every agent's stored episode (METHOD.md §3), updating its weights in place.

    episode = (obs (T, B, I), actions (T, B), smooth_ref (T, B, O) = smooth(q_t), adv (T, B): the advantage met at
    step t, lengths (B,), spike_u (T, B, N): acting's uniforms (common random numbers), credit (T, B): C_s for ppo).
    net = (w_in, w_rec, has_rec, w_out, feedback (B, O, N), bias (N,), decay (B, N), beta (N,), has_adapt, n_adapt,
    hetero, noise_width, c, gain): ``compiled.kernel_view``.
    rule = (smooth_scale, gamma, lo, hi, fast, compute_rec, learn_rec, clip_mode, pair_after, learn_in,
    hidden_fast, rate_reg, rate_target). pair_after false (the paper): agent b replays t = 0 .. lengths[b] - 2 and
    D += adv_t E_{t-1} before the trace moves; true (``terminal_credit``): t = 0 .. lengths[b] - 1, D += adv_t E_t.
    clip_mode: CLIP_MASK (m = 1[lo < rho < hi]), CLIP_NONE (m = 1) or CLIP_PPO (m = 1[rho C <= clip(rho) C]).
    adam = (settings (lr, beta1, beta2, eps, rec_lr, in_lr), moments (B, K) and step counts (B,) of W_out, W_rec,
    W_in). outs = (probs (T, B, O), rho(a_t), masks (T, B), statistics (B, 3), the pass's sums of the D_rec and
    D_in terms (B, N, N) and (B, N, I), or (B, 0, 0) where not recorded).
    """
    obs, actions, smooth_ref, adv, lengths, spike_u, credit = episode
    w_in, w_rec, has_rec, w_out, feedback, bias, decay, beta, has_adapt, n_adapt, hetero, noise_width, c, gain = net
    (smooth_scale, gamma, lo, hi, fast, compute_rec, learn_rec, clip_mode, pair_after, learn_in, hidden_fast, rate_reg,
     rate_target) = rule  # fmt: skip
    settings, out_m, out_v, out_steps, rec_m, rec_v, rec_steps, in_m, in_v, in_steps = adam
    out_probs, out_ratio, out_mask, out_stats, rec_sum, in_sum = outs
    lr, beta1, beta2, adam_eps = settings[0], settings[1], settings[2], settings[3]
    rec_lr, in_lr = settings[4], settings[5]
    step_hidden = fast and hidden_fast  # W_rec / W_in: an Adam step per replayed step, else one per pass
    regularise = rate_reg > 0.0
    # training's W_rec path: every step's D goes straight into Adam, and no pass sum is recorded
    fused = compute_rec and learn_rec and step_hidden and not regularise and rec_sum.shape[1] == 0
    rec_h = np.zeros(9, dtype=w_out.dtype)  # rec_sweep's scalars in the weights' dtype
    horizon, num_agents, n_in = obs.shape
    num_actions, n = w_out.shape[1], w_out.shape[2]
    dtype = w_out.dtype
    v, z, s_hat, p = np.empty(n, dtype=dtype), np.empty(n, dtype=dtype), np.empty(n, dtype=dtype), np.empty(n, dtype)
    r, a, v_pre, post = np.empty(n, dtype=dtype), np.empty(n, dtype=dtype), np.empty(n, dtype=dtype), np.empty(n, dtype)
    psi, psi_prev, counts = np.empty(n, dtype=dtype), np.empty(n, dtype=dtype), np.empty(n, dtype=dtype)
    probs, coef = np.empty(num_actions, dtype=dtype), np.empty(num_actions, dtype=dtype)
    elig_out, grad_out = np.empty((num_actions, n), dtype=dtype), np.empty((num_actions, n), dtype=dtype)
    rec_space = trace_buffers(n, n, compute_rec, hetero, n_adapt, regularise, dtype, not fused)
    inp_space = trace_buffers(n, n_in, learn_in, hetero, n_adapt, regularise, dtype, True)
    pre_in = np.empty(n_in, dtype=dtype)  # eps_v of W_in when every a_m is the same: one trace of x
    # the fused sweep hands the next step its recurrent input (from s_hat_{t+1}, in s_next); float64, as _dot sums
    rec_current, lanes, s_next = np.empty(n), np.empty((0, 0)), np.empty(n if fused else 0, dtype=dtype)
    partial = np.zeros(n - n % 4 + 4)
    a_a = c[0]
    for b in range(num_agents):
        v[:] = c[4]  # V0; everything else starts at 0 on every pass
        z[:], s_hat[:], p[:], r[:], a[:], psi_prev[:], counts[:], pre_in[:] = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        elig_out[:, :], grad_out[:, :] = 0.0, 0.0
        rec, inp = trace_views(rec_space, w_rec[b]), trace_views(inp_space, w_in[b])
        for buffers in (rec, inp):
            for array in buffers:
                array[:] = 0.0
        w_out_b, flat_out, decay_b = w_out[b], w_out[b].reshape(-1), decay[b]
        steps = lengths[b] if pair_after else lengths[b] - 1
        rec_form = REC_ROWS  # the first step reads W_rec; after a fused sweep, the sweep's product
        for t in range(steps):
            if n_adapt > 0:  # eps_a moves with psi_{t-1} and eps_v_{t-1}, before the step changes them
                if compute_rec:
                    _adapt_trace(rec[2], rec[3], p, hetero, psi_prev, beta, a_a, n_adapt)
                if learn_in:
                    _adapt_trace(inp[2], inp[3], pre_in, hetero, psi_prev, beta, a_a, n_adapt)
            _neuron_step(obs[t, b], w_in[b], w_rec[b], rec_form, has_rec, bias, decay_b, beta, has_adapt, v, z, s_hat,
                         p, r, a, v_pre, spike_u[t, b], noise_width, c, rec_current, lanes)  # fmt: skip
            _policy(w_out_b, r, gain, probs)
            act = actions[t, b]
            ratio = ((probs[act] + c[5]) / smooth_scale) / smooth_ref[t, b, act]
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
            if compute_rec or learn_in:  # before W_out moves: the learning signal reads this step's W_out
                _post(feedback[b], probs, act, c, smooth_scale, smooth_ref[t, b], mask, v_pre, a, beta, has_adapt,
                      post, psi, coef)  # fmt: skip
                if hetero:
                    _membrane_trace(rec[3], s_hat, decay_b, compute_rec)
                    _membrane_trace(inp[3], obs[t, b], decay_b, learn_in)
                elif learn_in:
                    for k in range(n_in):
                        pre_in[k] = decay_b[0] * pre_in[k] + (1.0 - decay_b[0]) * obs[t, b, k]
            if fused:  # W_rec's trace, D and Adam step in one sweep over its arrays (lfcs.backends.floor)
                rec_steps[b] += 1.0
                rec_h[5], rec_h[6] = _adam_scalars(rec_steps[b], rec_lr, beta1, beta2)
                rec_h[0], rec_h[1], rec_h[2], rec_h[3], rec_h[4] = a_t, gamma, 1.0 - beta1, beta2, 1.0 - beta2
                rec_h[7] = adam_eps
                s_next[:] = s_hat
                _synaptic_step(s_next, z, c[1])  # s_hat_{t+1}: the next step computes the same numbers from them
                rec_sweep(w_rec[b], rec[0], rec_m[b], rec_v[b], post, p, rec[3], rec[2], beta, rec_h, pair_after,
                          s_next, rec_current, partial)  # fmt: skip
                rec_form = REC_GIVEN
            elif compute_rec:
                _hidden_step(rec, p, post, psi, beta, n_adapt, hetero, gamma, a_t, rec_sum[b], pair_after,
                             step_hidden, learn_rec, regularise)  # fmt: skip
            if learn_in:
                _hidden_step(inp, pre_in, post, psi, beta, n_adapt, hetero, gamma, a_t, in_sum[b], pair_after,
                             step_hidden, False, regularise)  # fmt: skip
            if regularise:
                for i in range(n):
                    counts[i] += z[i]
            psi_prev[:] = psi
            for o in range(num_actions):
                onehot = 1.0 if o == act else 0.0
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
            if step_hidden and learn_rec and not fused:
                rec_steps[b] += 1.0
                _adam_ascent(w_rec[b].reshape(-1), rec[1].reshape(-1), rec_m[b], rec_v[b], rec_steps[b], rec_lr,
                             beta1, beta2, adam_eps)  # fmt: skip
            if step_hidden and learn_in:
                in_steps[b] += 1.0
                _adam_ascent(w_in[b].reshape(-1), inp[1].reshape(-1), in_m[b], in_v[b], in_steps[b], in_lr, beta1,
                             beta2, adam_eps)  # fmt: skip
        if steps <= 0:
            continue
        if not fast:
            out_steps[b] += 1.0
            _adam_ascent(flat_out, grad_out.reshape(-1), out_m[b], out_v[b], out_steps[b], lr, beta1, beta2, adam_eps)
        if not step_hidden and learn_rec:
            if regularise:
                _add_rate_term(rec[1], rec[4], counts, steps, rate_reg, rate_target, True)
            rec_steps[b] += 1.0
            _adam_ascent(w_rec[b].reshape(-1), rec[1].reshape(-1), rec_m[b], rec_v[b], rec_steps[b], rec_lr, beta1,
                         beta2, adam_eps)  # fmt: skip
        if not step_hidden and learn_in:
            if regularise:
                _add_rate_term(inp[1], inp[4], counts, steps, rate_reg, rate_target, False)
            in_steps[b] += 1.0
            _adam_ascent(w_in[b].reshape(-1), inp[1].reshape(-1), in_m[b], in_v[b], in_steps[b], in_lr, beta1, beta2,
                         adam_eps)  # fmt: skip


@njit(cache=True, inline="always", error_model="numpy")
def _post(feedback, probs, act, c, smooth_scale, smooth_ref, mask, v_pre, a, beta, has_adapt, post, psi, coef):
    """psi_j = sigma'(v_j - beta_j a_j) and post_j = L_j psi_j, L = F^T ((onehot(a) - smooth(pi)) * rho * m)."""
    num_actions, n = feedback.shape
    for o in range(num_actions):
        onehot = 1.0 if o == act else 0.0
        smooth_o = (probs[o] + c[5]) / smooth_scale
        coef[o] = (onehot - smooth_o) * (smooth_o / smooth_ref[o]) * mask
    for i in range(n):
        acc = 0.0
        for o in range(num_actions):
            acc += feedback[o, i] * coef[o]
        drive = v_pre[i] - beta[i] * a[i] if has_adapt else v_pre[i]
        sig = 1.0 / (1.0 + math.exp(-drive))
        psi[i] = sig * (1.0 - sig)  # sigma'(v) of width 1, on the pre-reset membrane's distance to threshold
        post[i] = acc * psi[i]


@njit(cache=True, inline="always", error_model="numpy")
def _membrane_trace(eps_v, signal, decay, used):
    """eps_v[j, k] = a_m,j eps_v[j, k] + (1 - a_m,j) signal_k: the membrane's trace of each synapse (per-neuron a_m)."""
    if used:
        for j in range(eps_v.shape[0]):
            for k in range(eps_v.shape[1]):
                eps_v[j, k] = decay[j] * eps_v[j, k] + (1.0 - decay[j]) * signal[k]


@njit(cache=True, inline="always", error_model="numpy")
def _adapt_trace(eps_a, eps_v, pre, hetero, psi_prev, beta, a_a, n_adapt):
    """eps_a[j] = (a_a - beta_j psi_{t-1}) eps_a[j] + psi_{t-1} eps_v_{t-1}[j] for the adaptive rows j < n_adapt."""
    for j in range(n_adapt):
        row = eps_v[j] if hetero else pre
        decay_j, gain_j = a_a - beta[j] * psi_prev[j], psi_prev[j]
        e_row = eps_a[j]
        for k in range(e_row.shape[0]):
            e_row[k] = decay_j * e_row[k] + gain_j * row[k]


@njit(cache=True, inline="always", error_model="numpy")
def _hidden_step(buffers, pre, post, psi, beta, n_adapt, hetero, gamma, a_t, pass_sum, pair_after, step_hidden,
                 no_diagonal, regularise):  # fmt: skip
    """E, D (and the sum of e) of one hidden matrix at one replayed step, in the pairing of W_out's trace."""
    elig, grad, eps_a, eps_v, e_sum = buffers
    if not pair_after:
        _hidden_accumulate(elig, grad, pass_sum, a_t, step_hidden, no_diagonal)
    for j in range(elig.shape[0]):
        row = eps_v[j] if hetero else pre
        e_row, p_j = elig[j], post[j]
        if j < n_adapt:
            beta_j, a_row = beta[j], eps_a[j]
            for k in range(e_row.shape[0]):
                e_row[k] = gamma * e_row[k] + p_j * (row[k] - beta_j * a_row[k])
        else:
            for k in range(e_row.shape[0]):
                e_row[k] = gamma * e_row[k] + p_j * row[k]  # E_t = gamma E_{t-1} + G
    if pair_after:
        _hidden_accumulate(elig, grad, pass_sum, a_t, step_hidden, no_diagonal)
    if regularise:
        for j in range(elig.shape[0]):
            row = eps_v[j] if hetero else pre
            s_row, psi_j = e_sum[j], psi[j]
            if j < n_adapt:
                for k in range(s_row.shape[0]):
                    s_row[k] += psi_j * (row[k] - beta[j] * eps_a[j, k])
            else:
                for k in range(s_row.shape[0]):
                    s_row[k] += psi_j * row[k]  # e_t = psi (eps_v - beta eps_a), summed over the pass


@njit(cache=True, inline="always", error_model="numpy")
def _hidden_accumulate(elig, grad, pass_sum, a_t, step_hidden, no_diagonal):
    """D += adv_t E (per step: D = this step's term) and the pass's sum (pass_sum (0, 0): none); W_rec's diagonal
    stays 0 when it learns."""
    n, k = elig.shape
    for i in range(n):
        for j in range(k):
            step_grad = a_t * elig[i, j]
            if pass_sum.shape[0] > 0:
                pass_sum[i, j] += step_grad
            if step_hidden:
                grad[i, j] = step_grad
            else:
                grad[i, j] += step_grad
    if no_diagonal:
        for i in range(n):
            grad[i, i] = 0.0  # W_rec has no self-connections, and keeps none


@njit(cache=True, inline="always", error_model="numpy")
def _add_rate_term(grad, e_sum, counts, steps, rate_reg, rate_target, no_diagonal):
    """D += -rate_reg (f_j - f_target) sum_t e_t[j, k] / S with f_j = counts_j / S: ascent on -rate_reg/2 (f - f*)^2."""
    for j in range(grad.shape[0]):
        coef_j = -rate_reg * (counts[j] / steps - rate_target) / steps
        for k in range(grad.shape[1]):
            grad[j, k] += coef_j * e_sum[j, k]
    if no_diagonal:
        for i in range(grad.shape[0]):
            grad[i, i] = 0.0
