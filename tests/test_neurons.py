"""Hand-computed steps of the neuron equations (METHOD.md §2) and the analytic pieces of the rule."""

from __future__ import annotations

import math

import torch

from lfcs.network.neurons import initial_state, make_neuron_params, network_step, policy_probs, sample_actions
from lfcs.rules.episodes import advantages_from_rewards
from lfcs.rules.maths import smooth

A_M, A_S, A_RO = math.exp(-1 / 6), math.exp(-1 / 4), math.exp(-1)
H, W_RES, V0, KAPPA = -8.0, 100.0, -4.0, 2.5


def params(stochastic=False):
    return make_neuron_params(6.0, 4.0, 1.0, H, W_RES, V0, KAPPA, stochastic_spikes=stochastic)


def t64(x):
    return torch.tensor(x, dtype=torch.float64)


def test_two_neurons_three_steps_by_hand():
    # Neuron 0 is driven hard enough to spike at the first step; neuron 1 only through W_rec from neuron 0.
    w_in = t64([[[100.0], [0.0]]])  # (B=1, N=2, I=1)
    w_rec = t64([[[0.0, 0.0], [50.0, 0.0]]])  # 0 -> 1
    state = initial_state(1, 2, params(), w_in)
    xs = [1.0, 0.0, 0.0]
    spikes = []
    # Scalars by hand, straight from the equations.
    v, z, s_hat, p, r = [V0, V0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]
    for x in xs:
        v_pre_got, state = network_step(t64([[x]]), state, w_in, w_rec, params())
        s_hat = [A_S * s_hat[i] + (1 - A_S) * z[i] for i in range(2)]
        current = [100.0 * x, 50.0 * s_hat[0]]
        v_pre = [A_M * v[i] + (1 - A_M) * (current[i] + H) for i in range(2)]
        # the self-inhibition of the previous spike was already taken off v (norse resets after the spike)
        z = [1.0 if vp > 0 else 0.0 for vp in v_pre]
        spikes.append(z)
        v = [v_pre[i] - z[i] * W_RES / A_M for i in range(2)]
        p = [A_M * p[i] + (1 - A_M) * s_hat[i] for i in range(2)]
        r = [A_RO * r[i] + (1 - A_RO) * z[i] for i in range(2)]
        torch.testing.assert_close(v_pre_got[0], t64(v_pre), rtol=0, atol=1e-12)
        for got, want in ((state.z, z), (state.s_hat, s_hat), (state.p, p), (state.r, r), (state.v, v)):
            torch.testing.assert_close(got[0], t64(want), rtol=0, atol=1e-12)
    assert spikes == [[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]]  # the case exercised: one spike, then inhibition


def test_self_inhibition_matches_method_form():
    """v_t = a_m v_{t-1} + (1 - a_m)(I + h) - w_res z_{t-1}: the METHOD.md form of the reset, unrolled."""
    w_in = t64([[[30.0]]])
    state = initial_state(1, 1, params(), w_in)
    v_method, z_prev = V0, 0.0
    for _ in range(6):
        v_pre, state = network_step(t64([[1.0]]), state, w_in, None, params())
        v_method = A_M * v_method + (1 - A_M) * (30.0 + H) - W_RES * z_prev
        z_prev = 1.0 if v_method > 0 else 0.0
        assert abs(float(v_pre) - v_method) < 1e-12
        assert float(state.z) == z_prev


def test_stochastic_spikes_follow_the_uniforms():
    """z = 1[u < sigmoid(v / dv)] with v computed by hand: the input drives v_pre to 0.01, P(spike) = sigmoid(0.2)."""
    v_target = 0.01
    current = (v_target - A_M * V0) / (1 - A_M) - H  # v_pre = a_m V0 + (1 - a_m)(I + h)
    w_in = t64([[[current], [current], [0.0]]])  # (B=1, N=3, I=1); neuron 2 sits far below threshold
    state = initial_state(1, 3, params(stochastic=True), w_in)
    p_spike = 1 / (1 + math.exp(-v_target / 0.05))  # 0.5498...
    uniforms = t64([[p_spike - 1e-6, p_spike + 1e-6, 1e-30]])
    v_pre, new = network_step(t64([[1.0]]), state, w_in, None, params(stochastic=True), uniforms)
    assert abs(float(v_pre[0, 0]) - v_target) < 1e-12
    assert new.z.tolist() == [[1.0, 0.0, 0.0]]  # neuron 2: P = sigmoid(-4.6 / 0.05) < 1e-30


def test_policy_and_sampling():
    w_out = t64([[[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]])  # (1, O=3, N=2)
    r = t64([[0.4, 0.2]])
    probs = policy_probs(w_out, r, KAPPA)
    want = torch.softmax(t64([[KAPPA * 0.4, KAPPA * 0.2, 0.0]]), dim=-1)
    torch.testing.assert_close(probs, want)
    cdf = want.cumsum(-1)[0]
    us = t64([0.0, float(cdf[0]) - 1e-9, float(cdf[0]) + 1e-9, float(cdf[1]) + 1e-9, 0.999999])
    got = [int(sample_actions(probs, u.view(1))) for u in us]
    assert got == [0, 0, 1, 2, 2]


def test_advantages_are_previous_rewards():
    rewards = t64([[1.0], [0.0], [-1.0], [0.0]])
    assert advantages_from_rewards(rewards, 0.99).flatten().tolist() == [0.0, 1.0, 0.0, -1.0]
    values = t64([[0.5], [0.25], [0.0], [1.0]])
    adv = advantages_from_rewards(rewards, 0.5, values).flatten().tolist()
    assert adv == [0.0, 1.0 - 0.5 + 0.5 * 0.25, 0.0 - 0.25 + 0.0, -1.0 - 0.0 + 0.5 * 1.0]


def test_smooth_keeps_a_distribution_for_any_number_of_actions():
    """smooth(u) = (u + 0.01) / (1 + 0.01 O): 1.03 for Pong-100's three actions, and a distribution for any O."""
    three = smooth(t64([0.0, 1.0, 0.0]))
    assert three.tolist() == [0.01 / 1.03, 1.01 / 1.03, 0.01 / 1.03]
    for num_actions in (2, 3, 6):
        probs = torch.softmax(torch.randn(4, num_actions, dtype=torch.float64), dim=-1)
        torch.testing.assert_close(smooth(probs).sum(-1), torch.ones(4, dtype=torch.float64), rtol=0, atol=1e-15)
        assert float(smooth(torch.zeros(1, num_actions, dtype=torch.float64))[0, 0]) == 0.01 / (1 + 0.01 * num_actions)
