"""Learned W_rec at the memory-traffic floor: its per-step update as one sweep, and the loop that measures the floor.

With ``learner.learn_rec`` a replayed step of lf-cs must read and write, for every one of the N^2 recurrent weights,
the weight, its eligibility trace and Adam's two moments (fast timescale; METHOD.md §3). At N = 500 that is 8 MB in
float64, far more than the rest of the step, so the step costs what moving those bytes costs. ``rec_sweep`` moves
each of them once per step (the trace update, D and Adam in one loop per row; before, a D_rec array, three sweeps
over the N x N arrays and a sum kept for parity only). ``touch_words`` is the floor it is measured against: a loop
that only reads and writes the same number of bytes (``scripts/bench.py``). On its way the sweep also takes the next
step's recurrent input from each moved row while the row is in cache, so the replay's forward pass does not read
W_rec again; ``trace_buffers`` / ``trace_views`` place the traces it streams at W_rec's offset within a page (4K
aliasing, ``trace_views``). What is left above the floor, measured (``scripts/floor_breakdown.py``): in float64,
Adam's square root and division per weight (the sweep without them runs under the floor's time); in float32, the
forward product's float64 sums.

numba's ``cache=True`` does not see edits to a callee in another file: ``replay_kernels.replay_pass`` keeps its
cached copy of ``rec_sweep`` until replay_kernels.py itself changes. After editing this file, delete
``lfcs/backends/__pycache__`` (a fresh clone, as CI runs, has none). The same holds for ``critic_kernels`` and
``replay_kernels`` after an edit of ``kernels``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from lfcs.backends.kernels import _dot_row
from lfcs.network.policy import PAGE_BYTES  # W_rec and its moments start on one; the traces at W_rec's offset


@njit(cache=True, error_model="numpy")
def rec_sweep(w_rec, elig, m, v, post, pre, eps_v, eps_a, beta, h, pair_after, s_next, rec_next, partial):
    """One replayed step of learned W_rec with a per-step Adam step, for one agent, in one pass over its N x N arrays.

    D = a_t E_{t-1} before the trace moves (the paper's pairing) or a_t E_t after it (pair_after), with e-prop's
    E_t[j] = gamma E_{t-1}[j] + post_j (x_j - beta_j eps_a[j]) (``replay_kernels._hidden_step``): x_j = pre (p_t, one
    vector) or eps_v[j] (per-neuron a_m; eps_v (0, 0) otherwise), eps_a on the adaptive rows j < len(eps_a); then
    Adam's ascent step on D, whose diagonal is 0 (W_rec has no self-connections, and keeps none). m, v: Adam's
    moments as flat rows (N * N,). h = (a_t, gamma, 1 - beta1, beta2, 1 - beta2, step size, 1 / sqrt(1 - beta2^t),
    eps, 0) in the weights' dtype, so that float32 weights are updated in float32 arithmetic. Every float64 element
    sees the operations of the loops this replaced (``_hidden_accumulate``, the trace, ``kernels._adam_ascent``) in
    their order: the same numbers, bit for bit. Neither D nor its pass sum is kept (parity's path is the other one).
    rec_next (N,) float64, unless (0,): the next step's recurrent input W_rec s_next, each row's product taken as
    soon as the row has moved, while it is still in cache (``kernels._dot_row``, partial its scratch): the forward
    pass then does not read W_rec again (s_next = s_hat_{t+1}, known once z_t is).
    """
    n, n_adapt, per_synapse = elig.shape[0], eps_a.shape[0], eps_v.shape[0] > 0
    beta_w = np.empty(n_adapt, dtype=w_rec.dtype)  # beta (float64) in the weights' dtype
    beta_w[:] = beta[:n_adapt]
    for j in range(n):
        row = eps_v[j] if per_synapse else pre
        w_j, e_j, m_j, v_j = w_rec[j], elig[j], m[j * n : j * n + n], v[j * n : j * n + n]
        w_jj, m_jj, v_jj = w_j[j], m_j[j], v_j[j]  # one loop over the row, then the diagonal again: two loops
        if j < n_adapt:  # split at j ran at half the speed
            _trace_and_adam(w_j, e_j, m_j, v_j, row, eps_a[j], beta_w[j], post[j], h, pair_after)
        else:  # x - 0 x = x exactly: the adaptive form, with beta_j = 0, is the plain row's trace bit for bit
            _trace_and_adam(w_j, e_j, m_j, v_j, row, row, h[8], post[j], h, pair_after)
        w_j[j], m_j[j], v_j[j] = w_jj, m_jj, v_jj
        _adam_element(w_j, m_j, v_j, j, -h[8], h)  # the trace keeps its diagonal; D's is 0
        if rec_next.shape[0] > 0:
            rec_next[j] = _dot_row(w_j, s_next, partial)


@njit(cache=True, inline="always", error_model="numpy")
def _trace_and_adam(w, e, m, v, row, a_row, beta_j, post_j, h, pair_after):
    """rec_sweep's trace step and Adam step on one row (h as there), every element alike: it vectorises. One form
    for adaptive and plain rows: with a flag choosing between two forms of G, float32 rows ran 3x slower."""
    a_t, gamma, one_b1, beta2, one_b2, step_size, inv_b2, adam_eps = h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]
    for k in range(w.shape[0]):
        e_k = e[k]
        g_k = post_j * (row[k] - beta_j * a_row[k])  # G's element
        if pair_after:
            e_k = gamma * e_k + g_k
        g = -(a_t * e_k)  # Adam's moments are those of -D (torch's maximize mode)
        m_k = m[k] + one_b1 * (g - m[k])
        v_k = beta2 * v[k] + one_b2 * g * g
        m[k], v[k] = m_k, v_k
        w[k] = w[k] - step_size * m_k / (math.sqrt(v_k) * inv_b2 + adam_eps)
        e[k] = e_k if pair_after else gamma * e_k + g_k


@njit(cache=True, inline="always", error_model="numpy")
def _adam_element(w, m, v, k, g, h):
    """``kernels._adam_ascent``'s step of element k with g the gradient of -D (h as in rec_sweep)."""
    m[k] = m[k] + h[2] * (g - m[k])
    v[k] = h[3] * v[k] + h[4] * g * g
    w[k] = w[k] - h[5] * m[k] / (math.sqrt(v[k]) * h[6] + h[7])


@njit(cache=True, inline="always", error_model="numpy")
def trace_buffers(n, k, used, hetero, n_adapt, regularise, dtype, keep_d):
    """Room for (E, D, eps_a, eps_v, sum of e) of one hidden matrix (N, K), as (flat arrays, shapes) for
    ``trace_views``; shape (0, 0) where one is not needed (D too where each step's D goes straight into Adam:
    ``rec_sweep``). Each flat array is a page longer than its shape needs."""
    shape, none = (n, k) if used else (0, 0), (0, 0)
    shapes = (shape, shape if keep_d else none, (n_adapt, k) if used else none, shape if hetero else none,
              shape if regularise else none)  # fmt: skip
    pad = PAGE_BYTES // np.empty(0, dtype=dtype).itemsize
    flats = (np.empty(shapes[0][0] * shapes[0][1] + pad, dtype=dtype),
             np.empty(shapes[1][0] * shapes[1][1] + pad, dtype=dtype),
             np.empty(shapes[2][0] * shapes[2][1] + pad, dtype=dtype),
             np.empty(shapes[3][0] * shapes[3][1] + pad, dtype=dtype),
             np.empty(shapes[4][0] * shapes[4][1] + pad, dtype=dtype))  # fmt: skip
    return flats, shapes


@njit(cache=True, inline="always", error_model="numpy")
def trace_views(space, like):
    """The arrays of ``trace_buffers``' room, each starting at the same offset within a 4 KiB page as like (this
    agent's weight matrix, whose Adam moments share its offsets), so that row j of every array the sweep streams
    through sits at the same page offset. Where one array ran a few dozen bytes ahead of another, its loads waited
    on the other's stores (4K aliasing: the CPU matches them by the address's low 12 bits); the sweep ran up to 3x
    slower, by where the allocator had put the traces."""
    flats, shapes = space
    return (_aligned_like(flats[0], like, shapes[0]), _aligned_like(flats[1], like, shapes[1]),
            _aligned_like(flats[2], like, shapes[2]), _aligned_like(flats[3], like, shapes[3]),
            _aligned_like(flats[4], like, shapes[4]))  # fmt: skip


@njit(cache=True, inline="always", error_model="numpy")
def _aligned_like(flat, like, shape):
    """A (rows, columns) view of flat (a page longer than it) at like's offset within a page."""
    start = ((like.ctypes.data - flat.ctypes.data) % PAGE_BYTES) // flat.itemsize
    return flat[start : start + shape[0] * shape[1]].reshape(shape)


@njit(cache=True)
def touch_words(words, steps):
    """The floor: agent after agent (rows of words, (B, K) uint64), read and write each of its K words steps[b] times.

    Bitwise not, so that nothing but memory traffic costs (no floating point: no subnormals, no rounding); each step
    flips every bit, so the work cannot be folded away. As in a replay pass, one agent's rows are swept step after
    step before the next agent's.
    """
    for b in range(words.shape[0]):
        row = words[b]
        for _ in range(steps[b]):
            for k in range(row.shape[0]):
                row[k] = ~row[k]
