"""learner.off_policy and learner.lr_scale (issue 22): the corrections of older stored episodes against a numpy
reference, K = 1 unchanged, the stored episodes unchanged, agents independent, resume exact, one-line errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from lfcs import train
from lfcs.config import ConfigError, validate
from lfcs.rules.maths import vtrace
from lfcs.running.agents import AgentGroup
from tests.conftest import SMALL, make_cfg, read_metrics
from tests.rule_reference import (
    ADAM_EPS,
    BETAS,
    GAMMA,
    as_buffer,
    as_learner,
    fresh_adam,
    random_episode,
    reference_adam,
    reference_behaviour_weight,
    reference_forward,
    reference_pass,
    reference_vtrace,
)
from tests.test_contracts import final_state

EPS = 0.3


def two_episodes(seed=3, horizon=20):
    rng = np.random.default_rng(seed)
    w_in, w_rec, w_out, *first = random_episode(rng, 10, 3, 3, horizon)
    second = random_episode(rng, 10, 3, 3, horizon)[3:]
    return (w_in, w_rec, w_out), first, second


@pytest.mark.parametrize("backend", ["kernels", "torch"])
@pytest.mark.parametrize(
    "clip,terminal,eps,seed", [("mask", False, EPS, 3), ("ppo", True, 1e-4, 17)], ids=["mask-paper", "ppo-terminal"]
)
def test_decoupled_equals_the_reference(backend, clip, terminal, eps, seed):
    """K = 2, phase 2: the older episode is replayed against pi_ref's probabilities over it, and the advantage each
    step meets carries min(c_bar, w) of the action whose reward it holds (a_{t-1} in the paper's pairing, a_t with
    terminal credit); the newest episode as stored. The reference carries the weight in the rewards, which its pass
    turns into the met advantages (and PPO's credits, which eps = 1e-4 makes matter: with seed 17 the weights flip
    the sign of 5 of the 20 credits) itself."""
    (w_in, w_rec, w_out), (obs1, act1, q1, rew1), (obs2, act2, q2, rew2) = two_episodes(seed)
    knobs = dict(n_passes=2, eps=eps, clip=clip, terminal_credit=terminal, replay_episodes=2, backend=backend,
                 trailing_zero_step=False, off_policy="decoupled", behaviour_cbar=1.05)  # fmt: skip
    policy, learner = as_learner(w_in, w_rec, w_out, **knobs)
    adam = fresh_adam(w_out, w_rec)
    want = w_out
    for _ in range(2):
        want, _ = reference_pass(w_in, w_rec, want, obs1, act1, q1, rew1, eps, False, True, clip, terminal, adam)
    learner.learn(as_buffer(obs1, act1, q1, rew1))
    learner.end_episode(1)  # pi_ref <- pi_new: episode 1 is now off-policy
    probs, _ = reference_forward(w_in, w_rec, want, obs1)
    ratio, weight = reference_behaviour_weight(probs, q1, act1, 1.05)
    assert (ratio > 1.05).any() and (ratio < 1.0).any(), "the episode must exercise the truncation"
    for _ in range(2):
        want, _ = reference_pass(w_in, w_rec, want, obs1, act1, probs, weight * rew1, eps, False, True, clip, terminal,
                                 adam)  # fmt: skip
        want, _ = reference_pass(w_in, w_rec, want, obs2, act2, q2, rew2, eps, False, True, clip, terminal, adam)
    stats, _ = learner.learn(as_buffer(obs2, act2, q2, rew2))
    np.testing.assert_allclose(policy.w_out[0].numpy(), want, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(learner.store.episodes[0].buffer.ref_probs[:, 0].numpy(), q1)  # the store keeps q
    after, _ = reference_forward(w_in, w_rec, want, obs2)
    smooth = lambda u: (u + 0.01) / 1.03  # noqa: E731
    kl = (smooth(q2) * np.log(smooth(q2) / smooth(after))).sum(1).mean()
    np.testing.assert_allclose(float(stats["ref_kl"][0]), kl, rtol=1e-9)


def test_old_episode_weight_is_the_mean_behaviour_weight_without_a_clip():
    """clip=none (m = 1): old_episode_weight is the mean over the older episode's replayed steps of c_t."""
    (w_in, w_rec, w_out), (obs1, act1, q1, rew1), (obs2, act2, q2, rew2) = two_episodes(seed=5)
    policy, learner = as_learner(w_in, w_rec, w_out, clip="none", replay_episodes=2, trailing_zero_step=False,
                                 off_policy="decoupled")  # fmt: skip
    learner.learn(as_buffer(obs1, act1, q1, rew1))
    learner.end_episode(1)
    probs, _ = reference_forward(w_in, w_rec, policy.w_out[0].numpy(), obs1)
    _, weight = reference_behaviour_weight(probs, q1, act1, 1.0)
    stats, _ = learner.learn(as_buffer(obs2, act2, q2, rew2))
    np.testing.assert_allclose(float(stats["old_episode_weight"][0]), weight[:-1].mean(), rtol=1e-12)
    assert float(stats["old_episode_weight"][0]) < 1.0


