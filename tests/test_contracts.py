"""Contracts: the agent axis (agent b alone == agent b in a group), state resets, acting vs replay dynamics."""

from __future__ import annotations

import pytest
import torch

from lfcs.agents import AgentGroup
from lfcs.learner import hidden_traces
from lfcs.rollout import play_episode
from tests.conftest import SMALL, make_cfg


def run(cfg, agents, episodes):
    group = AgentGroup(cfg, agents)
    rows = [group.run_episode() for _ in range(episodes)]
    return group, rows


@pytest.mark.parametrize(
    "overrides",
    [
        ["learner=lfcs"],
        ["learner=eprop"],
        # CartPole episodes end at different steps: agents sit out Adam steps past their own episode end.
        ["env=cartpole", "env.max_episode_steps=30", "learner=lfcs"],
        ["network.rec_std=0.1", "learner.learn_rec=true", "network.stochastic_spikes=true"],
    ],
    ids=["lfcs", "eprop", "cartpole-variable-length", "rec-stochastic"],
)
def test_agent_alone_equals_agent_in_group(overrides):
    seed, episodes = 3, 3
    together, rows_together = run(make_cfg(*SMALL, *overrides, f"seed={seed}", "num_agents=3"), [0, 1, 2], episodes)
    for b in range(3):
        alone, rows_alone = run(make_cfg(*SMALL, *overrides, f"seed={seed + b}", "num_agents=1"), [0], episodes)
        assert torch.equal(alone.new_policy.w_out[0], together.new_policy.w_out[b])
        assert torch.equal(alone.ref_policy.w_out[0], together.ref_policy.w_out[b])
        for episode in range(episodes):
            mine, theirs = rows_alone[episode][0], rows_together[episode][b]
            for key in (
                "episodic_return",
                "episode_length",
                "mask_fraction",
                "abs_log_ratio",
                "firing_rate",
                "w_out_norm",
            ):
                assert mine[key] == theirs[key], (key, episode, b)
    lengths = {row["episode_length"] for rows in rows_together for row in rows}
    if "env=cartpole" in overrides:
        assert len(lengths) > 1, "the variable-length case must really have different lengths"


def test_replay_dynamics_equal_acting_dynamics_and_reset_each_pass():
    cfg = make_cfg(*SMALL, "num_agents=2", "iterations=2")
    group = AgentGroup(cfg, [0, 1])
    group.run_episode()
    buffer, _ = play_episode(group.envs, group.ref_policy, group.generators, group.horizon, 0.99, [None, None], True)
    traces = hidden_traces(group.new_policy, buffer.obs, with_rec_inputs=False)
    assert torch.equal(traces.r, buffer.readout)
    again = hidden_traces(group.new_policy, buffer.obs, with_rec_inputs=False)
    assert torch.equal(again.r, traces.r)  # every replay starts from the reset state


def test_pi_ref_is_copied_after_episode_one_not_zero():
    cfg = make_cfg(*SMALL, "num_agents=1")
    group = AgentGroup(cfg, [0])
    initial = group.ref_policy.w_out.clone()
    group.run_episode()  # episode 0: pi_new learns, no copy
    assert torch.equal(group.ref_policy.w_out, initial)
    assert not torch.equal(group.new_policy.w_out, initial)
    group.run_episode()  # episode 1: trailing zero step, then pi_ref <- pi_new
    assert torch.equal(group.ref_policy.w_out, group.new_policy.w_out)
    assert group.ref_policy is not group.new_policy


def test_adam_steps_per_episode():
    """fast: T-1 steps per pass; slow: one per pass; plus the trailing zero step from episode 1 on."""
    for learner, per_episode in (("lfcs", 2 * 99), ("eprop", 1)):
        group = AgentGroup(make_cfg(*SMALL, f"learner={learner}"), [0])
        group.run_episode()
        group.run_episode()
        step = float(group.learner.adam_state(0)["step"])
        assert step == 2 * per_episode + 1, learner


def test_learned_recurrence_keeps_no_self_connections():
    # CartPole rewards every step, so the very first episode has a non-zero advantage to learn from.
    group = AgentGroup(make_cfg(*SMALL, "env=cartpole", "network.rec_std=0.1", "learner.learn_rec=true"), [0])
    before = group.new_policy.w_rec.clone()
    group.run_episode()
    assert not torch.equal(group.new_policy.w_rec, before)  # W_rec is learned
    assert torch.count_nonzero(group.new_policy.w_rec.diagonal(dim1=1, dim2=2)) == 0
