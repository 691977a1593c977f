"""Adaptive neurons (network.neuron=alif) and heterogeneous membrane time constants: the step by hand, which neurons
adapt, the per-neuron draws, the config checks, agents' independence and exact resume with the e-prop knobs."""

from __future__ import annotations

import math

import pytest
import torch

from lfcs import train
from lfcs.config import ConfigError, validate
from lfcs.export.saved_agent import load_agent
from lfcs.network.neurons import initial_state, make_neuron_params, network_step
from lfcs.network.policy import build_policy
from tests.conftest import make_cfg, read_metrics
from tests.test_contracts import by_agent, final_state

A_M, A_S, A_RO = math.exp(-1 / 6), math.exp(-1 / 4), math.exp(-1)
H, W_RES, V0, KAPPA = -8.0, 100.0, -4.0, 2.5
TAU_A, BETA = 100.0, 3.0
A_A = math.exp(-1 / TAU_A)
# Every e-prop knob at once, small and short.
EPROP = ["network.num_neurons=30", "network.neuron=alif", "network.rec_std=0.1", "network.tau_mem_steps=[3,12]",
         "learner.learn_rec=true", "learner.learn_in=true", "learner.feedback=random", "learner.rec_update=per_pass",
         "learner.rate_reg=0.5", "env=cartpole", "env.max_episode_steps=30", "progress=false"]  # fmt: skip


def alif_params(n):
    return make_neuron_params(6.0, 4.0, 1.0, H, W_RES, V0, KAPPA, neuron="alif", num_neurons=n,
                              tau_adapt_steps=TAU_A, adapt_beta=BETA, adapt_fraction=0.5)  # fmt: skip


def t64(x):
    return torch.tensor(x, dtype=torch.float64)


def test_alif_steps_by_hand():
    """Two neurons with the same constant drive (rest 1.5 above threshold): neuron 0 adapts (beta = 3, tau_a = 100),
    neuron 1 does not. By hand: a_t = a_a a_{t-1} + z_{t-1}; z_t = 1[v_t - beta a_t > 0]; lif_box's membrane."""
    params = alif_params(2)
    assert params.adapt_beta.tolist() == [BETA, 0.0]
    drive = 9.5  # v settles at h + 9.5 = 1.5
    w_in = t64([[[drive], [drive]]])
    state = initial_state(1, 2, params, w_in)
    v, z, a = [V0, V0], [0.0, 0.0], [0.0, 0.0]
    spikes = []
    for _ in range(120):
        v_pre_got, state = network_step(t64([[1.0]]), state, w_in, None, params)
        a = [A_A * a[i] + z[i] for i in range(2)]
        v_pre = [A_M * v[i] + (1 - A_M) * (drive + H) for i in range(2)]
        z = [1.0 if v_pre[i] - [BETA, 0.0][i] * a[i] > 0 else 0.0 for i in range(2)]
        v = [v_pre[i] - z[i] * W_RES / A_M for i in range(2)]
        spikes.append(z)
        torch.testing.assert_close(v_pre_got[0], t64(v_pre), rtol=0, atol=1e-12)
        torch.testing.assert_close(state.a[0], t64(a), rtol=0, atol=1e-12)
        assert state.z[0].tolist() == z
    counts = [sum(s[i] for s in spikes) for i in range(2)]
    assert counts[0] < counts[1], counts  # the case exercised: adaptation removes spikes


def test_which_neurons_adapt():
    """The first round(adapt_fraction N) neurons (Python's round, half to even), the same in every agent."""
    for n, fraction, count in ((10, 0.5, 5), (5, 0.5, 2), (7, 0.3, 2), (4, 0.0, 0), (4, 1.0, 4)):
        params = make_neuron_params(6.0, 4.0, 1.0, H, W_RES, V0, KAPPA, neuron="alif", num_neurons=n,
                                    adapt_beta=0.4, adapt_fraction=fraction)  # fmt: skip
        assert params.adapt_beta.tolist() == [0.4] * count + [0.0] * (n - count)
    assert make_neuron_params(6.0, 4.0, 1.0, H, W_RES, V0, KAPPA).adapt_beta is None  # lif_box


def build(seeds, **knobs):
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    shape = dict(num_neurons=400, tau_syn_steps=4.0, tau_readout_steps=1.0, bias=H, self_inhibition=W_RES,
                 v_episode_start=V0, readout_gain=KAPPA, input_std=10.0, rec_std=0.5, out_std=1.0)  # fmt: skip
    return build_policy(gens, 2, 2, **{"tau_mem_steps": 6.0, **shape, **knobs}), gens