def test_vtrace_recursion_equals_its_closed_form():
    """lfcs.rules.maths.vtrace (recursive, agents side by side, padded) against the closed-form sum, per agent."""
    rng = np.random.default_rng(0)
    horizon, lengths, terminated = 9, np.array([9, 5, 1]), np.array([True, False, False])
    values, rewards = rng.normal(size=(horizon, 3)), rng.normal(size=(horizon, 3))
    ratio = rng.uniform(0.3, 2.0, size=(horizon, 3))
    t = lambda x: torch.tensor(x)  # noqa: E731
    rho_bar, c_bar = 1.2, 0.9
    diff, adv = vtrace(t(values), t(rewards), t(lengths), t(terminated), GAMMA, t(ratio).clamp(max=rho_bar),
                       t(ratio).clamp(max=c_bar))  # fmt: skip
    for b, length in enumerate(lengths):
        cut = slice(0, length)
        want_diff, want_adv = reference_vtrace(values[cut, b], rewards[cut, b], ratio[cut, b], rho_bar, c_bar,
                                               terminated[b])  # fmt: skip
        np.testing.assert_allclose(diff[cut, b].numpy(), want_diff, rtol=0, atol=1e-12)
        np.testing.assert_allclose(adv[cut, b].numpy(), want_adv, rtol=0, atol=1e-12)
        assert not diff[length:, b].any() and not adv[length:, b].any()


@pytest.mark.parametrize("backend", ["kernels", "torch"])
def test_vtrace_advantages_and_critic_step_equal_the_reference(backend):
    """K = 2, phase 2 with critic td: the older episode meets c_t-weighted V-trace advantages of the critic as it
    stands after the new episode's TD(0) pass, and the critic takes one Adam step on mean_t (v_t - V_t) r_t."""
    (w_in, w_rec, w_out), (obs1, act1, q1, rew1), (obs2, act2, q2, rew2) = two_episodes(seed=7)
    knobs = dict(n_passes=1, eps=EPS, replay_episodes=2, backend=backend, trailing_zero_step=False, critic="td",
                 critic_lr=0.05, off_policy="vtrace", vtrace_rho=1.1, vtrace_c=0.95)  # fmt: skip
    policy, learner = as_learner(w_in, w_rec, w_out, **knobs)
    learner.learn(as_buffer(obs1, act1, q1, rew1))
    learner.end_episode(1)
    w_before, adam_before = policy.w_out[0].numpy().copy(), learner.adam_out
    adam_before = {"out": [-adam_before.exp_avg[0].numpy(), adam_before.exp_avg_sq[0].numpy().copy(),
                           int(adam_before.step[0])]}  # fmt: skip
    buf2 = as_buffer(obs2, act2, q2, rew2)
    critic = copy.deepcopy(learner.critic)  # the new episode's TD(0) pass, as the learner will run it
    met2 = np.concatenate([[0.0], critic.deltas(buf2, learner.ref_policy, GAMMA)[:-1, 0].numpy()])
    w_v = critic.w_v[0].numpy().copy()
    probs, traces = reference_forward(w_in, w_rec, w_before, obs1)
    ratio, weight = reference_behaviour_weight(probs, q1, act1, 1.0)
    diff, adv = reference_vtrace(traces @ w_v, rew1, ratio, 1.1, 0.95, True)
    want, _ = reference_pass(w_in, w_rec, w_before, obs1, act1, probs, weight * adv, EPS, False, True,
                             adam=adam_before)  # fmt: skip
    # the newest episode meets A_t = delta_{t-1}: handed to the reference as rewards shifted back by one step
    want, _ = reference_pass(w_in, w_rec, want, obs2, act2, q2, np.append(met2[1:], 0.0), EPS, False, True,
                             adam=adam_before)  # fmt: skip
    learner.learn(buf2)
    np.testing.assert_allclose(policy.w_out[0].numpy(), want, rtol=0, atol=1e-12)
    critic_adam = {"v": [-critic.adam.exp_avg[0].numpy(), critic.adam.exp_avg_sq[0].numpy().copy(),
                         int(critic.adam.step[0])]}  # fmt: skip
    step = w_v.copy()
    reference_adam(critic_adam, "v", step, (diff[:, None] * traces).mean(0), 0.05)
    np.testing.assert_allclose(learner.critic.w_v[0].numpy(), step, rtol=0, atol=1e-12)
    assert not np.allclose(step, w_v), "the critic must learn from the older episode"
    assert (BETAS, ADAM_EPS) == (learner.rule.betas, learner.rule.adam_eps)


