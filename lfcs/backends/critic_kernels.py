"""Compiled CPU kernels of the critic (``learner.critic=td``, ``lfcs.learning.critic``): pi_ref's read-out traces
and online TD(0) of the value read-out, one agent at a time, built from the network step and Adam of
``lfcs.backends.kernels``."""

from __future__ import annotations

import numpy as np
from numba import njit

from lfcs.backends.kernels import REC_ROWS, _adam_ascent, _dot, _neuron_step


@njit(cache=True, error_model="numpy")
def readout_traces(obs, lengths, spike_u, w_in, w_rec, has_rec, bias, decay, beta, has_adapt, noise_width, c, out_r):
    """The read-out traces r_t (T, B, N) of a network replaying each agent's stored episode from the reset state.

    With pi_ref's weights and acting's spike uniforms these are exactly the traces pi_ref acted with.
    """
    num_agents, n = out_r.shape[1], out_r.shape[2]
    dtype = out_r.dtype
    v, z, s_hat, p = np.empty(n, dtype=dtype), np.empty(n, dtype=dtype), np.empty(n, dtype=dtype), np.empty(n, dtype)
    r, a, v_pre = np.empty(n, dtype=dtype), np.empty(n, dtype=dtype), np.empty(n, dtype=dtype)
    rec_current, lanes = np.empty(n), np.empty((0, 0))  # float64, as _dot sums; lanes: REC_COLUMNS only
    for b in range(num_agents):
        v[:] = c[4]
        z[:], s_hat[:], p[:], r[:], a[:] = 0.0, 0.0, 0.0, 0.0, 0.0
        for t in range(lengths[b]):
            _neuron_step(obs[t, b], w_in[b], w_rec[b], REC_ROWS, has_rec, bias, decay[b], beta, has_adapt, v, z,
                         s_hat, p, r, a, v_pre, spike_u[t, b], noise_width, c, rec_current, lanes)  # fmt: skip
            out_r[t, b, :] = r


@njit(cache=True, error_model="numpy")
def td_critic(readout, rewards, lengths, terminated, gamma, w_v, m, v, steps, adam, out_delta):
    """Online TD(0) of the value read-out V_t = w_V . r_t over each agent's episode, one Adam step per step.

    delta_t = reward_t + gamma V_{t+1} - V_t with w_V as it stands at step t. After the episode's last step V = 0
    where it ended in a terminal state (terminated[b]); past a time limit the last value stands in for the unseen
    next one (V_L = V_{L-1});
    Adam ascends delta_t r_t (semi-gradient of -delta_t^2 / 2). Writes delta_t into out_delta (T, B).
    """
    lr, beta1, beta2, adam_eps = adam[0], adam[1], adam[2], adam[3]
    num_agents, n = readout.shape[1], readout.shape[2]
    grad = np.empty(n, dtype=w_v.dtype)
    for b in range(num_agents):
        for t in range(lengths[b]):
            value = _dot(w_v[b], readout[t, b])
            if t + 1 < lengths[b]:
                value_next = _dot(w_v[b], readout[t + 1, b])
            else:
                value_next = 0.0 if terminated[b] else value
            delta = rewards[t, b] + gamma * value_next - value
            out_delta[t, b] = delta
            for i in range(n):
                grad[i] = delta * readout[t, b, i]
            steps[b] += 1.0
            _adam_ascent(w_v[b], grad, m[b], v[b], steps[b], lr, beta1, beta2, adam_eps)
