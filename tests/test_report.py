"""scripts/report.py and lfcs/analysis/stats.py: every statistic against an independent computation on small cases."""

from __future__ import annotations

import csv
import itertools
import json
import math
import os

import numpy as np
import pytest

from lfcs.analysis import stats
from lfcs.analysis.report import common_budget, episodes_to_threshold
from lfcs.analysis.results import Condition
from tests.conftest import load_script, run_script

REPS = 10_000


def iqm_by_hand(values) -> float:
    """Sort, drop the lowest and highest floor(n / 4), average the rest."""
    ordered = sorted(values)
    cut = len(ordered) // 4
    middle = ordered[cut : len(ordered) - cut]
    return sum(middle) / len(middle)


def pi_by_counting(x, y) -> float:
    """P(X > Y): count every pair, a tie as one half."""
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(x, y))
    return wins / (len(x) * len(y))


def test_the_statistics_are_a_leaf_module():
    from tests.test_imports import loaded_after

    assert loaded_after("import lfcs.analysis.stats", ("torch", "lfcs.running.agents", "lfcs.analysis.results")) == []


def test_iqm_is_the_mean_of_the_middle_half():
    assert stats.iqm(np.array([5.0, 1.0, 100.0, 2.0, 3.0, 4.0, -50.0, 6.0])) == 3.5  # middle of 8: 2, 3, 4, 5
    rng = np.random.default_rng(7)
    for n in (1, 2, 3, 4, 5, 7, 10, 13):
        values = rng.normal(size=n)
        assert math.isclose(stats.iqm(values), iqm_by_hand(values), rel_tol=1e-12, abs_tol=1e-15), n


def test_probability_of_improvement_counts_pairs_with_ties_as_half():
    assert stats.probability_of_improvement(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0])) == 0.5  # (0+0+.5+.5+1+1)/6
    rng = np.random.default_rng(3)
    for n_x, n_y in ((1, 1), (3, 5), (6, 4), (10, 10)):
        x, y = rng.integers(-2, 3, size=n_x).astype(float), rng.integers(-2, 3, size=n_y).astype(float)  # many ties
        assert math.isclose(stats.probability_of_improvement(x, y), pi_by_counting(x, y))
        assert math.isclose(stats.probability_of_improvement(x, y) + stats.probability_of_improvement(y, x), 1.0)


def test_performance_profile_is_the_fraction_strictly_above():
    scores = np.array([-1.0, 0.0, 0.0, 2.0])
    taus = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    assert stats.performance_profile(scores, taus).tolist() == [1.0, 0.75, 0.25, 0.25, 0.0]


def bootstrap_by_hand(values: np.ndarray, reps: int, seed: int) -> tuple[float, float]:
    """Percentile bootstrap of the IQM: resample with replacement, take the 2.5 and 97.5 percentiles."""
    rng = np.random.default_rng(seed)
    estimates = sorted(iqm_by_hand(values[rng.integers(0, len(values), size=len(values))]) for _ in range(reps))
    return estimates[int(0.025 * reps)], estimates[int(0.975 * reps) - 1]


def test_iqm_ci_agrees_with_a_bootstrap_by_hand_and_is_deterministic():
    values = np.random.default_rng(11).normal(size=20)
    low, high = stats.iqm_ci(values, REPS, seed=0)
    hand_low, hand_high = bootstrap_by_hand(values, REPS, seed=99)  # another stream: agree up to resampling noise
    assert low < stats.iqm(values) < high
    assert abs(low - hand_low) < 0.1 * (high - low) and abs(high - hand_high) < 0.1 * (high - low)
    assert stats.iqm_ci(values, REPS, seed=0) == (low, high)
    assert stats.iqm_ci(values, REPS, seed=1) != (low, high)