@pytest.mark.parametrize("mode", ["decoupled", "vtrace"])
def test_k1_is_unchanged_by_the_correction(mode):
    """K = 1 has no older episode: every weight, Adam moment, critic value and statistic equals off_policy=none."""
    runs = {}
    for off in ("none", mode):
        cfg = make_cfg(*SMALL, "env=cartpole", "env.max_episode_steps=40", "learner.critic=td", "num_agents=2",
                       f"learner.off_policy={off}", "learner.lr_scale=per_episode")  # fmt: skip
        group = AgentGroup(cfg, [0, 1])
        rows = [row for _ in range(4) for row in group.run_episode()]
        runs[off] = (rows, group.learner.state_dict(), group.new_policy.w_out.clone())
    (rows_a, state_a, w_a), (rows_b, state_b, w_b) = runs["none"], runs[mode]
    assert torch.equal(w_a, w_b) and state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    skip = ("sps", "sps_total", "ref_kl")
    assert [{k: v for k, v in r.items() if k not in skip} for r in rows_a] == [
        {k: v for k, v in r.items() if k not in skip} for r in rows_b
    ]
    assert all(r["ref_kl"] > 0 for r in rows_b)  # measured with the correction on, 0 (not measured) without it


OFF_POLICY_CASES = {
    "vtrace-every-knob-n40": ["network.num_neurons=40", "env=cartpole", "env.max_episode_steps=30",
                              "network.rec_std=0.1", "learner.learn_rec=true", "network.stochastic_spikes=true",
                              "learner.replay_episodes=3", "learner.critic=td", "learner.clip=ppo",
                              "learner.terminal_credit=true", "learner.off_policy=vtrace", "learner.vtrace_c=0.5",
                              "learner.behaviour_cbar=1.5", "learner.lr_scale=per_episode"],
    "decoupled-pong-n500": ["learner.replay_episodes=3", "learner.off_policy=decoupled"],
}  # fmt: skip


@pytest.mark.parametrize("case", list(OFF_POLICY_CASES))
def test_agent_alone_equals_agent_in_a_group(case):
    """Agent b of a 3-agent group == the same seed alone: every row value (the new statistics included) but the
    clocks, every weight, Adam moment, critic value and stored episode, bit for bit."""
    cfg = make_cfg("progress=false", "seed=5", *OFF_POLICY_CASES[case])
    group = AgentGroup(cfg, [0, 1, 2])  # agent b has the seed 5 + b, in a group or alone
    group_rows = [group.run_episode() for _ in range(4)]
    group_state = group.learner.state_dict()
    for b in (0, 2):
        alone = AgentGroup(cfg, [b])
        for rows in group_rows:
            mine = alone.run_episode()[0]
            want = {k: v for k, v in rows[b].items() if k not in ("sps", "sps_total", "agent")}
            assert {k: v for k, v in mine.items() if k not in ("sps", "sps_total", "agent")} == want, b
        for key, value in alone.learner.state_dict().items():
            mine = value[:, 0] if key.startswith("replay.") and value.dim() > 1 else value[0]
            theirs = group_state[key]
            theirs = theirs[:, b] if key.startswith("replay.") and theirs.dim() > 1 else theirs[b]
            assert torch.equal(mine, theirs), (b, key)
        assert torch.equal(alone.new_policy.w_out[0], group.new_policy.w_out[b])


def test_resume_equals_uninterrupted(tmp_path):
    knobs = [*SMALL, *OFF_POLICY_CASES["vtrace-every-knob-n40"][1:], "num_agents=2"]
    whole, split = tmp_path / "whole", tmp_path / "split"
    train(make_cfg(*knobs, "iterations=6", f"run_dir={whole}"))
    train(make_cfg(*knobs, "iterations=3", f"run_dir={split}"))
    train(make_cfg(*knobs, "iterations=6", f"run_dir={split}", "resume=true"))
    assert read_metrics(whole / "metrics.csv") == read_metrics(split / "metrics.csv")
    a, b = final_state(whole), final_state(split)
    assert a.keys() == b.keys()
    for agent in a:
        assert a[agent].keys() == b[agent].keys()
        for key in a[agent]:
            assert torch.equal(a[agent][key], b[agent][key]), (agent, key)


def test_lr_scale_per_episode_divides_both_rates_by_k():
    cfg = make_cfg(*SMALL, "network.rec_std=0.1", "learner.learn_rec=true", "learner.rec_lr=5e-4",
                   "learner.replay_episodes=4", "learner.lr_scale=per_episode")  # fmt: skip
    rule = AgentGroup(cfg, [0]).learner.rule
    assert (rule.lr, rule.rec_lr) == (1.5e-3 / 4, 5e-4 / 4)


@pytest.mark.parametrize(
    "override,key,allowed",
    [
        ("learner.off_policy=ppo", "learner.off_policy", "none (the paper), decoupled or vtrace"),
        ("learner.off_policy=vtrace", "learner.off_policy", "vtrace only with learner.critic=td"),
        ("learner.behaviour_cbar=0", "learner.behaviour_cbar", "a number > 0"),
        ("learner.vtrace_rho=-1", "learner.vtrace_rho", "a number > 0"),
        ("learner.vtrace_c=-0.5", "learner.vtrace_c", "a number >= 0"),
        ("learner.lr_scale=kl", "learner.lr_scale", "none or per_episode"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key(override, key, allowed):
    with pytest.raises(ConfigError) as caught:
        validate(make_cfg(override))
    message = str(caught.value)
    assert message.startswith(f"{key}=") and allowed in message and "\n" not in message
