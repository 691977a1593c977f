"""learner=bptt: its gradient against a hand-written network and loss, its PPO loss and GAE against a hand
computation, the replay against acting, and the contracts every learner keeps (independence, determinism, resume,
one-line errors, the experiment files run)."""

from __future__ import annotations

import math

import pytest
import torch

from lfcs import checkpoint, train
from lfcs.config import ConfigError, learner_arguments, validate
from lfcs.learning.acting import play_episode
from lfcs.learning.bptt import BpttLearner
from lfcs.learning.bptt_loss import PpoSettings, gae, ppo_loss, valid_steps
from lfcs.learning.learner import LfcsLearner
from lfcs.network.policy import build_policy
from lfcs.rules.episodes import EpisodeBuffer
from lfcs.running.agents import AgentGroup
from tests.conftest import make_cfg, read_metrics

NET = dict(tau_mem_steps=6.0, tau_syn_steps=4.0, tau_readout_steps=2.0, bias=-8.0, self_inhibition=100.0,
           v_episode_start=-4.0, readout_gain=2.5, input_std=10.0, rec_std=3.0, out_std=1.0)  # fmt: skip


class HandSpike(torch.autograd.Function):
    """z = 1[m > 0] with dz/dm = 1 - tanh(slope m)^2, written here without norse."""

    @staticmethod
    def forward(ctx, margin, slope):
        ctx.save_for_backward(margin)
        ctx.slope = slope
        return (margin > 0).to(margin.dtype)

    @staticmethod
    def backward(ctx, grad):
        (margin,) = ctx.saved_tensors
        return grad * (1 - torch.tanh(ctx.slope * margin) ** 2), None


def hand_forward(w, x, u, slope, width):
    """METHOD.md §2 step by step for one episode: logits (T, O), values (T,), spike count."""
    a_m, a_s, a_ro = math.exp(-1 / 6), math.exp(-1 / 4), math.exp(-1 / 2)
    n = w["w_out"].shape[1]
    v, z, s, r = torch.full((n,), -4.0, dtype=torch.float64), *torch.zeros(3, n, dtype=torch.float64)
    logits, values, count = [], [], 0
    for t in range(len(x)):
        s = a_s * s + (1 - a_s) * z
        v_pre = a_m * v + (1 - a_m) * (w["w_rec"] @ s + w["w_in"] @ x[t] - 8.0)
        if u is None:
            z = HandSpike.apply(v_pre, slope)
        else:
            hard = (u[t] < torch.sigmoid(v_pre / width)).to(v_pre.dtype)
            soft = HandSpike.apply(v_pre - width * torch.log(u[t] / (1 - u[t])), slope)
            z = hard + soft - soft.detach()
        count += int(z.sum())
        v = v_pre - z.detach() * 100.0 / a_m
        r = a_ro * r + (1 - a_ro) * z
        logits.append(2.5 * w["w_out"] @ r)
        values.append(w["w_v"] @ r)
    return torch.stack(logits), torch.stack(values), count


def hand_loss(logits, values, actions, q, adv, eps, value_coef, entropy_coef):
    """PPO's clipped loss with advantages normalised (unbiased std) and returns adv + V before the update."""
    returns = adv + values.detach()
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    logp = torch.log_softmax(logits, -1)
    rho = torch.exp(logp[torch.arange(len(actions)), actions] - torch.log(q[torch.arange(len(actions)), actions]))
    policy = torch.maximum(-adv * rho, -adv * rho.clamp(1 - eps, 1 + eps)).mean()
    entropy = -(logp.exp() * logp).sum(-1).mean()
    return policy + value_coef * (0.5 * (values - returns) ** 2).mean() - entropy_coef * entropy