def test_intervals_narrow_with_more_seeds_and_hold_the_estimate():
    rng = np.random.default_rng(5)
    widths = []
    for n in (6, 24, 96):
        x, y = rng.normal(0.5, 1.0, size=n), rng.normal(0.0, 1.0, size=n)
        iqm_low, iqm_high = stats.iqm_ci(x, REPS, seed=0)
        pi_low, pi_high = stats.probability_of_improvement_ci(x, y, REPS, seed=0)
        assert iqm_low <= stats.iqm(x) <= iqm_high
        assert 0.0 <= pi_low <= stats.probability_of_improvement(x, y) <= pi_high <= 1.0
        widths.append((iqm_high - iqm_low, pi_high - pi_low))
    for (iqm_wide, pi_wide), (iqm_narrow, pi_narrow) in itertools.pairwise(widths):
        assert iqm_narrow < 0.75 * iqm_wide and pi_narrow < 0.75 * pi_wide  # ~1/2 for 4x the seeds


def test_degenerate_samples():
    assert all(math.isnan(v) for v in stats.iqm_ci(np.array([0.3]), REPS, seed=0))  # one seed: no interval
    assert stats.iqm_ci(np.full(5, -1.5), REPS, seed=0) == (-1.5, -1.5)
    low, high = stats.performance_profile_band(np.array([0.0, 1.0, 2.0]), np.array([-1.0, 0.5, 3.0]), REPS, seed=0)
    assert low.tolist()[::2] == [1.0, 0.0] and high.tolist()[::2] == [1.0, 0.0] and low[1] <= 2 / 3 <= high[1]


def test_budget_final_reward_and_episodes_to_threshold():
    # seed 0 climbs from -1 to 3 and goes on to episode 300; seed 1 stays at -1 and stops at 250.
    cond = Condition(
        "c",
        {
            0: {50: -1.0, 100: 0.0, 150: 1.0, 200: 1.0, 250: 2.0, 300: 3.0},
            1: {e: -1.0 for e in (50, 100, 150, 200, 250)},
        },
    )
    assert common_budget([cond]) == 250
    assert cond.final_per_seed(budget=250) == {0: (-1 + 0 + 1 + 1 + 2) / 5, 1: -1.0}
    assert cond.final_per_seed(budget=300) == {0: (0 + 1 + 1 + 2 + 3) / 5, 1: -1.0}
    assert cond.first_reach_per_seed(0.5, budget=250) == {0: 150, 1: None}
    assert episodes_to_threshold(cond, 0.5, 250) == (None, 1)  # half the seeds never: the median is never
    cond.curves[2] = {50: 0.0}
    assert episodes_to_threshold(cond, -0.5, 250) == (100, 2)  # 50, 100, never: the middle one


# Fake runs: every seed is -2 before its start episode, then a constant c, so that at the default budget (400,
# windows 200-400) its final reward is exactly c, and it first reaches threshold 0 at its start when c >= 0.
EPISODES = 400
SEEDS_A = {0: (50, -1.0), 1: (150, 0.0), 2: (200, 0.5), 3: (50, 1.0)}  # seed: (start, c)
SEEDS_B = {0: (100, 0.0), 1: (50, 0.5), 2: (100, -1.5), 10: (200, 2.0), 11: (150, 0.5)}


def write_run(run_dir, seed: int, eps: float, seeds: dict, episodes: int = EPISODES) -> None:
    """A run of agents seed, seed + 1, ... with one metrics row per agent per window end (all that results reads)."""
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(f"seed: {seed}\nnum_agents: {len(seeds)}\nlearner:\n  eps: {eps}\n")
    with open(run_dir / "metrics.csv", "w") as handle:
        handle.write("agent,episode,episodic_return,reward_mean50\n")
        for episode in range(50, episodes + 1, 50):
            for agent, (start, c) in enumerate(seeds.values()):
                value = c if episode >= start else -2.0
                handle.write(f"{agent},{episode},{value},{value}\n")


