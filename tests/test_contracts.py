"""Contracts: the agent axis (agent b alone == agent b in a group == agent b in a worker process), at the paper's
N = 500 as well as at small N; acting vs replay dynamics; state resets; Adam step counts."""

from __future__ import annotations

import pytest
import torch

from lfcs import checkpoint, train
from lfcs.learning.acting import play_episode
from lfcs.running.agents import AgentGroup
from tests.conftest import EVERY_EXTENSION, SMALL, make_cfg, read_metrics

CASES = {
    "lfcs-n40": ["network.num_neurons=40", "learner=lfcs"],
    "eprop-n40": ["network.num_neurons=40", "learner=eprop"],
    # CartPole episodes end at different steps: agents sit out Adam steps past their own episode end.
    "cartpole-variable-length": ["network.num_neurons=40", "env=cartpole", "env.max_episode_steps=30"],
    "rec-stochastic-learned-n40": [
        "network.num_neurons=40",
        "network.rec_std=0.1",
        "learner.learn_rec=true",
        "network.stochastic_spikes=true",
    ],
    # The paper's size, where a batched BLAS product rounds differently for B = 1 and B > 1.
    "lfcs-n500": ["learner=lfcs"],
    "eprop-n500": ["learner=eprop"],
    "rec-stochastic-n500": ["network.rec_std=0.05", "network.stochastic_spikes=true"],
    "extensions-n40": ["network.num_neurons=40", "env=cartpole", "env.max_episode_steps=30", *EVERY_EXTENSION],
    "cartpole-learned-rec-n500": [
        "env=cartpole",
        "env.max_episode_steps=40",
        "network.rec_std=0.05",
        "learner.learn_rec=true",
    ],  # fmt: skip
}


def final_state(run_dir):
    """Every agent's pi_new / pi_ref weights and Adam state, keyed by agent id."""
    out = {}
    for path in sorted((run_dir / "checkpoints").glob("*.pt")):
        state = checkpoint.load(path)
        for i, agent in enumerate(state["agents"]):
            tensors = {f"new.{k}": v[i] for k, v in state["new_policy"].items()}
            tensors |= {f"ref.{k}": v[i] for k, v in state["ref_policy"].items()}
            # Stored episodes are time-major (T, B, ...); their lengths and end flags are agent-major (B,).
            tensors |= {
                f"adam.{k}": v[:, i]
                if k.startswith("replay.") and not k.endswith((".lengths", ".terminated"))
                else v[i]
                for k, v in state["adam"].items()
            }
            out[agent] = tensors
    return out


def by_agent(rows, agent_offset=0):
    per = {}
    for row in rows:
        agent = int(row.pop("agent")) + agent_offset
        per.setdefault(agent, []).append(row)
    return per


@pytest.mark.parametrize("case", list(CASES))
def test_agent_alone_equals_agent_in_group_and_in_a_worker(tmp_path, case):
    """alone (seed s + b) == agent b of a 3-agent group == agent b of a 3-agent run on 2 workers: every metrics
    column but the wall-clock ones, every weight, every Adam moment, bit for bit."""
    overrides = ["progress=false", "iterations=3", "seed=5", *CASES[case]]
    group, workers = tmp_path / "group", tmp_path / "workers"
    train(make_cfg(*overrides, "num_agents=3", f"run_dir={group}"))
    train(make_cfg(*overrides, "num_agents=3", "workers=2", f"run_dir={workers}"))
    group_rows, group_state = by_agent(read_metrics(group / "metrics.csv")), final_state(group)
    assert by_agent(read_metrics(workers / "metrics.csv")) == group_rows
    for b in range(3):
        alone = tmp_path / f"alone{b}"
        train(make_cfg(*[o for o in overrides if o != "seed=5"], f"seed={5 + b}", f"run_dir={alone}"))
        assert by_agent(read_metrics(alone / "metrics.csv"), agent_offset=b)[b] == group_rows[b], b
        for key, tensor in final_state(alone)[0].items():
            assert torch.equal(tensor, group_state[b][key]), (b, key)
            assert torch.equal(tensor, final_state(workers)[b][key]), (b, key)
    if case == "cartpole-variable-length":
        lengths = {row["episode_length"] for rows in group_rows.values() for row in rows}
        assert len(lengths) > 1, "the variable-length case must really have different lengths"