def test_heterogeneous_time_constants_are_log_uniform_per_neuron_and_agent():
    hetero, gens = build([0, 1], tau_mem_steps=[2.0, 50.0], feedback="random")
    plain, plain_gens = build([0, 1])
    tau = -1.0 / hetero.decay_mem.log()  # (B, N)
    assert tau.min() >= 2.0 - 1e-9 and tau.max() <= 50.0 + 1e-9
    assert abs(float(tau.log().mean()) - 0.5 * (math.log(2.0) + math.log(50.0))) < 0.1  # log-uniform
    assert not torch.equal(hetero.decay_mem[0], hetero.decay_mem[1])  # each agent its own
    for name in ("w_in", "w_rec", "w_out"):  # drawn after the weights: the weights are the default network's
        assert torch.equal(getattr(hetero, name), getattr(plain, name)), name
    assert plain.decay_mem is None and plain.w_feedback is None
    assert hetero.w_feedback.shape == hetero.w_out.shape
    alone, _ = build([1], tau_mem_steps=[2.0, 50.0], feedback="random")
    assert torch.equal(alone.decay_mem[0], hetero.decay_mem[1]) and torch.equal(
        alone.w_feedback[0], hetero.w_feedback[1]
    )


BAD = [
    (["network.neuron=izhikevich"], ["network.neuron", "lif_box", "alif"]),
    (["network.tau_adapt_steps=0"], ["network.tau_adapt_steps", "> 0"]),
    (["network.adapt_beta=-1"], ["network.adapt_beta", ">= 0"]),
    (["network.adapt_fraction=1.5"], ["network.adapt_fraction", "[0, 1]"]),
    (["network.tau_mem_steps=[5,2]"], ["network.tau_mem_steps", "min <= max"]),
    (["network.tau_mem_steps=[0,2]"], ["network.tau_mem_steps", "0 < min"]),
    (["network.tau_mem_steps=[1,2,3]"], ["network.tau_mem_steps", "[min, max]"]),
    (["learner.feedback=transposed"], ["learner.feedback", "symmetric", "random"]),
    (["learner.feedback=random"], ["learner.feedback", "learn_rec", "learn_in"]),
    (["learner.learn_in=true", "learner.in_lr=0"], ["learner.in_lr", "> 0"]),
    (["learner.in_lr=1e-3"], ["learner.in_lr", "null while learner.learn_in=false"]),
    (["learner.rec_update=sometimes"], ["learner.rec_update", "per_step or per_pass"]),
    (["learner.learn_in=true", "learner.rate_reg=-1"], ["learner.rate_reg", ">= 0"]),
    (["learner.rate_reg=1"], ["learner.rate_reg", "learn_rec", "learn_in"]),
    (["learner.learn_in=true", "learner.rate_reg=1"], ["learner.rate_reg", "rec_update=per_pass"]),
    (["learner.rate_target=2"], ["learner.rate_target", "[0, 1]"]),
]


@pytest.mark.parametrize("overrides, words", BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_values_are_one_line_naming_the_key(overrides, words):
    with pytest.raises(ConfigError) as info:
        validate(make_cfg(*overrides))
    message = str(info.value)
    assert "\n" not in message and message.startswith(words[0]), message
    for word in words:
        assert word in message, (word, message)


def test_the_eprop_knobs_validate():
    validate(make_cfg(*EPROP))
    validate(make_cfg(*EPROP, "learner.rec_update=per_step", "learner.rate_reg=0", "network.tau_mem_steps=6"))


def test_agent_alone_equals_agent_in_group_with_every_eprop_knob(tmp_path):
    overrides = [*EPROP, "iterations=3"]
    group = tmp_path / "group"
    train(make_cfg(*overrides, "seed=5", "num_agents=2", f"run_dir={group}"))
    rows, state = by_agent(read_metrics(group / "metrics.csv")), final_state(group)
    alone = tmp_path / "alone"
    train(make_cfg(*overrides, "seed=6", f"run_dir={alone}"))
    assert by_agent(read_metrics(alone / "metrics.csv"), agent_offset=1)[1] == rows[1]
    for key, tensor in final_state(alone)[0].items():
        assert torch.equal(tensor, state[1][key]), key
    assert {"new.decay_mem", "new.w_feedback", "adam.in.exp_avg"} <= set(state[1])


def test_resume_is_exact_and_an_alif_agent_reloads(tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    train(make_cfg(*EPROP, "num_agents=2", "iterations=4", f"run_dir={whole}"))
    train(make_cfg(*EPROP, "num_agents=2", "iterations=2", f"run_dir={split}"))
    train(make_cfg(*EPROP, "num_agents=2", "iterations=4", f"run_dir={split}", "resume=true"))
    assert read_metrics(whole / "metrics.csv") == read_metrics(split / "metrics.csv")
    ends = final_state(whole), final_state(split)
    for agent in (0, 1):
        for key, tensor in ends[0][agent].items():
            assert torch.equal(tensor, ends[1][agent][key]), (agent, key)
    saved = load_agent(whole, agent=1)  # evaluation / export read pi_ref back with its per-neuron decays
    assert torch.equal(saved.ref_policy.decay_mem[0], ends[0][1]["ref.decay_mem"])
    assert saved.ref_policy.params.adapt_beta is not None


def test_nir_export_refuses_what_it_cannot_write_yet():
    from lfcs.export.nir_export import NirExportError, policy_graph

    for knobs in ({"neuron": "alif"}, {"tau_mem_steps": [3.0, 12.0]}):
        policy, _ = build([0], **knobs)
        with pytest.raises(NirExportError, match="not exported yet"):
            policy_graph(policy)