@pytest.mark.parametrize("stochastic", [False, True], ids=["deterministic", "stochastic"])
def test_gradient_equals_autograd_of_a_hand_written_network_and_loss(stochastic):
    """N = 5, 4 steps, W_in, W_rec, W_out and w_V learned: the learner's gradient (the leaves' .grad after one update
    of one epoch, no clipping of the norm) equals autograd through hand_forward + hand_loss; for W_out and w_V, whose
    gradient does not pass a spike, also central finite differences of the hand-written loss."""
    gen = torch.Generator().manual_seed(3)
    policy = build_policy([gen], 2, 3, num_neurons=5, learn_rec=True, stochastic_spikes=stochastic, **NET)
    x = 3 * torch.rand(4, 2, generator=gen, dtype=torch.float64)  # currents of ~25: some of the 5 neurons spike
    u = torch.rand(4, 5, generator=gen, dtype=torch.float64) if stochastic else None
    actions, rewards = torch.tensor([0, 2, 1, 2]), torch.tensor([1.0, 0.0, -1.0, 2.0], dtype=torch.float64)
    w = {k: getattr(policy, k)[0].clone() for k in ("w_in", "w_rec", "w_out")}
    w["w_v"] = torch.randn(5, generator=gen, dtype=torch.float64)
    with torch.no_grad():  # q: a policy with a slightly different W_out, so that rho != 1 and some steps clip
        logits, values, spikes = hand_forward({**w, "w_out": w["w_out"] * 1.3}, x, u, 0.3, 0.05)
    q = torch.softmax(logits, -1)
    assert spikes > 0
    buffer = EpisodeBuffer(x.unsqueeze(1), actions.unsqueeze(1), q.unsqueeze(1), rewards.unsqueeze(1),
                           torch.zeros(4, 1, dtype=torch.float64), torch.tensor([4]),
                           None if u is None else u.unsqueeze(1), torch.tensor([False]))  # fmt: skip
    learner = BpttLearner(policy, policy.clone(), epochs=1, eps=0.05, gae_lambda=0.9, gamma=0.95, value_coef=0.7,
                          entropy_coef=0.1, surrogate_slope=0.3, max_grad_norm=math.inf, learn_in=True,
                          learn_rec=True)  # fmt: skip
    learner.value_head[0] = w["w_v"]
    learner.learn(buffer)
    got = {name: leaf.grad for name, leaf in learner.leaves[0].items()}

    def loss_of(weights):
        logits, values, _ = hand_forward(weights, x, u, 0.3, 0.05)
        adv, _ = gae(rewards.unsqueeze(1), values.detach().unsqueeze(1), torch.tensor([4]), torch.tensor([False]),
                     0.95, 0.9)  # fmt: skip
        return hand_loss(logits, values, actions, q, adv[:, 0], 0.05, 0.7, 0.1)

    leaves = {k: v.clone().requires_grad_(True) for k, v in w.items()}
    loss_of(leaves).backward()
    for name, leaf in leaves.items():
        assert leaf.grad.abs().max() > 0, name
        torch.testing.assert_close(got[name], leaf.grad, rtol=1e-9, atol=1e-12, msg=name)
    for name, index in (("w_out", (1, 3)), ("w_out", (2, 0)), ("w_v", (4,))):
        plus, minus = {k: v.clone() for k, v in w.items()}, {k: v.clone() for k, v in w.items()}
        plus[name][index] += 1e-6
        minus[name][index] -= 1e-6
        with torch.no_grad():
            numeric = (loss_of(plus) - loss_of(minus)) / 2e-6
        assert abs(float(numeric) - float(got[name][index])) < 1e-7 * max(1.0, abs(float(numeric))), (name, index)


