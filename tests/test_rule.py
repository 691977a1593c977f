"""The applied update against an independent numpy reference of METHOD.md §2-3 (tests/rule_reference.py), and the
learner's knobs by behaviour. The reference covers what the golden files do not: W_rec learned with G_rec, any number
of actions, several steps.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lfcs.learning.acting import play_episode
from lfcs.rules.episodes import EpisodeBuffer, advantages_from_rewards
from lfcs.rules.maths import ppo_weight, step_credit
from lfcs.running.agents import AgentGroup
from tests.conftest import SMALL, make_cfg
from tests.rule_reference import (
    ADAM_EPS,
    BETAS,
    GAMMA,
    LR,
    as_buffer,
    as_learner,
    fresh_adam,
    random_episode,
    reference_adam,
    reference_pass,
)


@pytest.mark.parametrize("backend", ["kernels", "torch"])
@pytest.mark.parametrize("num_actions", [2, 3])
@pytest.mark.parametrize("timescale", ["fast", "slow"])
@pytest.mark.parametrize("learn_rec", [True, False])
def test_applied_update_equals_the_method_reference(backend, num_actions, timescale, learn_rec):
    rng = np.random.default_rng(7)
    w_in, w_rec, w_out, obs, actions, q, rewards = random_episode(rng, 10, 3, num_actions, 30)
    eps = 0.3
    fast = timescale == "fast"
    want_out, want_rec = reference_pass(w_in, w_rec, w_out, obs, actions, q, rewards, eps, learn_rec, fast)
    policy, learner = as_learner(w_in, w_rec, w_out, timescale=timescale, n_passes=1, eps=eps, learn_rec=learn_rec,
                                 backend=backend)  # fmt: skip
    _, record = learner.learn(as_buffer(obs, actions, q, rewards))
    assert 0 < float(record.mask.mean()) < 1, "the case must exercise the mask"
    if learn_rec:  # the case must exercise G_rec
        assert np.abs(want_rec - w_rec).max() > 1e-4
    np.testing.assert_allclose(policy.w_out[0].numpy(), want_out, rtol=0, atol=1e-12)
    np.testing.assert_allclose(policy.w_rec[0].numpy(), want_rec, rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", ["kernels", "torch"])
@pytest.mark.parametrize("timescale", ["fast", "slow"])
@pytest.mark.parametrize("clip", ["mask", "none", "ppo"])
@pytest.mark.parametrize("terminal", [False, True])
def test_clip_and_terminal_credit_equal_the_reference(backend, timescale, clip, terminal):
    """learner.clip and learner.terminal_credit, with W_rec learned, against the numpy reference."""
    rng = np.random.default_rng(11)
    w_in, w_rec, w_out, obs, actions, q, rewards = random_episode(rng, 10, 3, 3, 25)
    eps, fast = 0.3, timescale == "fast"
    want_out, want_rec = reference_pass(w_in, w_rec, w_out, obs, actions, q, rewards, eps, True, fast, clip, terminal)
    policy, learner = as_learner(w_in, w_rec, w_out, timescale=timescale, n_passes=1, eps=eps, learn_rec=True,
                                 clip=clip, terminal_credit=terminal, backend=backend)  # fmt: skip
    _, record = learner.learn(as_buffer(obs, actions, q, rewards))
    assert len(record.mask) == (25 if terminal else 24)
    if clip == "none":
        assert bool((record.mask == 1).all())
    else:
        assert 0 < float(record.mask.mean()) < 1, "the case must exercise the clip"
    np.testing.assert_allclose(policy.w_out[0].numpy(), want_out, rtol=0, atol=1e-12)
    np.testing.assert_allclose(policy.w_rec[0].numpy(), want_rec, rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", ["kernels", "torch"])
@pytest.mark.parametrize("timescale", ["fast", "slow"])
def test_rec_lr_steps_w_rec_at_its_own_rate(backend, timescale):
    """learner.rec_lr: W_rec's Adam (the replayed steps and the trailing zero step) uses it, W_out's keeps lr."""
    rng = np.random.default_rng(5)
    w_in, w_rec, w_out, obs, actions, q, rewards = random_episode(rng, 10, 3, 3, 25)
    rec_lr, fast = LR / 8, timescale == "fast"
    adam = fresh_adam(w_out, w_rec)
    want_out, want_rec = reference_pass(w_in, w_rec, w_out, obs, actions, q, rewards, 0.3, True, fast, adam=adam,
                                        rec_lr=rec_lr)  # fmt: skip
    policy, learner = as_learner(w_in, w_rec, w_out, timescale=timescale, n_passes=1, eps=0.3, learn_rec=True,
                                 rec_lr=rec_lr, backend=backend)  # fmt: skip
    learner.learn(as_buffer(obs, actions, q, rewards))
    if not fast:  # one Adam step from zero moments: every entry moves by rec_lr |D| / (|D| + adam_eps) <= rec_lr
        step = np.abs(policy.w_rec[0].numpy() - w_rec)
        assert step.max() <= rec_lr and step.max() > 0.9 * rec_lr
    np.testing.assert_allclose(policy.w_out[0].numpy(), want_out, rtol=0, atol=1e-12)
    np.testing.assert_allclose(policy.w_rec[0].numpy(), want_rec, rtol=0, atol=1e-12)
    learner.end_episode(1)  # the zero-gradient step: each matrix with its own lr
    reference_adam(adam, "out", want_out, np.zeros_like(want_out), LR)
    reference_adam(adam, "rec", want_rec, np.zeros_like(want_rec), rec_lr)
    np.testing.assert_allclose(policy.w_out[0].numpy(), want_out, rtol=0, atol=1e-12)
    np.testing.assert_allclose(policy.w_rec[0].numpy(), want_rec, rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", ["kernels", "torch"])
def test_replay_episodes_replays_each_stored_episode_against_its_own_behaviour_policy(backend):
    """K = 2: the second phase replays episode 1 (with its own q) and then episode 2, Adam state carried over."""
    rng = np.random.default_rng(3)
    w_in, w_rec, w_out, obs1, actions1, q1, rewards1 = random_episode(rng, 10, 3, 3, 20)
    _, _, _, obs2, actions2, q2, rewards2 = random_episode(rng, 10, 3, 3, 20)
    policy, learner = as_learner(w_in, w_rec, w_out, n_passes=2, eps=0.3, replay_episodes=2, backend=backend)
    adam = fresh_adam(w_out, w_rec)
    want = w_out
    for obs, actions, q, rewards in [(obs1, actions1, q1, rewards1)] * 2 + [
        (obs1, actions1, q1, rewards1),
        (obs2, actions2, q2, rewards2),
    ] * 2:  # phase 1: 2 passes over episode 1; phase 2: 2 rounds over episodes 1, 2
        want, _ = reference_pass(w_in, w_rec, want, obs, actions, q, rewards, 0.3, False, True, adam=adam)
    learner.learn(as_buffer(obs1, actions1, q1, rewards1))
    stats, record = learner.learn(as_buffer(obs2, actions2, q2, rewards2))
    assert len(learner.store.episodes) == 2
    np.testing.assert_allclose(policy.w_out[0].numpy(), want, rtol=0, atol=1e-12)
    assert float(learner.adam_out.step[0]) == 2 * 19 + 4 * 19
    learner.learn(as_buffer(obs1, actions1, q1, rewards1))
    assert len(learner.store.episodes) == 2, "memory stays bounded at K episodes"


def test_ppo_credit_on_a_hand_written_three_step_episode():
    """C_s = sum over the later replayed t of gamma^(t-1-s) A_t (paper pairing), gamma^(t-s) (terminal credit)."""
    gamma = 0.5
    rewards = torch.tensor([[1.0], [2.0], [4.0]])  # reward for a_0, a_1, a_2
    lengths = torch.tensor([3])
    paper = step_credit(advantages_from_rewards(rewards, gamma), lengths, gamma, pair_after=False)
    # Replayed t = 0, 1 with A_0 = 0, A_1 = r_0 = 1: G_0 meets A_1 (gamma^0); G_1 meets nothing.
    assert paper.flatten().tolist() == [1.0, 0.0, 0.0]
    terminal = step_credit(rewards, lengths, gamma, pair_after=True)
    # Replayed t = 0, 1, 2 with delta_t = r_t: C_0 = 1 + 0.5 * 2 + 0.25 * 4 = 3, C_1 = 2 + 0.5 * 4 = 4, C_2 = 4.
    assert terminal.flatten().tolist() == [3.0, 4.0, 4.0]
    # The weight: the unclipped term is kept where it is the smaller, whatever the sign of C.
    taken = torch.tensor([0.5, 0.5, 1.1, 1.5, 1.5, 0.5])
    credit = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0, 0.0])
    assert ppo_weight(taken, credit, 0.8, 1.2).tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("backend", ["kernels", "torch"])
def test_terminal_credit_learns_from_a_reward_paid_only_at_the_end(backend):
    """A 2-step episode paying only for its last action: the paper's pairing never sees the reward (W_out stays,
    apart from nothing), terminal credit moves W_out by D = r_1 E_1 in one slow Adam step of size lr."""
    rng = np.random.default_rng(5)
    w_in, w_rec, w_out, obs, actions, q, _ = random_episode(rng, 10, 3, 3, 2)
    rewards = np.array([0.0, 1.0])
    for terminal in (False, True):
        policy, learner = as_learner(w_in, w_rec, w_out, timescale="slow", n_passes=1, terminal_credit=terminal,
                                     clip="none", backend=backend)  # fmt: skip
        learner.learn(as_buffer(obs, actions, q, rewards))
        moved = np.abs(policy.w_out[0].numpy() - w_out)
        if not terminal:
            assert moved.max() == 0.0
        else:  # D = 1 * E_1 = gamma G_0 + G_1; Adam's first step moves every weight with D != 0 by lr
            want, _ = reference_pass(w_in, w_rec, w_out, obs, actions, q, rewards, 0.2, False, False, "none", True)
            np.testing.assert_allclose(policy.w_out[0].numpy(), want, rtol=0, atol=1e-12)
            assert np.isclose(moved.max(), LR, rtol=1e-3)


def one_episode(*overrides):
    group = AgentGroup(make_cfg(*SMALL, *overrides), [0])
    buffer, _ = play_episode(group.envs, group.ref_policy, group.generators, group.horizon, 0.99, [0], group.backend)
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


@pytest.mark.parametrize("backend", ["kernels", "torch"])
@pytest.mark.parametrize("limit", [500, 6], ids=["pole-falls", "time-limit"])
def test_td_critic_is_online_td0_on_pi_refs_readout(backend, limit):
    """delta_t = reward_t + gamma V_{t+1} - V_t with w_V after the Adam steps of steps 0 .. t-1 (numpy reference,
    read-out traces from pi_ref's own torch steps); after the last step V = 0 if the pole fell, V_{L-1} past a time
    limit; the replay meets A_t = delta_{t-1} with E_{t-1}."""
    critic_lr = 0.05
    group, buffer = one_episode("env=cartpole", f"env.max_episode_steps={limit}", "learner.critic=td",
                                f"learner.critic_lr={critic_lr}", f"backend={backend}")  # fmt: skip
    length = int(buffer.lengths[0])
    fell = length < limit
    assert bool(buffer.terminated[0]) == fell
    state, traces = group.ref_policy.initial_state(), []
    for t in range(length):
        _, _, state = group.ref_policy.step(buffer.obs[t], state, None)
        traces.append(state.r[0].numpy().copy())
    w, m, sq = np.zeros(len(traces[0])), np.zeros(len(traces[0])), np.zeros(len(traces[0]))
    want = []
    for t in range(length):
        value_next = w @ traces[t + 1] if t + 1 < length else (0.0 if fell else w @ traces[t])
        delta = float(buffer.rewards[t, 0]) + GAMMA * value_next - w @ traces[t]
        want.append(delta)
        grad = delta * traces[t]
        m = BETAS[0] * m + (1 - BETAS[0]) * grad
        sq = BETAS[1] * sq + (1 - BETAS[1]) * grad * grad
        w = w + critic_lr * (m / (1 - BETAS[0] ** (t + 1))) / (np.sqrt(sq / (1 - BETAS[1] ** (t + 1))) + ADAM_EPS)
    assert want[0] == float(buffer.rewards[0, 0])  # V = 0 before any learning: the first delta is the reward
    group.learner.learn(buffer)
    np.testing.assert_allclose(group.learner.critic.w_v[0].numpy(), w, rtol=0, atol=1e-10)
    met = group.learner.store.episodes[-1].met[:, 0].numpy()
    assert met[0] == 0.0
    np.testing.assert_allclose(met[1:length], want[:-1], rtol=0, atol=1e-10)
    assert np.abs(w).max() > 1e-3  # the critic learned
