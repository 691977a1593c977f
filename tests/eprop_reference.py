"""An independent numpy reference of e-prop's eligibility traces (Bellec et al. 2020, Methods: LIF and ALIF neurons)
inside one lf-cs replay pass, written from the paper's equations in its own notation, not from lfcs:

    v_j^t = alpha_j v_j^{t-1} + (1 - alpha_j)(sum_i W_ji s_i^t + sum_k Win_jk x_k^t + h) - w_res z_j^{t-1}
    a_j^t = rho a_j^{t-1} + z_j^{t-1},   z_j^t = H(v_j^t - beta_j a_j^t),   psi_j^t = sigma'(v_j^t - beta_j a_j^t)
    eps_v[j, i]^t = alpha_j eps_v[j, i]^{t-1} + (1 - alpha_j) pre_i^t                (always per synapse here)
    eps_a[j, i]^t = psi_j^{t-1} eps_v[j, i]^{t-1} + (rho - psi_j^{t-1} beta_j) eps_a[j, i]^{t-1}
    e[j, i]^t     = psi_j^t (eps_v[j, i]^t - beta_j eps_a[j, i]^t),   G = L^t (column) * e^t,   L^t = B^T err^t

with err^t = (onehot(a_t) - smooth(pi_t)) rho_t m_t the lf-cs read-out error, B = W_out or a fixed random matrix.
E, D and Adam as in tests/rule_reference.py; the rate regulariser adds -c (f_j - f*) sum_t e^t / S once per pass.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lfcs import backends
from lfcs.learning.learner import LfcsLearner
from lfcs.network.neurons import make_neuron_params
from lfcs.network.policy import SpikingPolicy
from tests.rule_reference import A_RO, A_S, GAMMA, KAPPA, LR, V0, W_RES, H, fresh_adam, reference_adam

TAU_ADAPT, BETA = 20.0, 2.0
RHO = math.exp(-1 / TAU_ADAPT)


def alif_net(rng, n, num_inputs, num_actions, hetero, adaptive, random_feedback):
    """Weights, per-neuron alpha and beta of a small test network (numpy)."""
    alpha = np.exp(-1 / rng.uniform(3, 12, n)) if hetero else np.full(n, math.exp(-1 / 6))
    beta = np.zeros(n)
    beta[: n // 2] = BETA if adaptive else 0.0
    return {
        "w_in": rng.normal(0, 40, (n, num_inputs)),
        "w_rec": rng.normal(0, 3, (n, n)) * (1 - np.eye(n)),
        "w_out": rng.normal(0, 1, (num_actions, n)),
        "feedback": rng.normal(0, 1, (num_actions, n)) if random_feedback else None,
        "alpha": alpha,
        "beta": beta,
        "hetero": hetero,
        "adaptive": adaptive,
    }


def reference_pass(net, obs, actions, q, rewards, knobs, adam):
    """One replay pass with e-prop's traces; updates net's w_out, w_rec, w_in in place (those that learn)."""
    w_in, w_rec, w_out, alpha, beta = net["w_in"], net["w_rec"], net["w_out"], net["alpha"], net["beta"]
    n, num_actions = w_in.shape[0], w_out.shape[0]
    fast, per_pass = knobs["fast"], knobs.get("per_pass", False)
    v, z, s, r, a, psi = np.full(n, V0), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    mats = {"rec": w_rec, "in": w_in}
    learn = {"rec": knobs.get("learn_rec", False), "in": knobs.get("learn_in", False)}
    trace = {k: {"v": np.zeros_like(m), "a": np.zeros_like(m), "E": np.zeros_like(m), "D": np.zeros_like(m),
                 "e_sum": np.zeros_like(m)} for k, m in mats.items()}  # fmt: skip
    e_out, d_out, spikes = np.zeros_like(w_out), np.zeros_like(w_out), np.zeros(n)
    steps = len(obs) - 1
    met = np.concatenate([[0.0], rewards[:-1]])

    def smooth(u):
        return (u + 0.01) / (1 + 0.01 * num_actions)

    for t in range(steps):
        for tr in trace.values():  # the adaptation component sees psi and eps_v of the previous step
            if knobs.get("adaptation_trace", True):  # False: eps_a = 0, a trace that ignores the threshold's history
                tr["a"] = psi[:, None] * tr["v"] + (RHO - psi * beta)[:, None] * tr["a"]
        s_new = A_S * s + (1 - A_S) * z
        a = RHO * a + z
        v = alpha * v + (1 - alpha) * (w_rec @ s_new + w_in @ obs[t] + H) - W_RES * z
        drive = v - beta * a
        z = (drive > 0).astype(float)
        s = s_new
        r = A_RO * r + (1 - A_RO) * z
        sigma = 1 / (1 + np.exp(-drive))
        psi = sigma * (1 - sigma)
        logits = KAPPA * w_out @ r
        pi = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        rho = smooth(pi) / smooth(q[t])
        mask = float(1 - knobs["eps"] < rho[actions[t]] < 1 + knobs["eps"])
        onehot = np.eye(num_actions)[actions[t]]
        back = w_out if net["feedback"] is None else net["feedback"]
        learning_signal = back.T @ ((onehot - smooth(pi)) * rho * mask)
        g_out = np.outer((onehot - pi) * rho * mask, r)
        d_out = met[t] * e_out if fast else d_out + met[t] * e_out
        e_out = GAMMA * e_out + g_out
        spikes += z
        for name, pre in (("rec", s), ("in", obs[t])):
            tr = trace[name]
            tr["v"] = alpha[:, None] * tr["v"] + (1 - alpha)[:, None] * pre[None, :]
            elig = psi[:, None] * (tr["v"] - beta[:, None] * tr["a"])
            tr["e_sum"] += elig
            step_d = met[t] * tr["E"]
            tr["D"] = step_d if fast and not per_pass else tr["D"] + step_d
            tr["E"] = GAMMA * tr["E"] + learning_signal[:, None] * elig
        if fast:
            reference_adam(adam, "out", w_out, d_out, LR)
            if not per_pass:
                _hidden_adam(mats, trace, learn, adam)
    if not fast:
        reference_adam(adam, "out", w_out, d_out, LR)
    if not fast or per_pass:
        for name in mats:
            rate = spikes / steps
            reg = -knobs.get("rate_reg", 0.0) * (rate - knobs["rate_target"])[:, None] / steps
            trace[name]["D"] = trace[name]["D"] + reg * trace[name]["e_sum"]
        _hidden_adam(mats, trace, learn, adam)


def _hidden_adam(mats, trace, learn, adam):
    for name, weights in mats.items():
        if learn[name]:
            d = trace[name]["D"] * (1 - np.eye(len(weights))) if name == "rec" else trace[name]["D"]
            reference_adam(adam, name, weights, d, LR)


def reference_adams(net):
    adam = fresh_adam(net["w_out"], net["w_rec"])
    adam["in"] = [np.zeros_like(net["w_in"]), np.zeros_like(net["w_in"]), 0]
    return adam


def as_alif_learner(net, backend, **knobs):
    """The same network as a one-agent lfcs learner (B = 1)."""
    n = len(net["alpha"])
    neuron = "alif" if net["adaptive"] else "lif_box"
    params = make_neuron_params(6.0, 4.0, 1.0, H, W_RES, V0, KAPPA, neuron=neuron, num_neurons=n,
                                tau_adapt_steps=TAU_ADAPT, adapt_beta=BETA, adapt_fraction=0.5)  # fmt: skip
    t64 = lambda x: torch.tensor(x, dtype=torch.float64).unsqueeze(0)  # noqa: E731
    extras = {"decay_mem": t64(net["alpha"])} if net["hetero"] else {}
    if net["feedback"] is not None:
        extras["w_feedback"] = t64(net["feedback"])
    policy = SpikingPolicy(t64(net["w_in"]), t64(net["w_rec"]), t64(net["w_out"]), params, **extras)
    feedback = "symmetric" if net["feedback"] is None else "random"
    learner = LfcsLearner(policy, policy.clone(), backends.select(backend, "cpu"), lr=LR, gamma=GAMMA, rec_lr=LR,
                          feedback=feedback, **knobs)  # fmt: skip
    return policy, learner
