"""Input encodings (lfcs/network/encoding.py): each formula against a hand computation, one-hot inputs, the
normaliser's statistics (fixed within an episode, frozen in evaluation, exact on resume), agents independent."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from lfcs import checkpoint, train
from lfcs.export.evaluate import evaluate, heldout_returns
from lfcs.export.saved_agent import load_agent
from lfcs.learning.acting import play_episode
from lfcs.network.encoding import VARIANCE_EPS, ObservationEncoder, flat_size
from lfcs.running.agents import AgentGroup
from tests.conftest import SMALL, make_cfg, read_metrics

BOX2 = spaces.Box(-np.inf, np.inf, (2,), dtype=np.float32)
MASKED = ["env=masked_cartpole", *SMALL, "log_images_every=0"]


def test_one_hot_of_discrete_and_multidiscrete_observations():
    assert flat_size(spaces.Discrete(4)) == 4 and flat_size(spaces.MultiDiscrete([2, 3])) == 5
    discrete = ObservationEncoder(spaces.Discrete(3, start=1), 1)
    assert discrete.encode(0, 2).tolist() == [0.0, 1.0, 0.0] and not discrete.identity
    multi = ObservationEncoder(spaces.MultiDiscrete([2, 3]), 1)
    assert multi.encode(0, np.array([1, 0])).tolist() == [0.0, 1.0, 1.0, 0.0, 0.0]
    assert multi.encode(0, np.array([0, 2])).tolist() == [1.0, 0.0, 0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="1-D Box"):
        flat_size(spaces.Box(0, 1, (2, 2)))


def test_none_is_the_observation_itself():
    encoder = ObservationEncoder(BOX2, 1)
    assert encoder.identity and encoder.out_size == 2
    assert encoder.encode(0, np.array([0.5, -2.0], dtype=np.float32)).tolist() == [0.5, -2.0]


def test_normalize_uses_the_mean_and_variance_of_earlier_episodes_times_the_gain():
    encoder = ObservationEncoder(BOX2, 2, encoding="normalize", gain=3.0)
    x = np.array([4.0, 8.0])
    assert encoder.encode(0, x).tolist() == pytest.approx(
        (3.0 * x / math.sqrt(1 + VARIANCE_EPS)).tolist()
    )  # mu 0, var 1
    encoder.update(0, np.array([[1.0, 2.0], [3.0, 6.0]]))  # episode 1
    encoder.update(0, np.array([[5.0, 10.0]]))  # episode 2
    # by hand: dimension 0 saw 1, 3, 5 (mean 3, variance 8/3); dimension 1 saw 2, 6, 10 (mean 6, variance 32/3)
    expected = [
        3.0 * (4.0 - 3.0) / math.sqrt(8 / 3 + VARIANCE_EPS),
        3.0 * (8.0 - 6.0) / math.sqrt(32 / 3 + VARIANCE_EPS),
    ]
    assert encoder.encode(0, x) == pytest.approx(expected, rel=1e-12)
    assert encoder.count.tolist() == [3, 0] and encoder.mean[1].tolist() == [0.0, 0.0]  # agent 1 untouched
    # the episode-wise merge is the variance of everything seen
    rng = np.random.default_rng(0)
    batches = [rng.normal(2.0, 3.0, size=(n, 2)) for n in (1, 7, 30)]
    merged = ObservationEncoder(BOX2, 1, encoding="normalize")
    for batch in batches:
        merged.update(0, batch)
    everything = np.concatenate(batches)
    np.testing.assert_allclose(merged.mean[0], everything.mean(0), rtol=1e-13)
    np.testing.assert_allclose(merged.variance(0), everything.var(0), rtol=1e-12)


def test_population_is_a_bank_of_gaussian_receptive_fields():
    encoder = ObservationEncoder(BOX2, 1, encoding="population", gain=2.0, population_size=5, population_range=(-1, 1))
    assert encoder.out_size == 10 and encoder.centres.tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0] and encoder.width == 0.5
    x = np.array([0.25, -3.0])
    by_hand = [2.0 * math.exp(-((v - c) ** 2) / (2 * 0.5**2)) for v in x for c in (-1.0, -0.5, 0.0, 0.5, 1.0)]
    assert encoder.encode(0, x) == pytest.approx(by_hand, rel=1e-14)  # dimension-major
    narrow = ObservationEncoder(BOX2, 1, encoding="population", population_size=3, population_width=0.1)
    assert narrow.centres.tolist() == [-2.0, 0.0, 2.0] and narrow.encode(0, np.zeros(2)) == pytest.approx(
        [0, 1, 0] * 2, abs=1e-80
    )


def test_normalize_population_reads_the_normalised_value():
    encoder = ObservationEncoder(BOX2, 1, encoding="normalize_population", population_size=3, population_range=(-1, 1))
    encoder.update(0, np.array([[0.0, 10.0], [2.0, 30.0]]))  # mean [1, 20], std [1, 10]
    z = (np.array([1.5, 10.0]) - [1.0, 20.0]) / np.sqrt(np.array([1.0, 100.0]) + VARIANCE_EPS)
    by_hand = [math.exp(-((v - c) ** 2) / 2.0) for v in z for c in (-1.0, 0.0, 1.0)]
    assert encoder.encode(0, np.array([1.5, 10.0])) == pytest.approx(by_hand, rel=1e-12)


def test_the_statistics_stay_fixed_within_an_episode_and_grow_at_its_end():
    """x_t depends on o_t alone: with the 'previous' control the copy of step t-1's positions, mapped back with the
    statistics of before the episode, equals step t-1's own positions."""
    cfg = make_cfg(*MASKED, "env=masked_cartpole_previous", "env.encoding=normalize", "env.encoding_gain=2")
    group = AgentGroup(cfg, [0])
    for _ in range(2):
        before = (group.encoder.mean[0].copy(), group.encoder.variance(0).copy(), int(group.encoder.count[0]))
        buffer, stats = play_episode(group.envs, group.ref_policy, group.generators, group.horizon, 0.99, [0],
                                     group.backend, encoder=group.encoder, learn_encoder=True)  # fmt: skip
        length = int(stats["episode_length"][0])
        u = buffer.obs[:length, 0].numpy() * np.sqrt(before[1] + VARIANCE_EPS) / 2.0 + before[0]  # (L, 4)
        np.testing.assert_allclose(u[1:, 2:], u[:-1, :2], rtol=0, atol=1e-9)
        assert group.encoder.count[0] == before[2] + length