@pytest.fixture
def sweep(tmp_path):
    """Condition A (eps 0.1): one run of 4 seeds; condition B (eps 0.2): two runs, seeds 0-2 and 10-11."""
    write_run(tmp_path / "sweep" / "learner.eps=0.1" / "seed=0", 0, 0.1, SEEDS_A)
    write_run(tmp_path / "sweep" / "learner.eps=0.2" / "seed=0", 0, 0.2, {s: SEEDS_B[s] for s in (0, 1, 2)})
    write_run(tmp_path / "sweep" / "learner.eps=0.2" / "seed=10", 10, 0.2, {s: SEEDS_B[s] for s in (10, 11)})
    return tmp_path / "sweep"


def read_report(out) -> dict[str, dict]:
    with open(out / "report.csv") as handle:
        return {row["condition"]: row for row in csv.DictReader(handle)}


def test_report_cli_end_to_end(sweep):
    result = run_script("scripts/report.py", str(sweep))
    assert result.returncode == 0, result.stderr
    rows = read_report(sweep)
    assert list(rows) == ["learner.eps=0.1", "learner.eps=0.2"]  # baseline (the first condition) first
    finals_a = [c for _, c in SEEDS_A.values()]
    finals_b = [c for _, c in SEEDS_B.values()]
    expected = {
        "learner.eps=0.1": (finals_a, 0.5, "175", "3"),  # firsts 50, 150, 200, never: median (150 + 200) / 2
        "learner.eps=0.2": (finals_b, pi_by_counting(finals_b, finals_a), "150", "4"),  # 50, 100, 150, 200, never
    }
    for label, (finals, pi, median, reached) in expected.items():
        row = rows[label]
        assert (row["n_seeds"], row["budget"]) == (str(len(finals)), str(EPISODES))
        assert float(row["iqm"]) == pytest.approx(iqm_by_hand(finals), abs=5e-5)
        assert float(row["mean"]) == pytest.approx(np.mean(finals), abs=5e-5)
        assert float(row["std"]) == pytest.approx(np.std(finals, ddof=1), abs=5e-5)
        assert float(row["prob_improvement"]) == pytest.approx(pi, abs=5e-5)
        assert float(row["iqm_ci_low"]) <= float(row["iqm"]) <= float(row["iqm_ci_high"])
        assert float(row["pi_ci_low"]) <= float(row["prob_improvement"]) <= float(row["pi_ci_high"])
        assert (row["episodes_to_threshold_median"], row["seeds_reached_threshold"]) == (median, reached)
        assert row["config.learner.eps"] == label.removeprefix("learner.eps=")
    assert float(rows["learner.eps=0.2"]["iqm"]) == pytest.approx(1 / 3, abs=5e-5)  # -1.5 | 0, .5, .5 | 2
    made = json.loads((sweep / "report.json").read_text())
    assert made["budget"] == EPISODES and made["baseline"] == "learner.eps=0.1"
    assert made["bootstrap"]["resamples"] == REPS and made["bootstrap"]["seed"] == 0
    assert made["conditions"]["learner.eps=0.2"]["seeds"] == [0, 1, 2, 10, 11]
    assert made["command"].endswith(f"scripts/report.py {sweep}")
    assert (sweep / "profile.png").stat().st_size > 0 and (sweep / "profile.csv").exists()
    assert "learner.eps=0.2" in result.stdout and "baseline: learner.eps=0.1" in result.stdout


