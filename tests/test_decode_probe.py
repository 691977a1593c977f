"""The decoding probe: cross-validated ridge R^2 (lfcs/analysis/probes.py), its TensorBoard curves during training,
and scripts/decode_probe.py on a saved agent."""

from __future__ import annotations

import csv
import json

import numpy as np
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lfcs import checkpoint, train
from lfcs.analysis.probes import MIN_DECODE_SAMPLES, decoding_r2
from lfcs.learning.acting import play_episode
from lfcs.running.agents import AgentGroup
from tests.conftest import SMALL, make_cfg, read_metrics, run_script

MASKED = ["experiment=masked_cartpole_rec", *SMALL, "log_images_every=0"]


def test_r2_is_near_one_for_a_linear_function_and_near_zero_for_noise():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 40)) * np.linspace(0.5, 2.0, 40)  # one source: features in the same units
    linear = features @ rng.normal(size=40)
    one_feature = features[:, 0]
    noise = rng.normal(size=300)
    r2 = decoding_r2(features, np.stack([linear, one_feature, noise], axis=1))
    assert r2[0] > 0.999 and r2[1] > 0.99
    assert abs(r2[2]) < 0.1
    # more features than samples (500 neurons over a 200-step episode), a few latent variables spread over them
    latent = rng.normal(size=(200, 3))
    wide = latent @ rng.normal(size=(3, 500)) + 0.5 * rng.normal(size=(200, 500))
    r2 = decoding_r2(wide, np.stack([latent[:, 0], rng.normal(size=200)], axis=1))
    assert r2[0] > 0.9 and abs(r2[1]) < 0.1


def test_r2_is_nan_without_enough_samples_or_variance():
    rng = np.random.default_rng(1)
    few = rng.normal(size=(MIN_DECODE_SAMPLES - 1, 3))
    assert np.isnan(decoding_r2(few, few[:, :1])).all()
    many = rng.normal(size=(100, 3))
    assert np.isnan(decoding_r2(many, np.ones((100, 1))))[0]


def test_decoding_curves_in_tensorboard_and_probing_changes_no_training(tmp_path):
    on, off = tmp_path / "on", tmp_path / "off"
    common = [*MASKED, "env.encoding=normalize", "iterations=2", "env.max_episode_steps=60"]
    train(make_cfg(*common, "probe_every=1", f"run_dir={on}"))
    train(make_cfg(*common, "probe_every=0", f"run_dir={off}"))
    assert read_metrics(on / "metrics.csv") == read_metrics(off / "metrics.csv")
    first, second = (checkpoint.load(d / "checkpoints" / "agents_0-0.pt") for d in (on, off))
    assert all(torch.equal(first["new_policy"][k], second["new_policy"][k]) for k in first["new_policy"])
    assert all(torch.equal(a, b) for a, b in zip(first["env_states"], second["env_states"]))
    events = EventAccumulator(str(on / "tb" / "agent_0"))
    events.Reload()
    for variable in ("x_dot", "theta_dot"):
        for source in ("r", "v", "input"):
            assert len(events.Scalars(f"probe/decode_{variable}_{source}")) == 2


def test_hidden_variables_are_recorded_at_the_step_of_their_observation():
    """CartPole moves by Euler steps: with the 'difference' control, input t+1 holds x_dot_t and theta_dot_t (over
    obs_scale 0.5), the hidden variables recorded with input t."""
    group = AgentGroup(make_cfg(*MASKED, "env=masked_cartpole_difference", "num_agents=2"), [0, 1])
    buffer, stats = play_episode(group.envs, group.ref_policy, group.generators, group.horizon, 0.99, [0, 1],
                                 group.backend, encoder=group.encoder, record_hidden=True)  # fmt: skip
    hidden = np.stack([stats["hidden"]["x_dot"], stats["hidden"]["theta_dot"]], axis=-1)  # (T, B, 2)
    for b, length in enumerate(buffer.lengths.tolist()):
        np.testing.assert_allclose(buffer.obs[1:length, b, 2:].numpy() * 0.5, hidden[: length - 1, b], atol=1e-5)
        assert (hidden[length:, b] == 0).all()
    _, plain = play_episode(group.envs, group.ref_policy, group.generators, group.horizon, 0.99, [0, 1],
                            group.backend, encoder=group.encoder)  # fmt: skip
    assert "hidden" not in plain


def test_decode_probe_script_reads_the_velocities_from_the_difference_control(tmp_path):
    """With the 'difference' control the input carries the previous step's velocities: the input alone decodes
    the current ones well (R^2 about 0.85: CartPole's velocities change by up to a few tenths per step)."""
    run_dir = tmp_path / "run"
    train(make_cfg(*MASKED, "env=masked_cartpole_difference", "iterations=1", "num_agents=2", f"run_dir={run_dir}"))
    out = tmp_path / "probe.json"
    result = run_script("scripts/decode_probe.py", str(run_dir), "--episodes", "8", "--out", str(out))
    assert result.returncode == 0, result.stderr
    record = json.loads(out.read_text())
    assert sorted(record["agents"]) == ["0", "1"] and "scripts/decode_probe.py" in record["command"]
    for row in record["agents"].values():
        assert row["steps"] >= MIN_DECODE_SAMPLES
        assert row["r2"]["x_dot"]["input"] > 0.75 and row["r2"]["theta_dot"]["input"] > 0.75
        assert set(row["r2"]["x_dot"]) == {"r", "v", "input"}
    assert "agent 1" in result.stdout
    missing = run_script("scripts/decode_probe.py", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "decode_probe.py: error:" in missing.stderr


def test_decode_table_gives_mean_and_median_over_agents_and_the_gain_over_the_input(tmp_path):
    """Three agents, one of them far below 0 (short unusual episodes do that): the median is the middle agent's."""
    run_dir = tmp_path / "runs" / "cond"
    run_dir.mkdir(parents=True)
    r2 = {"0": (0.5, 0.1), "1": (0.2, 0.0), "2": (-2.0, -3.0)}  # agent: (R^2 from r, R^2 from the input)
    agents = {a: {"r2": {"x_dot": {"r": r, "v": r, "input": i}}} for a, (r, i) in r2.items()}
    (run_dir / "decode_probe.json").write_text(json.dumps({"agents": agents, "episodes": 4, "policy": "sample"}))
    rows = ["agent,episode,firing_rate"] + [f"{a},{e},{0.01 * e}" for e in range(1, 101) for a in range(3)]
    (run_dir / "metrics.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "table.csv"
    result = run_script("scripts/decode_table.py", str(run_dir), "--out", str(out))
    assert result.returncode == 0, result.stderr
    with open(out) as handle:
        table = {row["source"]: row for row in csv.DictReader(handle)}
    assert np.isclose(float(table["r"]["r2_mean"]), -1.3 / 3) and float(table["r"]["r2_median"]) == 0.2
    assert np.isclose(float(table["r"]["gain_over_input_mean"]), (0.4 + 0.2 + 1.0) / 3)
    assert (
        np.isclose(float(table["r"]["gain_over_input_median"]), 0.4) and table["input"]["gain_over_input_median"] == ""
    )
    assert np.isclose(float(table["r"]["firing_rate_first50"]), 0.255) and table["r"]["run"] == "cond"