def test_the_network_input_size_follows_the_encoder():
    group = AgentGroup(make_cfg(*MASKED, "env.encoding=population", "env.population_size=7"), [0])
    assert group.new_policy.w_in.shape == (1, 40, 14)


def _run(tmp_path, name, *overrides):
    run_dir = tmp_path / name
    train(make_cfg(*MASKED, "env.encoding=normalize", "env.encoding_gain=2", f"run_dir={run_dir}", *overrides))
    return run_dir


def _state(run_dir, name="agents_0-1.pt"):
    return checkpoint.load(run_dir / "checkpoints" / name)


def test_resume_with_the_normaliser_equals_the_uninterrupted_run_bit_for_bit(tmp_path):
    whole = _run(tmp_path, "whole", "num_agents=2", "iterations=4")
    _run(tmp_path, "split", "num_agents=2", "iterations=2")
    split = _run(tmp_path, "split", "num_agents=2", "iterations=4", "resume=true")
    assert read_metrics(whole / "metrics.csv") == read_metrics(split / "metrics.csv")
    first, second = _state(whole), _state(split)
    assert first["encoder"]["count"].sum() > 0
    for key in ("count", "mean", "m2"):
        assert torch.equal(first["encoder"][key], second["encoder"][key])
    assert torch.equal(first["new_policy"]["w_out"], second["new_policy"]["w_out"])


def test_an_agent_with_the_normaliser_is_the_same_alone_and_in_a_group(tmp_path):
    group = _run(tmp_path, "group", "num_agents=2", "iterations=3")
    alone = _run(tmp_path, "alone", "seed=1", "iterations=3")
    rows = [r for r in read_metrics(group / "metrics.csv") if r["agent"] == "1"]
    assert [{**r, "agent": "0"} for r in rows] == read_metrics(alone / "metrics.csv")
    assert torch.equal(_state(group)["encoder"]["mean"][1], _state(alone, "agents_0-0.pt")["encoder"]["mean"][0])


def test_the_normaliser_is_frozen_in_evaluation(tmp_path):
    # training with evaluations every episode trains exactly as without them
    quiet = _run(tmp_path, "quiet", "iterations=3")
    evaluated = _run(tmp_path, "evaluated", "iterations=3", "eval_every=1", "eval_episodes=2")
    assert read_metrics(quiet / "metrics.csv") == read_metrics(evaluated / "metrics.csv")
    saved_state = _state(quiet, "agents_0-0.pt")["encoder"]
    # the saved agent plays with the checkpoint's statistics and leaves them as they are
    saved = load_agent(quiet)
    space = spaces.Box(-np.inf, np.inf, (2,), dtype=np.float32)
    encoder = saved.encoder(space)
    assert encoder.count.tolist() == saved_state["count"].tolist() and encoder.count[0] > 0
    np.testing.assert_array_equal(encoder.mean, saved_state["mean"].numpy())
    first = evaluate(saved, episodes=2, progress=False)
    assert evaluate(saved, episodes=2, progress=False) == first
    group = AgentGroup(make_cfg(*MASKED, "env.encoding=normalize", "env.encoding_gain=2"), [0])
    group.encoder.load_state_dict(saved_state)
    mean = group.encoder.mean.copy()
    returns = heldout_returns(
        saved.ref_policy, group.backend, group.envs, group.horizon, 0.99, 2, encoder=group.encoder
    )
    np.testing.assert_array_equal(group.encoder.mean, mean)
    assert returns[:, 0].tolist() == first["returns"]  # evaluate = the held-out episodes with the saved statistics
    fresh = ObservationEncoder(space, 1, encoding="normalize", gain=2.0)
    generator = torch.Generator().manual_seed(10_000)
    buffer, _ = play_episode(group.envs, saved.ref_policy, [generator], group.horizon, 0.99, [1_000_000],
                             group.backend, encoder=fresh)  # fmt: skip
    saved_first = encoder.encode(0, group.envs[0].reset(seed=1_000_000)[0])
    assert not np.allclose(buffer.obs[0, 0].numpy(), saved_first)  # the statistics do change the input


def test_encoding_none_plays_the_raw_observations():
    cfg = make_cfg(*MASKED)
    group = AgentGroup(cfg, [0])
    assert group.encoder.identity
    plain, _ = play_episode(group.envs, group.ref_policy, [torch.Generator().manual_seed(3)], group.horizon, 0.99,
                            [5], group.backend)  # fmt: skip
    encoded, _ = play_episode(group.envs, group.ref_policy, [torch.Generator().manual_seed(3)], group.horizon, 0.99,
                              [5], group.backend, encoder=group.encoder, learn_encoder=True)  # fmt: skip
    assert torch.equal(plain.obs, encoded.obs) and torch.equal(plain.actions, encoded.actions)
