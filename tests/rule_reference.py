"""An independent numpy reference of METHOD.md §2-3 (its own form of every equation, its own Adam), written from
METHOD.md alone, not from lfcs; and the hand-sized episodes and learners that tests/test_rule.py checks against it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lfcs import backends
from lfcs.learning.learner import LfcsLearner
from lfcs.network.neurons import make_neuron_params
from lfcs.network.policy import SpikingPolicy
from lfcs.rules.episodes import EpisodeBuffer, advantages_from_rewards

A_M, A_S, A_RO = math.exp(-1 / 6), math.exp(-1 / 4), math.exp(-1)
H, W_RES, V0, KAPPA, GAMMA, LR, BETAS, ADAM_EPS = -8.0, 100.0, -4.0, 2.5, 0.99, 1.5e-3, (0.9, 0.999), 1e-5


def reference_credit(met, steps, gamma, terminal):
    """C_s by brute force: every replayed t whose D term contains G_s, with the power of gamma it carries there."""
    credit = np.zeros(len(met))
    for s in range(steps):
        for t in range(steps):
            power = t - s if terminal else t - 1 - s  # D += met_t E_t (terminal) or met_t E_{t-1}
            if power >= 0:
                credit[s] += gamma**power * met[t]
    return credit


def fresh_adam(w_out, w_rec):
    return {
        "out": [np.zeros_like(w_out), np.zeros_like(w_out), 0],
        "rec": [np.zeros_like(w_rec), np.zeros_like(w_rec), 0],
    }


def reference_pass(w_in, w_rec, w_out, obs, actions, q, rewards, eps, learn_rec, fast, clip="mask", terminal=False,
                   adam=None, rec_lr=LR):  # fmt: skip
    """One replay pass of METHOD.md §3 (with the extensions' knobs), plain numpy; returns W_out and W_rec after it.

    rewards[t] is the reward for a_t. The paper's pairing meets A_t = rewards[t-1] (A_0 = 0) with E_{t-1} over
    t = 0 .. T-2; terminal credit meets rewards[t] with E_t over t = 0 .. T-1. ``adam`` carries over between calls.
    """
    n, num_actions = w_in.shape[0], w_out.shape[0]
    w_in, w_rec, w_out = w_in.copy(), w_rec.copy(), w_out.copy()
    v, z, s, p, r = np.full(n, V0), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    e_out, e_rec = np.zeros_like(w_out), np.zeros_like(w_rec)
    d_out, d_rec = np.zeros_like(w_out), np.zeros_like(w_rec)
    adam = fresh_adam(w_out, w_rec) if adam is None else adam
    steps = len(obs) if terminal else len(obs) - 1
    met = np.asarray(rewards, dtype=float) if terminal else np.concatenate([[0.0], rewards[:-1]])
    credit = reference_credit(met, steps, GAMMA, terminal)

    def smooth(u):
        return (u + 0.01) / (1 + 0.01 * num_actions)

    for t in range(steps):
        s_new = A_S * s + (1 - A_S) * z
        v = A_M * v + (1 - A_M) * (w_rec @ s_new + w_in @ obs[t] + H) - W_RES * z  # v_t, before the reset
        z = (v > 0).astype(float)
        s = s_new
        p = A_M * p + (1 - A_M) * s
        r = A_RO * r + (1 - A_RO) * z
        logits = KAPPA * w_out @ r
        pi = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        rho = smooth(pi) / smooth(q[t])
        taken = rho[actions[t]]
        if clip == "mask":
            mask = float(1 - eps < taken < 1 + eps)
        elif clip == "none":
            mask = 1.0
        else:  # the smaller of rho C and clip(rho) C keeps its gradient
            mask = float(taken * credit[t] <= min(max(taken, 1 - eps), 1 + eps) * credit[t])
        onehot = np.eye(num_actions)[actions[t]]
        g_out = np.outer((onehot - pi) * rho * mask, r)
        sigma = 1 / (1 + np.exp(-v))
        g_rec = np.outer((w_out.T @ ((onehot - smooth(pi)) * rho * mask)) * sigma * (1 - sigma), p)
        if terminal:
            e_out, e_rec = GAMMA * e_out + g_out, GAMMA * e_rec + g_rec
        d_out = met[t] * e_out if fast else d_out + met[t] * e_out
        d_rec = met[t] * e_rec if fast else d_rec + met[t] * e_rec
        if not terminal:
            e_out, e_rec = GAMMA * e_out + g_out, GAMMA * e_rec + g_rec
        if fast:
            reference_adam(adam, "out", w_out, d_out, LR)
            if learn_rec:
                reference_adam(adam, "rec", w_rec, d_rec * (1 - np.eye(n)), rec_lr)
    if not fast:
        reference_adam(adam, "out", w_out, d_out, LR)
        if learn_rec:
            reference_adam(adam, "rec", w_rec, d_rec * (1 - np.eye(n)), rec_lr)
    return w_out, w_rec


def reference_adam(adam, name, weights, d, lr):
    """Adam ascent on weights with gradient d (torch's Adam, maximize), moments in adam[name]."""
    m, sq, t = adam[name]
    t += 1
    m[:] = BETAS[0] * m + (1 - BETAS[0]) * d
    sq[:] = BETAS[1] * sq + (1 - BETAS[1]) * d * d
    adam[name][2] = t
    m_hat, v_hat = m / (1 - BETAS[0] ** t), sq / (1 - BETAS[1] ** t)
    weights += lr * m_hat / (np.sqrt(v_hat) + ADAM_EPS)


def random_episode(rng, n, num_inputs, num_actions, horizon):
    w_in = rng.normal(0, 40, (n, num_inputs))
    w_rec = rng.normal(0, 3, (n, n)) * (1 - np.eye(n))
    w_out = rng.normal(0, 1, (num_actions, n))
    obs = rng.uniform(0, 1, (horizon, num_inputs))
    actions = rng.integers(0, num_actions, horizon)
    q = rng.dirichlet(np.ones(num_actions), horizon)
    rewards = rng.choice([-1.0, 0.0, 1.0], horizon)
    return w_in, w_rec, w_out, obs, actions, q, rewards


def as_buffer(obs, actions, q, rewards):
    """One agent's episode (B = 1) as the learner stores it; advantages A_t = rewards[t-1] as acting computes them."""
    t64 = lambda x: torch.tensor(x, dtype=torch.float64).unsqueeze(0)  # noqa: E731
    rewards_t = t64(rewards).t().contiguous()
    return EpisodeBuffer(
        obs=t64(obs).transpose(0, 1).contiguous(),
        actions=torch.tensor(actions).unsqueeze(1),
        ref_probs=t64(q).transpose(0, 1).contiguous(),
        rewards=rewards_t,
        advantages=advantages_from_rewards(rewards_t, GAMMA),
        lengths=torch.tensor([len(obs)]),
    )


def as_learner(w_in, w_rec, w_out, backend="auto", **knobs):
    params = make_neuron_params(6.0, 4.0, 1.0, H, W_RES, V0, KAPPA)
    t64 = lambda x: torch.tensor(x, dtype=torch.float64).unsqueeze(0)  # noqa: E731  (B = 1)
    policy = SpikingPolicy(t64(w_in), t64(w_rec), t64(w_out), params)
    return policy, LfcsLearner(policy, policy.clone(), backends.select(backend, "cpu"), lr=LR, gamma=GAMMA, **knobs)


# -- off-policy corrections (learner.off_policy), written from the README's replay section ---------------------------
def reference_forward(w_in, w_rec, w_out, obs):
    """A policy's probabilities pi_t (T, O) and read-out traces r_t (T, N) over a whole stored episode."""
    n = w_in.shape[0]
    v, z, s, r = np.full(n, V0), np.zeros(n), np.zeros(n), np.zeros(n)
    probs, traces = [], []
    for x in obs:
        s_new = A_S * s + (1 - A_S) * z
        v = A_M * v + (1 - A_M) * (w_rec @ s_new + w_in @ x + H) - W_RES * z
        z, s = (v > 0).astype(float), s_new
        r = A_RO * r + (1 - A_RO) * z
        logits = KAPPA * w_out @ r
        probs.append(np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum())
        traces.append(r.copy())
    return np.array(probs), np.array(traces)


def reference_behaviour_weight(p, q, actions, cap):
    """w_t = smooth(p_t)[a_t] / smooth(q_t)[a_t] and min(cap, w_t), one agent's episode."""
    num_actions = q.shape[1]
    taken = np.arange(len(actions)), actions
    ratio = ((p + 0.01) / (1 + 0.01 * num_actions))[taken] / ((q + 0.01) / (1 + 0.01 * num_actions))[taken]
    return ratio, np.minimum(cap, ratio)


def reference_vtrace(values, rewards, ratio, rho_bar, c_bar, terminated):
    """V-trace targets by their closed form (Espeholt et al. 2018, eq. 1), not by recursion:
    v_s = V_s + sum_{t >= s} gamma^(t-s) (prod_{i=s}^{t-1} c_i) rho_t (r_t + gamma V_{t+1} - V_t), with V after the
    last step 0 (terminated) or V_{L-1} (time limit). Returns (v - V, adv) with adv_s = r_s + gamma v_{s+1} - V_s."""
    length = len(values)
    after = 0.0 if terminated else values[-1]
    value_next = np.append(values[1:], after)
    rho, c = np.minimum(rho_bar, ratio), np.minimum(c_bar, ratio)
    diff = np.zeros(length)
    for s in range(length):
        for t in range(s, length):
            diff[s] += GAMMA ** (t - s) * np.prod(c[s:t]) * rho[t] * (rewards[t] + GAMMA * value_next[t] - values[t])
    target_next = np.append(values[1:] + diff[1:], after)
    return diff, rewards + GAMMA * target_next - values
