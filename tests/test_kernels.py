"""The compiled CPU kernels and the torch ops compute the same training (to rounding), on every variant."""

from __future__ import annotations

import pytest
import torch

from lfcs.running.agents import AgentGroup
from tests.conftest import EVERY_EXTENSION, make_cfg

VARIANTS = {
    "lfcs": ["learner=lfcs"],
    "eprop": ["learner=eprop"],
    "mask-off": ["learner.eps=inf"],
    "stochastic-rec-learned": ["network.stochastic_spikes=true", "network.rec_std=0.1", "learner.learn_rec=true"],
    "cartpole-variable-length": ["env=cartpole", "env.max_episode_steps=40", "learner=eprop", "learner.n_passes=2"],
    "extensions": ["env=cartpole", "env.max_episode_steps=40", *EVERY_EXTENSION],
    # e-prop's traces: adaptive neurons, per-neuron tau_m, W_in learned, random feedback, per-pass updates, rate
    # regulariser; then the same neuron under e-prop's slow timescale with stochastic spikes and the TD critic.
    "alif-eprop-every-knob": [
        "env=cartpole",
        "env.max_episode_steps=40",
        "network.neuron=alif",
        "network.tau_adapt_steps=20",
        "network.adapt_beta=2",
        "network.tau_mem_steps=[3,12]",
        "network.rec_std=0.1",
        "learner.learn_rec=true",
        "learner.learn_in=true",
        "learner.feedback=random",
        "learner.rec_update=per_pass",
        "learner.rate_reg=0.5",
    ],
    "alif-stochastic-slow-critic": [
        "env=cartpole",
        "env.max_episode_steps=40",
        "network.neuron=alif",
        "network.stochastic_spikes=true",
        "network.rec_std=0.1",
        "learner=eprop",
        "learner.learn_rec=true",
        "learner.learn_in=true",
        "learner.critic=td",
        "learner.rate_reg=0.5",
    ],
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_kernels_and_torch_ops_train_alike(variant):
    overrides = ["network.num_neurons=60", "progress=false", "num_agents=2", *VARIANTS[variant]]
    groups = {b: AgentGroup(make_cfg(*overrides, f"backend={b}"), [0, 1]) for b in ("kernels", "torch")}
    assert [g.backend.name for g in groups.values()] == ["kernels", "torch"]
    for episode in range(3):
        rows = {b: g.run_episode() for b, g in groups.items()}
        for mine, theirs in zip(rows["kernels"], rows["torch"]):
            for key in ("episodic_return", "episode_length", "firing_rate"):
                assert mine[key] == theirs[key], (episode, key)
            for key in ("mask_fraction", "abs_log_ratio", "approx_kl", "w_out_norm"):
                assert mine[key] == pytest.approx(theirs[key], rel=1e-9, abs=1e-12), (episode, key)
    kernels, ops = groups["kernels"], groups["torch"]
    torch.testing.assert_close(kernels.new_policy.w_out, ops.new_policy.w_out, rtol=0, atol=1e-11)
    torch.testing.assert_close(kernels.learner.adam_out.exp_avg_sq, ops.learner.adam_out.exp_avg_sq, rtol=1e-9, atol=0)
    assert torch.equal(kernels.learner.adam_out.step, ops.learner.adam_out.step)
    torch.testing.assert_close(kernels.new_policy.w_in, ops.new_policy.w_in, rtol=0, atol=1e-11)
    if kernels.new_policy.w_rec is not None:
        torch.testing.assert_close(kernels.new_policy.w_rec, ops.new_policy.w_rec, rtol=0, atol=1e-11)
    if kernels.learner.critic is not None:
        torch.testing.assert_close(kernels.learner.critic.w_v, ops.learner.critic.w_v, rtol=0, atol=1e-11)
