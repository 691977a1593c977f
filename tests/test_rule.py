"""The applied update against an independent numpy reference of METHOD.md §2-3, and the learner's knobs by behaviour.

The reference below is written from METHOD.md alone (its own form of every equation, its own Adam), not from lfcs.
It covers what the golden files do not: W_rec learned with G_rec, any number of actions, several steps.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lfcs.agents import AgentGroup
from lfcs.buffer import EpisodeBuffer
from lfcs.learner import LfcsLearner
from lfcs.neurons import make_neuron_params
from lfcs.policy import SpikingPolicy
from lfcs.rollout import play_episode
from tests.conftest import SMALL, make_cfg

A_M, A_S, A_RO = math.exp(-1 / 6), math.exp(-1 / 4), math.exp(-1)
H, W_RES, V0, KAPPA, GAMMA, LR, BETAS, ADAM_EPS = -8.0, 100.0, -4.0, 2.5, 0.99, 1.5e-3, (0.9, 0.999), 1e-5


def reference_pass(w_in, w_rec, w_out, obs, actions, q, adv, eps, learn_rec, fast):
    """One replay pass of METHOD.md §3, plain numpy; returns W_out and W_rec after it."""
    n, num_actions = w_in.shape[0], w_out.shape[0]
    w_in, w_rec, w_out = w_in.copy(), w_rec.copy(), w_out.copy()
    v, z, s, p, r = np.full(n, V0), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    e_out, e_rec = np.zeros_like(w_out), np.zeros_like(w_rec)
    d_out, d_rec = np.zeros_like(w_out), np.zeros_like(w_rec)
    adam = {
        "out": [np.zeros_like(w_out), np.zeros_like(w_out), 0],
        "rec": [np.zeros_like(w_rec), np.zeros_like(w_rec), 0],
    }

    def smooth(u):
        return (u + 0.01) / (1 + 0.01 * num_actions)

    def ascend(name, weights, d):
        m, sq, t = adam[name]
        t += 1
        m[:] = BETAS[0] * m + (1 - BETAS[0]) * d
        sq[:] = BETAS[1] * sq + (1 - BETAS[1]) * d * d
        adam[name][2] = t
        m_hat, v_hat = m / (1 - BETAS[0] ** t), sq / (1 - BETAS[1] ** t)
        weights += LR * m_hat / (np.sqrt(v_hat) + ADAM_EPS)

    for t in range(len(obs) - 1):
        s_new = A_S * s + (1 - A_S) * z
        v = A_M * v + (1 - A_M) * (w_rec @ s_new + w_in @ obs[t] + H) - W_RES * z  # v_t, before the reset
        z = (v > 0).astype(float)
        s = s_new
        p = A_M * p + (1 - A_M) * s
        r = A_RO * r + (1 - A_RO) * z
        logits = KAPPA * w_out @ r
        pi = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        rho = smooth(pi) / smooth(q[t])
        mask = float(1 - eps < rho[actions[t]] < 1 + eps)
        onehot = np.eye(num_actions)[actions[t]]
        g_out = np.outer((onehot - pi) * rho * mask, r)
        sigma = 1 / (1 + np.exp(-v))
        g_rec = np.outer((w_out.T @ ((onehot - smooth(pi)) * rho * mask)) * sigma * (1 - sigma), p)
        d_out = adv[t] * e_out if fast else d_out + adv[t] * e_out
        d_rec = adv[t] * e_rec if fast else d_rec + adv[t] * e_rec
        e_out, e_rec = GAMMA * e_out + g_out, GAMMA * e_rec + g_rec
        if fast:
            ascend("out", w_out, d_out)
            if learn_rec:
                ascend("rec", w_rec, d_rec * (1 - np.eye(n)))
    if not fast:
        ascend("out", w_out, d_out)
        if learn_rec:
            ascend("rec", w_rec, d_rec * (1 - np.eye(n)))
    return w_out, w_rec


def random_episode(rng, n, num_inputs, num_actions, horizon):
    w_in = rng.normal(0, 40, (n, num_inputs))
    w_rec = rng.normal(0, 3, (n, n)) * (1 - np.eye(n))
    w_out = rng.normal(0, 1, (num_actions, n))
    obs = rng.uniform(0, 1, (horizon, num_inputs))
    actions = rng.integers(0, num_actions, horizon)
    q = rng.dirichlet(np.ones(num_actions), horizon)
    adv = rng.choice([-1.0, 0.0, 1.0], horizon)
    return w_in, w_rec, w_out, obs, actions, q, adv


@pytest.mark.parametrize("backend", ["kernels", "torch"])
@pytest.mark.parametrize("num_actions", [2, 3])
@pytest.mark.parametrize("timescale", ["fast", "slow"])
@pytest.mark.parametrize("learn_rec", [True, False])
def test_applied_update_equals_the_method_reference(backend, num_actions, timescale, learn_rec):
    rng = np.random.default_rng(7)
    w_in, w_rec, w_out, obs, actions, q, adv = random_episode(rng, 10, 3, num_actions, 30)
    eps = 0.3
    want_out, want_rec = reference_pass(w_in, w_rec, w_out, obs, actions, q, adv, eps, learn_rec, timescale == "fast")

    params = make_neuron_params(6.0, 4.0, 1.0, H, W_RES, V0, KAPPA)
    t64 = lambda x: torch.tensor(x, dtype=torch.float64).unsqueeze(0)  # noqa: E731  (B = 1)
    policy = SpikingPolicy(t64(w_in), t64(w_rec), t64(w_out), params)
    learner = LfcsLearner(policy, policy.clone(), timescale=timescale, n_passes=1, eps=eps, lr=LR, gamma=GAMMA,
                          learn_rec=learn_rec, backend=backend)  # fmt: skip
    horizon = len(obs)
    buffer = EpisodeBuffer(
        obs=t64(obs).transpose(0, 1).contiguous(),
        actions=torch.tensor(actions).unsqueeze(1),
        ref_probs=t64(q).transpose(0, 1).contiguous(),
        rewards=torch.zeros(horizon, 1, dtype=torch.float64),
        advantages=t64(adv).t().contiguous(),
        lengths=torch.tensor([horizon]),
    )
    _, record = learner.learn(buffer)
    assert 0 < float(record.mask.mean()) < 1, "the case must exercise the mask"
    if learn_rec:  # the case must exercise G_rec
        assert np.abs(want_rec - w_rec).max() > 1e-4
    np.testing.assert_allclose(policy.w_out[0].numpy(), want_out, rtol=0, atol=1e-12)
    np.testing.assert_allclose(policy.w_rec[0].numpy(), want_rec, rtol=0, atol=1e-12)


def one_episode(*overrides):
    group = AgentGroup(make_cfg(*SMALL, *overrides), [0])
    buffer, _ = play_episode(group.envs, group.ref_policy, group.generators, group.horizon, 0.99, [0], True)
    return group, buffer


def test_eps_inf_switches_the_mask_off():
    """The same episode masks steps with a tiny eps and none with eps = inf."""
    for eps, masked in (("1e-9", True), ("inf", False)):
        group, buffer = one_episode(f"learner.eps={eps}")
        stats, record = group.learner.learn(buffer)
        assert (float(stats["mask_fraction"][0]) > 0) == masked, eps
        assert bool((record.mask == 0).any()) == masked


def test_ref_update_every_copies_pi_ref_only_every_k_episodes():
    group = AgentGroup(make_cfg(*SMALL, "learner.ref_update_every=3"), [0])
    initial = group.ref_policy.w_out.clone()
    for episode in range(1, 4):  # episodes 0, 1, 2: no copy (k % 3 != 0 or k = 0)
        group.run_episode()
        assert torch.equal(group.ref_policy.w_out, initial), episode
    group.run_episode()  # episode 3: pi_ref <- pi_new
    assert torch.equal(group.ref_policy.w_out, group.new_policy.w_out)


def test_float32_learns_what_float64_learns():
    """The same recorded episode replayed in float32 and float64 gives nearly the same update."""
    group64, buffer = one_episode("env=cartpole")  # rewards at every step: a large update
    before = group64.new_policy.w_out.clone()
    group32 = AgentGroup(make_cfg(*SMALL, "env=cartpole", "dtype=float32"), [0])
    group64.learner.learn(buffer)
    to32 = {f: getattr(buffer, f) for f in ("obs", "ref_probs", "rewards", "advantages")}
    buffer32 = EpisodeBuffer(**{k: v.float() for k, v in to32.items()}, actions=buffer.actions, lengths=buffer.lengths)
    _, record32 = group32.learner.learn(buffer32)
    change64 = group64.new_policy.w_out - before
    change32 = group32.new_policy.w_out.double() - before
    assert change64.abs().max() > 1e-3  # a real update
    torch.testing.assert_close(change32, change64, rtol=0, atol=1e-4 * float(change64.abs().max()) + 1e-6)
    assert record32.new_probs.dtype == torch.float32