@pytest.mark.parametrize("stochastic", [False, True], ids=["deterministic", "stochastic"])
@pytest.mark.parametrize("backend", ["kernels", "torch"])
def test_eprop_replay_reproduces_acting_exactly(stochastic, backend):
    """e-prop replays with pi_new == pi_ref: the replay must reproduce acting's probabilities bit for bit, so rho is
    exactly 1 (with stochastic spikes too: the replay reuses acting's spike noise)."""
    noise = "true" if stochastic else "false"
    cfg = make_cfg("progress=false", "learner=eprop", f"network.stochastic_spikes={noise}", "num_agents=2",
                   f"backend={backend}", "network.rec_std=0.05")  # fmt: skip
    group = AgentGroup(cfg, [0, 1])
    for _ in range(2):
        buffer, _ = play_episode(group.envs, group.ref_policy, group.generators, group.horizon, 0.99, [0, 1],
                                 group.backend)  # fmt: skip
        stats, record = group.learner.learn(buffer)
        assert torch.equal(record.new_probs, buffer.ref_probs[:-1])
        assert stats["mask_fraction"].tolist() == [0.0, 0.0] and stats["abs_log_ratio"].tolist() == [0.0, 0.0]
        group.learner.end_episode(1)


def test_lfcs_ratio_starts_at_one_with_stochastic_spikes():
    """lf-cs: before its first update pi_new == pi_ref, so the first replayed step's ratio is exactly 1."""
    group = AgentGroup(make_cfg(*SMALL, "network.stochastic_spikes=true", "num_agents=2"), [0, 1])
    group.run_episode()
    buffer, _ = play_episode(
        group.envs, group.ref_policy, group.generators, group.horizon, 0.99, [None, None], group.backend
    )
    group.learner.end_episode(1)  # pi_ref <- pi_new, so that the replay starts from pi_ref's weights
    buffer, _ = play_episode(
        group.envs, group.ref_policy, group.generators, group.horizon, 0.99, [None, None], group.backend
    )
    _, record = group.learner.learn(buffer)
    assert torch.equal(record.new_probs[0], buffer.ref_probs[0])
    assert not torch.equal(record.new_probs[-1], buffer.ref_probs[-2])  # later steps see the updates


@pytest.mark.parametrize("backend", ["kernels", "torch"])
def test_every_pass_starts_from_the_reset_state(backend):
    """With lr = 0 nothing changes between passes, so every pass must record exactly the same probabilities."""
    cfg = make_cfg(*SMALL, "network.rec_std=0.1", f"backend={backend}")
    group = AgentGroup(cfg, [0])
    group.learner.rule = group.learner.rule._replace(lr=0.0)  # the passes read the rule
    buffer, _ = play_episode(group.envs, group.ref_policy, group.generators, group.horizon, 0.99, [0], group.backend)
    first = group.learner.learn(buffer)[1].new_probs.clone()
    assert torch.equal(group.learner.learn(buffer)[1].new_probs, first)


def test_pi_ref_is_copied_after_episode_one_not_zero():
    group = AgentGroup(make_cfg(*SMALL, "num_agents=1"), [0])
    initial = group.ref_policy.w_out.clone()
    group.run_episode()  # episode 0: pi_new learns, no copy
    assert torch.equal(group.ref_policy.w_out, initial)
    assert not torch.equal(group.new_policy.w_out, initial)
    group.run_episode()  # episode 1: trailing zero step, then pi_ref <- pi_new
    assert torch.equal(group.ref_policy.w_out, group.new_policy.w_out)
    assert group.ref_policy is not group.new_policy


@pytest.mark.parametrize("learner,per_episode", [("lfcs", 2 * 99), ("eprop", 1)])
@pytest.mark.parametrize("trailing", [True, False])
def test_adam_steps_per_episode(learner, per_episode, trailing):
    """fast: T-1 steps per pass; slow: one per pass; plus the trailing zero step from episode 1 on when it is on."""
    cfg = make_cfg(*SMALL, f"learner={learner}", f"learner.trailing_zero_step={str(trailing).lower()}")
    group = AgentGroup(cfg, [0])
    group.run_episode()
    group.run_episode()
    assert float(group.learner.adam_out.step[0]) == 2 * per_episode + int(trailing)


def test_learned_recurrence_keeps_no_self_connections():
    # CartPole rewards every step, so the very first episode has a non-zero advantage to learn from.
    group = AgentGroup(make_cfg(*SMALL, "env=cartpole", "network.rec_std=0.1", "learner.learn_rec=true"), [0])
    before = group.new_policy.w_rec.clone()
    group.run_episode()
    assert not torch.equal(group.new_policy.w_rec, before)  # W_rec is learned
    assert torch.count_nonzero(group.new_policy.w_rec.diagonal(dim1=1, dim2=2)) == 0
