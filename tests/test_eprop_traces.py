"""e-prop's eligibility traces for W_rec and W_in (lfcs.rules.maths, both backends): against a numpy reference written
from the paper's equations (tests/eprop_reference.py), and against autograd on the same truncation of BPTT."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from lfcs.network.neurons import adaptive_threshold, batched_matvec
from lfcs.rules.maths import smooth
from tests.eprop_reference import RHO, alif_net, as_alif_learner, reference_adams, reference_pass
from tests.rule_reference import A_RO, A_S, GAMMA, KAPPA, V0, W_RES, H, as_buffer, random_episode, reference_credit

VARIANTS = {
    # name: (net: hetero tau_m, alif, random feedback), learner knobs
    "alif-fast-rec-in": ((False, True, False), {"timescale": "fast", "learn_rec": True, "learn_in": True}),
    "alif-hetero-random-per-pass-reg": (
        (True, True, True),
        {
            "timescale": "fast",
            "learn_rec": True,
            "learn_in": True,
            "rec_update": "per_pass",
            "rate_reg": 0.5,
            "rate_target": 0.02,
        },
    ),  # fmt: skip
    "lif-hetero-slow-in-only": ((True, False, False), {"timescale": "slow", "learn_in": True}),
    "alif-slow-rec-reg": (
        (False, True, True),
        {"timescale": "slow", "learn_rec": True, "rate_reg": 2.0, "rate_target": 0.0},
    ),
}


@pytest.mark.parametrize("backend", ["kernels", "torch"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_two_passes_equal_the_numpy_reference(backend, variant):
    (hetero, adaptive, random_feedback), knobs = VARIANTS[variant]
    rng = np.random.default_rng(3)
    _, _, _, obs, actions, q, rewards = random_episode(rng, 12, 3, 3, 30)
    net = alif_net(rng, 12, 3, 3, hetero, adaptive, random_feedback)
    original = copy.deepcopy(net)
    eps = 4.0  # the mask fires on some steps of the second pass, not on all
    policy, learner = as_alif_learner(copy.deepcopy(net), backend, eps=eps, n_passes=2, **knobs)
    learner.learn(as_buffer(obs, actions, q, rewards))
    ref_knobs = {
        "fast": knobs["timescale"] == "fast",
        "per_pass": knobs.get("rec_update") == "per_pass",
        "eps": eps,
        "rate_target": knobs.get("rate_target", 0.01),
    }  # lfcs's default target
    ref_knobs |= {k: knobs[k] for k in ("learn_rec", "learn_in", "rate_reg", "rate_target") if k in knobs}
    adam = reference_adams(net)
    for _ in range(2):
        reference_pass(net, obs, actions, q, rewards, ref_knobs, adam)
    for name, key in (("w_out", "w_out"), ("w_rec", "w_rec"), ("w_in", "w_in")):
        got = getattr(policy, name)[0].numpy()
        np.testing.assert_allclose(got, net[key], rtol=0, atol=1e-10, err_msg=name)
    moved = {k: not np.array_equal(getattr(policy, k)[0].numpy(), original[k]) for k in ("w_rec", "w_in")}
    assert moved == {"w_rec": knobs.get("learn_rec", False), "w_in": knobs.get("learn_in", False)}


def test_the_adaptation_component_is_what_the_reference_checks():
    """The numpy reference would not pass with eps_a dropped: the ALIF term moves W_rec by far more than 1e-10."""
    rng = np.random.default_rng(3)
    _, _, _, obs, actions, q, rewards = random_episode(rng, 12, 3, 3, 30)
    net = alif_net(rng, 12, 3, 3, False, True, False)
    with_a, without_a = copy.deepcopy(net), copy.deepcopy(net)
    knobs = {"fast": False, "eps": 4.0, "learn_rec": True, "rate_target": 0.0}
    reference_pass(with_a, obs, actions, q, rewards, knobs, reference_adams(net))
    reference_pass(without_a, obs, actions, q, rewards, {**knobs, "adaptation_trace": False}, reference_adams(net))
    assert np.abs(with_a["w_rec"] - without_a["w_rec"]).max() > 1e-6


def truncated_objective(policy, obs, actions, q, credit, detach_recurrent=True, detach_reset=True, keep_adapt=True):
    """J = sum_t C_t L_t . z_t over one pass of a surrogate-gradient twin of the policy (B = 1), with the learning
    signal L_t = F^T ((onehot - smooth(pi_t)) rho_t) held constant and z = H(drive) with derivative sigma'(drive).
    e-prop keeps each neuron's own dynamics (v_{t-1} -> v_t, and z_{t-1} -> a_t -> threshold_t for alif) and drops
    the recurrent spike path z_{t-1} -> s_hat_t -> W_rec s_hat_t -> v_t of the other neurons and the
    self-inhibition z_{t-1} -> -w_res z_{t-1} -> v_t; ``detach_*`` cut exactly those two paths (``keep_adapt=False``
    also cuts the adaptation path, which e-prop keeps, as a control)."""
    params = policy.step_params
    w_in = policy.w_in.clone().requires_grad_(True)
    w_rec = policy.w_rec.clone().requires_grad_(True)
    a_m = params.decay_mem
    n = policy.num_neurons
    v = torch.full((1, n), V0, dtype=torch.float64)
    z, s_hat, r, a = (torch.zeros(1, n, dtype=torch.float64) for _ in range(4))
    total = torch.zeros((), dtype=torch.float64)
    for t in range(len(credit)):
        s_hat = A_S * s_hat + (1 - A_S) * (z.detach() if detach_recurrent else z)
        if params.adapt_beta is not None:
            a = RHO * a + (z if keep_adapt else z.detach())
        current = batched_matvec(w_rec, s_hat) + batched_matvec(w_in, obs[t : t + 1])
        v = a_m * v + (1 - a_m) * (current + H) - W_RES * (z.detach() if detach_reset else z)
        drive = v - adaptive_threshold(a, params) if params.adapt_beta is not None else v
        sig = torch.sigmoid(drive)
        z = (drive > 0).to(drive) + (sig - sig.detach())  # value H(drive), derivative sigma'(drive)
        r = A_RO * r + (1 - A_RO) * z.detach()
        pi = torch.softmax(KAPPA * batched_matvec(policy.w_out, r), -1)
        onehot = torch.nn.functional.one_hot(torch.tensor([int(actions[t])]), pi.shape[-1]).to(pi)
        rho = smooth(pi) / smooth(torch.as_tensor(q[t : t + 1]))
        signal = batched_matvec(policy.feedback.transpose(1, 2), (onehot - smooth(pi)) * rho)
        total = total + credit[t] * (signal.detach() * z).sum()
    total.backward()
    return w_rec.grad[0], w_in.grad[0]


@pytest.mark.parametrize("backend", ["kernels", "torch"])
@pytest.mark.parametrize("net_kind", [(True, True, True), (False, False, False)], ids=["alif-hetero-random", "lif"])
def test_eprop_equals_autograd_of_the_truncated_network(backend, net_kind):
    """A slow pass's D (sum_t A_t E_{t-1} = sum_s C_s G_s) for W_rec and W_in equals the gradient of J with the
    two dropped paths cut, to 1e-10 in float64; with the recurrent spike path kept, it does not."""
    rng = np.random.default_rng(11)
    _, _, _, obs, actions, q, rewards = random_episode(rng, 8, 3, 3, 25)
    net = alif_net(rng, 8, 3, 3, *net_kind)
    net["w_in"] *= 0.5  # a moderate drive: neurons near threshold, where sigma' is not tiny
    policy, learner = as_alif_learner(net, backend, eps=float("inf"), timescale="slow", n_passes=1, learn_rec=True,
                                      learn_in=True)  # fmt: skip
    before = policy.clone()
    _, record = learner.learn(as_buffer(obs, actions, q, rewards))
    met = np.concatenate([[0.0], rewards[:-1]])
    credit = reference_credit(met, len(obs) - 1, GAMMA, False)
    obs_t = torch.as_tensor(obs)
    grad_rec, grad_in = truncated_objective(before, obs_t, actions, q, credit)
    torch.testing.assert_close(record.rec_grad_sum[0], grad_rec, rtol=0, atol=1e-10)
    torch.testing.assert_close(record.in_grad_sum[0], grad_in, rtol=0, atol=1e-10)
    assert grad_rec.abs().max() > 1e-3 and grad_in.abs().max() > 1e-3  # the test is not about zeros
    full_rec, full_in = truncated_objective(before, obs_t, actions, q, credit, detach_recurrent=False)
    assert (full_rec - grad_rec).abs().max() > 1e-4 and (full_in - grad_in).abs().max() > 1e-4
    if net_kind[1]:  # alif: the adaptation path (eps_a) is part of what e-prop computes exactly
        cut_rec, cut_in = truncated_objective(before, obs_t, actions, q, credit, keep_adapt=False)
        assert (cut_rec - grad_rec).abs().max() > 1e-4 and (cut_in - grad_in).abs().max() > 1e-4