def test_same_seed_same_report(sweep, tmp_path):
    report = load_script("report")
    for out in ("one", "two"):
        assert report.main([str(sweep), "--reps", "500", "--bands", "--out", str(tmp_path / out)]) == 0
    for name in ("report.csv", "profile.csv"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_short_condition_baseline_and_budget(sweep, tmp_path, capsys):
    report = load_script("report")
    write_run(tmp_path / "short" / "learner.eps=0.3" / "seed=0", 0, 0.3, {0: (50, 1.0), 1: (50, 2.0)}, episodes=300)
    dirs = [str(sweep), str(tmp_path / "short")]
    out = tmp_path / "out"

    def one_line_error(*args: str) -> str:
        try:
            status = report.main([*dirs, *args, "--out", str(out)])
        except SystemExit as stop:  # argparse's errors leave through sys.exit
            status = stop.code
        assert status == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("report.py: error:") and not out.exists(), lines
        return lines[0]

    short = one_line_error("--budget", "400")
    assert "condition learner.eps=0.3" in short and "seed 0 at 300" in short
    assert "multiple of the 50" in one_line_error("--budget", "275")
    message = one_line_error("--baseline", "eps=0.9")
    assert all(label in message for label in ("learner.eps=0.1", "learner.eps=0.2", "learner.eps=0.3"))
    assert "--reps" in one_line_error("--reps", "0")
    assert "no such directory" in one_line_error(str(tmp_path / "nowhere"))

    dropping = ["--budget", "400", "--drop-short", "--baseline", "learner.eps=0.2"]
    assert report.main([*dirs, *dropping, "--out", str(out)]) == 0
    assert "excluded learner.eps=0.3: 2 of 2 seeds stopped before episode 400" in capsys.readouterr().out
    rows = read_report(out)
    assert list(rows) == ["learner.eps=0.1", "learner.eps=0.2"]
    assert rows["learner.eps=0.2"]["prob_improvement"] == "0.5000"  # the baseline against itself

    assert report.main([*dirs, "--out", str(out)]) == 0  # default budget: 300, which every seed reached
    rows = read_report(out)
    assert list(rows) == ["learner.eps=0.1", "learner.eps=0.2", "learner.eps=0.3"]  # in the order of the DIRs
    assert rows["learner.eps=0.3"]["budget"] == "300"


def test_wall_clock_sums_the_sessions_of_a_resumed_experiment(tmp_path):
    """scripts/wall_clock.py: a session that never reached `end` (stopped) is closed at the last file write under
    OUT_DIR and marked interrupted; the total is the sum of the sessions, not the span from first start to end."""
    wall_clock = load_script("wall_clock")
    out = tmp_path / "exp"
    wall_clock.start(out, "0-9", ["scripts/experiments.sh", "x"], now=1000.0)
    written = out / "cond" / "metrics.csv"
    written.parent.mkdir(parents=True)
    written.write_text("a\n")
    os.utime(written, (1600.0, 1600.0))  # the stopped session's last write
    wall_clock.start(out, "0-9", ["scripts/experiments.sh", "x"], now=5000.0)  # continued much later
    record = wall_clock.end(out, now=5300.0)
    first, second = record["segments"]
    assert (first["start"], first["end"], first["interrupted"]) == (1000.0, 1600.0, True)
    assert (second["start"], second["end"]) == (5000.0, 5300.0) and "interrupted" not in second
    assert record["wall_clock_s"] == 900.0 and record["sessions"] == 2
    assert json.loads((out / "wall_clock.json").read_text()) == record
    with pytest.raises(SystemExit, match="no session open"):
        wall_clock.end(out)  # a second end
    wall_clock.start(out, "0-9", ["scripts/experiments.sh", "x"], now=9000.0)  # stopped before writing anything,
    wall_clock.start(out, "0-9", ["scripts/experiments.sh", "x"], now=9500.0)  # so it counts 0 s, not a gap
    assert record["wall_clock_s"] == 900.0 and wall_clock.end(out, now=9600.0)["wall_clock_s"] == 1000.0


def test_wall_clock_keeps_a_record_of_the_earlier_form(tmp_path):
    wall_clock = load_script("wall_clock")
    earlier = {"command": "scripts/experiments.sh x", "wall_clock_s": 120.0, "git_commit": "abc", "seeds": "0-9"}
    (tmp_path / "wall_clock.json").write_text(json.dumps(earlier))
    wall_clock.start(tmp_path, "0-9", ["scripts/experiments.sh", "x"], now=1000.0)
    record = wall_clock.end(tmp_path, now=1030.0)
    assert record["segments"][0] == {"command": "scripts/experiments.sh x", "git_commit": "abc", "seeds": "0-9",
                                     "seconds": 120.0}  # fmt: skip
    assert record["wall_clock_s"] == 150.0 and record["sessions"] == 2