def test_gae_and_ppo_loss_equal_a_hand_computation():
    """A 3-step episode (terminal) beside a 2-step one cut by a time limit (padded to 3 steps)."""
    rewards = torch.tensor([[1.0, 0.5], [0.0, 1.0], [2.0, 0.0]], dtype=torch.float64)
    values = torch.tensor([[0.5, 0.2], [-0.2, 0.4], [0.1, 9.9]], dtype=torch.float64)
    lengths, terminated = torch.tensor([3, 2]), torch.tensor([True, False])
    adv, ret = gae(rewards, values, lengths, terminated, 0.9, 0.8)
    # episode 0: deltas 1 + 0.9(-0.2) - 0.5 = 0.32, 0 + 0.9(0.1) + 0.2 = 0.29, 2 + 0 - 0.1 = 1.9 (terminal)
    a2 = 1.9
    a1 = 0.29 + 0.72 * a2
    a0 = 0.32 + 0.72 * a1
    # episode 1: deltas 0.5 + 0.9(0.4) - 0.2 = 0.66, 1 + 0.9(0.4) - 0.4 = 0.96 (time limit: V_2 = V_1); step 2 padding
    b1 = 0.96
    b0 = 0.66 + 0.72 * b1
    expected = torch.tensor([[a0, b0], [a1, b1], [a2, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(adv, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(ret, torch.where(valid_steps(lengths, 3), expected + values, 0.0), rtol=0, atol=1e-12)

    logits = torch.tensor([[[0.0, 1.0], [2.0, 0.0]], [[0.5, 0.5], [0.0, 0.3]], [[-1.0, 1.0], [5.0, 5.0]]],
                          dtype=torch.float64)  # fmt: skip
    actions = torch.tensor([[1, 0], [0, 1], [1, 1]])
    logp_ref = torch.log(torch.tensor([[0.5, 0.9], [0.5, 0.3], [0.7, 1.0]], dtype=torch.float64))
    new_values = torch.tensor([[0.4, 0.1], [0.0, 0.5], [0.3, 7.0]], dtype=torch.float64)
    settings = PpoSettings(eps=0.2, clip="ppo", value_coef=0.5, entropy_coef=0.01, normalize=False)
    loss, sums = ppo_loss(logits, new_values, actions, logp_ref, adv, ret, valid_steps(lengths, 3), settings)

    def softmax(pair):
        e = [math.exp(v) for v in pair]
        return [v / sum(e) for v in e]

    terms, clipped, entropy, value = [], 0, 0.0, 0.0
    for t, e in ((0, 0), (1, 0), (2, 0), (0, 1), (1, 1)):  # the five valid steps
        p = softmax(logits[t, e].tolist())
        rho = p[actions[t, e]] / math.exp(float(logp_ref[t, e]))
        a = float(adv[t, e])
        terms.append(max(-a * rho, -a * min(max(rho, 0.8), 1.2)))
        clipped += abs(rho - 1) > 0.2
        entropy -= sum(pi * math.log(pi) for pi in p)
        value += 0.5 * (float(new_values[t, e]) - float(ret[t, e])) ** 2
    expected_loss = sum(terms) / 5 + 0.5 * value / 5 - 0.01 * entropy / 5
    assert abs(float(loss) - expected_loss) < 1e-12
    assert float(sums[0]) == clipped and 0 < clipped < 5 and float(sums[3]) == 5


BASE = ["progress=false", "log_images_every=0"]


@pytest.mark.parametrize("backend,noise", [("kernels", "false"), ("torch", "true")])
def test_replay_reproduces_acting_and_the_record_is_pi_new_before_the_update(backend, noise):
    """pi_new replays the episode from the reset state with the stored inputs and spike noise: at N = 500 with a
    random W_rec its probabilities are acting's, to rounding (acting sums the currents in another order)."""
    cfg = make_cfg(*BASE, "experiment=masked_cartpole_bptt", f"backend={backend}", "num_agents=2",
                   f"network.stochastic_spikes={noise}", "learner.batch_episodes=1", "learner.minibatch=1")  # fmt: skip
    group = AgentGroup(cfg, [0, 1])
    group.run_episode()  # one update, then pi_ref <- pi_new
    before = group.new_policy.w_out.clone()
    buffer, _ = play_episode(group.envs, group.ref_policy, group.generators, group.horizon, 0.99, [0, 1],
                             group.backend)  # fmt: skip
    _, record = group.learner.learn(buffer)
    assert not torch.equal(group.new_policy.w_out, before)
    for b, length in enumerate(buffer.lengths.tolist()):
        steps = min(length, buffer.horizon - 1)
        torch.testing.assert_close(record.new_probs[:steps, b], buffer.ref_probs[:steps, b], rtol=0, atol=1e-12)


def final_state(run_dir) -> dict[int, dict[str, torch.Tensor]]:
    """Every agent's weights and learner state (value head, Adam moments, pending episodes), keyed by agent id."""
    out = {}
    for path in sorted((run_dir / "checkpoints").glob("*.pt")):
        state = checkpoint.load(path)
        for i, agent in enumerate(state["agents"]):
            tensors = {f"{key}.{k}": v[i] for key in ("new_policy", "ref_policy") for k, v in state[key].items()}
            for k, v in state["adam"].items():  # pending episodes are time-major (T, B, ...), all else agent-major
                time_major = ".pending." in k and not k.endswith((".lengths", ".terminated"))
                tensors[k] = v if k == "bptt.updates" else v[:, i] if time_major else v[i]
            out[agent] = tensors
    return out


def agent_rows(run_dir, offset=0) -> dict[int, list[dict]]:
    rows = {}
    for row in read_metrics(run_dir / "metrics.csv"):
        rows.setdefault(int(row.pop("agent")) + offset, []).append(row)
    return rows


# Updates of two episodes, in minibatches of one in a permuted order; episode 3 is pending after one update.
CONTRACT = [*BASE, "learner.batch_episodes=2", "learner.minibatch=1"]


@pytest.mark.parametrize("experiment", ["masked_cartpole_bptt", "cartpole_bptt"])  # with and without W_rec
def test_agent_in_a_group_equals_the_agent_alone(tmp_path, experiment):
    """Agent b of a 3-agent group == the same seed trained alone, at the experiment's network size (N = 500): every
    metrics column but the wall-clock ones, every weight, value head, Adam moment and pending episode, bit for bit."""
    group, overrides = tmp_path / "group", [*CONTRACT, "iterations=3", f"experiment={experiment}"]
    train(make_cfg(*overrides, "seed=5", "num_agents=3", f"run_dir={group}"))
    rows, state = agent_rows(group), final_state(group)
    assert any(float(row["abs_log_ratio"]) > 0 for row in rows[0]), "the updates should move pi_new"
    for b in (1, 2):
        alone = tmp_path / f"alone{b}"
        train(make_cfg(*overrides, f"seed={5 + b}", f"run_dir={alone}"))
        assert agent_rows(alone, offset=b)[b] == rows[b], b
        alone_state = final_state(alone)[0]
        assert alone_state.keys() == state[b].keys()
        for key, tensor in alone_state.items():
            assert torch.equal(tensor, state[b][key]), (b, key)


def test_same_seed_same_run_and_resume_is_exact(tmp_path):
    """Two runs with one seed are identical; a run stopped at episode 3 (an update done, one episode pending, Adam
    state stored) and resumed equals the run that was not stopped."""
    overrides = [*CONTRACT, "experiment=masked_cartpole_bptt", "network.num_neurons=50", "num_agents=2",
                 "checkpoint_every=1", "iterations=5"]  # fmt: skip
    whole, again, split = tmp_path / "whole", tmp_path / "again", tmp_path / "split"
    train(make_cfg(*overrides, f"run_dir={whole}"))
    train(make_cfg(*overrides, f"run_dir={again}"))
    train(make_cfg(*[o for o in overrides if o != "iterations=5"], "iterations=3", f"run_dir={split}"))
    assert any(key.startswith("bptt.pending.0.") for key in final_state(split)[0])
    assert any(key.startswith("bptt.adam.w_rec.") for key in final_state(split)[0])
    train(make_cfg(*overrides, f"run_dir={split}", "resume=true"))
    for other in (again, split):
        assert read_metrics(other / "metrics.csv") == read_metrics(whole / "metrics.csv"), other
        for agent, tensors in final_state(whole).items():
            for key, tensor in tensors.items():
                assert torch.equal(tensor, final_state(other)[agent][key]), (other, agent, key)


@pytest.mark.parametrize("experiment", ["masked_cartpole_bptt", "cartpole_bptt", "pong100_bptt"])
def test_each_experiment_file_runs(tmp_path, experiment):
    """Two episodes with an update after each: metrics, TensorBoard events and a checkpoint."""
    run = tmp_path / experiment
    cfg = make_cfg(*BASE, f"experiment={experiment}", "iterations=2", "learner.batch_episodes=1",
                   "learner.minibatch=1", f"run_dir={run}")  # fmt: skip
    assert cfg.learner.name == "bptt" and cfg.network.num_neurons == 500
    train(cfg)
    rows = read_metrics(run / "metrics.csv")
    assert len(rows) == 2 and all(float(row["abs_log_ratio"]) > 0 for row in rows)
    assert list((run / "tb" / "agent_0").glob("events.*")) and list((run / "checkpoints").glob("*.pt"))


BAD = [
    (["learner.name=sgd"], "learner.name='sgd' is not allowed: one of lfcs, bptt"),
    (["learner=bptt", "learner.clip=mask"], "learner.clip='mask' is not allowed: ppo (the clipped objective) or none"),
    (["learner=bptt", "learner.epochs=0"], "learner.epochs=0 is not allowed: an integer >= 1"),
    (["learner=bptt", "learner.batch_episodes=0"], "learner.batch_episodes=0 is not allowed: an integer >= 1"),
    (["learner=bptt", "learner.minibatch=0"], "learner.minibatch=0 is not allowed: an integer >= 1"),
    (["learner=bptt", "learner.batch_episodes=4", "learner.minibatch=3"],
     "learner.minibatch=3 is not allowed: a divisor of learner.batch_episodes=4"),
    (["learner=bptt", "learner.gae_lambda=1.5"], "learner.gae_lambda=1.5 is not allowed: a number in [0, 1]"),
    (["learner=bptt", "learner.value_coef=-1"], "learner.value_coef=-1.0 is not allowed: a finite number >= 0"),
    (["learner=bptt", "learner.entropy_coef=inf"], "learner.entropy_coef=inf is not allowed: a finite number >= 0"),
    (["learner=bptt", "learner.surrogate_slope=0"], "learner.surrogate_slope=0.0 is not allowed: a finite number > 0"),
    (["learner=bptt", "learner.max_grad_norm=0"], "learner.max_grad_norm=0.0 is not allowed: a number > 0 (inf: no"),
    (["learner=bptt", "learner.n_passes=3"], "learner.n_passes=3 is not allowed: 2 (its default) with learner.name=bp"),
    (["learner=lfcs", "learner.epochs=8"], "learner.epochs=8 is not allowed: 4 (its default) with learner.name=lfcs"),
    (["learner=lfcs", "learner.learn_in=true"], "learner.learn_in=True is not allowed: False (its default) with"),
]  # fmt: skip


@pytest.mark.parametrize("overrides,message", BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_values_get_one_line_naming_the_key(overrides, message):
    with pytest.raises(ConfigError) as info:
        validate(make_cfg(*overrides))
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_learner_lfcs_gets_exactly_the_keys_it_had():
    """Choosing the learner by name leaves every existing configuration as it was: LfcsLearner gets its keys."""
    import inspect

    own = {p for p in inspect.signature(LfcsLearner).parameters if p not in ("new_policy", "ref_policy", "backend")}
    for group in ("lfcs", "eprop"):
        learner = make_cfg(f"learner={group}").learner
        assert learner.name == "lfcs" and set(learner_arguments(learner)) == own - {"track_rec_grad"}
    validate(make_cfg("experiment=masked_cartpole_rec"))
