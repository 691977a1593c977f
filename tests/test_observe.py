"""Observability: the torch replay of the hidden states, and that observing and evaluating change no training."""

from __future__ import annotations

import math
import re

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lfcs import checkpoint, train
from lfcs.analysis.observe import record_hidden, taken_ratios
from lfcs.export.evaluate import evaluate
from lfcs.export.saved_agent import load_agent
from lfcs.learning.acting import play_episode
from lfcs.network.neurons import policy_probs
from lfcs.running.agents import AgentGroup
from lfcs.running.logger import EXTRA_TAGS, TAGS
from tests.conftest import ROOT, SMALL, make_cfg, read_metrics

OBSERVE_ALL = ["log_images_every=1", "probe_every=2", "eval_every=2", "eval_episodes=3"]
OFF = ["log_images_every=0", "probe_every=0", "eval_every=0"]


@pytest.mark.parametrize("stochastic", [False, True])
def test_record_hidden_reproduces_what_the_compiled_actor_did(stochastic):
    cfg = make_cfg(*SMALL, "num_agents=2", f"network.stochastic_spikes={str(stochastic).lower()}", *OFF)
    group = AgentGroup(cfg, [0, 1])
    buffer, stats = play_episode(
        group.envs, group.ref_policy, group.generators, group.horizon, 0.99, [0, 1], group.backend
    )
    z, v, r = record_hidden(group.ref_policy, buffer)
    assert z.shape == v.shape == r.shape == (group.horizon, 2, 40)
    lengths = buffer.lengths.tolist()
    for b, length in enumerate(lengths):
        probs = policy_probs(
            group.ref_policy.w_out[b : b + 1], r[:length, b], cfg.network.readout_gain
        )  # (T, O) from the traces
        torch.testing.assert_close(probs, buffer.ref_probs[:length, b], rtol=0, atol=1e-12)
        rate = float(z[:length, b].sum()) / (length * 40)
        assert math.isclose(rate, float(stats["firing_rate"][b]), rel_tol=1e-12) and rate > 0
    if not stochastic:
        assert (v[z > 0] > 0).all() and (v[z == 0] <= 0).all()  # a spike is a pre-reset membrane above 0


def test_taken_ratios_are_one_when_pi_new_is_pi_ref():
    cfg = make_cfg(*SMALL, *OFF)
    group = AgentGroup(cfg, [0])
    buffer, _ = play_episode(group.envs, group.ref_policy, group.generators, group.horizon, 0.99, [0], group.backend)
    assert torch.equal(taken_ratios(buffer.ref_probs[:-1], buffer), torch.ones(group.horizon - 1, 1).double())


def _weights(run_dir):
    state = checkpoint.load(next((run_dir / "checkpoints").glob("*.pt")))
    return {k: state[k] for k in ("new_policy", "ref_policy", "adam", "generators", "env_states")}


def test_observing_and_evaluating_leave_training_bit_identical_and_fill_tensorboard(tmp_path):
    off, on = tmp_path / "off", tmp_path / "on"
    train(make_cfg(*SMALL, "num_agents=2", "iterations=2", *OFF, f"run_dir={off}"))
    train(make_cfg(*SMALL, "num_agents=2", "iterations=2", *OBSERVE_ALL, f"run_dir={on}"))
    assert read_metrics(on / "metrics.csv") == read_metrics(off / "metrics.csv")  # minus the wall-clock columns
    first, second = _weights(off), _weights(on)
    for key in ("new_policy", "ref_policy", "adam"):
        assert all(torch.equal(first[key][name], second[key][name]) for name in first[key])
    for key in ("generators", "env_states"):
        assert all(torch.equal(a, b) for a, b in zip(first[key], second[key]))
    events = EventAccumulator(str(on / "tb" / "agent_1"), size_guidance={"images": 0, "histograms": 0})
    events.Reload()
    tags = events.Tags()
    by_kind = {
        kind: {tag for tag, k, _ in EXTRA_TAGS.values() if k == kind} for kind in ("scalar", "image", "histogram")
    }
    assert by_kind["image"] == set(tags["images"]) and by_kind["histogram"] == set(tags["histograms"])
    assert by_kind["scalar"] <= set(tags["scalars"])
    assert [e.step for e in events.Images("snn/spike_raster")] == [100, 200]  # every episode
    assert [e.step for e in events.Scalars("probe/cka_ref_new")] == [200]  # every second one
    assert events.Scalars("probe/cka_ref_new")[0].value == 1.0  # only W_out learns: the hidden states agree
    image = events.Images("snn/membrane_traces")[0]
    assert image.encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n" and len(image.encoded_image_string) < 100_000
    (w_out,) = [h for h in events.Histograms("weights/w_out") if h.step == 200]
    assert w_out.histogram_value.num == 3 * 40
    off_events = EventAccumulator(str(off / "tb" / "agent_1"))
    off_events.Reload()
    assert not off_events.Tags()["images"] and not set(off_events.Tags()["scalars"]) & by_kind["scalar"]


def test_training_evaluation_is_the_evaluation_of_the_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    train(
        make_cfg(
            *SMALL,
            "num_agents=2",
            "iterations=2",
            "workers=2",
            *OFF,
            "eval_every=2",
            "eval_episodes=3",
            f"run_dir={run_dir}",
        )
    )
    for agent in (0, 1):
        events = EventAccumulator(str(run_dir / "tb" / f"agent_{agent}"))
        events.Reload()
        (mean,), (iqm,) = events.Scalars("eval/return_mean"), events.Scalars("eval/return_iqm")
        result = evaluate(load_agent(run_dir, agent), episodes=3, progress=False)
        assert mean.step == 200 and math.isclose(mean.value, result["mean"], rel_tol=1e-6)
        assert math.isclose(iqm.value, result["iqm"], rel_tol=1e-6)


def test_every_tag_is_in_the_readme_table_once():
    table = re.findall(r"^\| `([^`]+)` \|", (ROOT / "README.md").read_text(), flags=re.MULTILINE)
    tags = [tag for tag, _ in TAGS.values()] + [tag for tag, _, _ in EXTRA_TAGS.values()]
    assert len(set(tags)) == len(tags)
    assert set(tags) <= set(table) and len(set(table)) == len(table)


def test_a_negative_period_is_refused():
    from lfcs.config import validate
    from lfcs.errors import ConfigError

    for key in ("eval_every", "log_images_every", "probe_every"):
        with pytest.raises(ConfigError, match=key):
            validate(make_cfg(f"{key}=-1"))
    with pytest.raises(ConfigError, match="eval_episodes"):
        validate(make_cfg("eval_episodes=0"))


def test_the_default_image_period_keeps_the_measured_cost_within_budget():
    import json

    measured = json.loads((ROOT / "results" / "observe_cost.json").read_text())
    smallest = measured["smallest_period_within_budget"]
    cfg = make_cfg()
    assert smallest["images"] is not None and cfg.log_images_every >= smallest["images"]
    assert cfg.probe_every == 0 and cfg.eval_every == 0  # off by default: they cost nothing unless asked for


def test_a_resume_may_switch_observation_on(tmp_path):
    run_dir = tmp_path / "run"
    train(make_cfg(*SMALL, "iterations=1", *OFF, f"run_dir={run_dir}"))
    train(make_cfg(*SMALL, "iterations=2", *OFF, "log_images_every=2", f"run_dir={run_dir}", f"resume={run_dir}"))
    events = EventAccumulator(str(run_dir / "tb" / "agent_0"), size_guidance={"images": 0})
    events.Reload()
    assert [e.step for e in events.Images("snn/action_probs")] == [200]
