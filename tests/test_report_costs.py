"""report.py's costs and speeds of learning: env steps to threshold, process-seconds per million env steps (every
segment of a resumed run), and P(sooner), the probability of improvement on episodes to threshold."""

from __future__ import annotations

import math

import pytest

from lfcs.analysis.report import env_steps_to_threshold, wall_s_per_million_steps
from lfcs.analysis.results import Condition


def test_env_steps_to_threshold_and_wall_clock_per_million_steps_by_hand(tmp_path):
    """Seeds reach the threshold at window ends 100, 50 and never; their env steps there are 900 and 300: the median
    over three seeds with one 'never' is the middle value, 900. Wall-clock: 2 runs of 30 s and 10 s over
    4,000 + 2,000 + 6,000 env steps -> 40 / 12,000 * 1e6 s per million steps (process-seconds, from metrics.csv)."""
    cond = Condition("c")
    cond.curves = {0: {50: -1.0, 100: 0.5}, 1: {50: 0.2, 100: 0.1}, 2: {50: -2.0, 100: -1.0}}
    cond.steps = {0: {50: 450, 100: 900, 150: 4000}, 1: {50: 300, 100: 2000}, 2: {50: 3000, 100: 6000}}
    cond.runs, cond.process_seconds = [tmp_path / "a", tmp_path / "b"], [30.0, 10.0]
    assert env_steps_to_threshold(cond, 0.0, 100) == 900
    assert env_steps_to_threshold(cond, 0.3, 100) is None  # only one of three got there
    assert wall_s_per_million_steps(cond) == pytest.approx(40 / 12_000 * 1e6)
    cond.process_seconds = [30.0, math.nan]  # a run without sps_total: no rate rather than a wrong one
    assert math.isnan(wall_s_per_million_steps(cond))


def test_process_seconds_add_every_segment_of_a_resumed_run(tmp_path):
    """Two agents in one process: an episode's wall-clock is its process's env steps over sps_total, shared out by
    the agents' steps; a resumed segment's rows (the summary.json of the last invocation knows only them) count too;
    a row without new steps (a peer's two envs ending in one step) adds nothing."""
    from lfcs.analysis.results import process_seconds

    metrics = tmp_path / "metrics.csv"
    rows = [(0, 10, 20.0), (1, 30, 20.0),  # episode 1: 40 steps at 20 per s = 2 s
            (0, 20, 5.0), (1, 40, 5.0),  # episode 2 (after a resume): 20 steps at 5 per s = 4 s
            (1, 40, 0.0)]  # fmt: skip
    metrics.write_text("agent,env_steps,sps_total\n" + "".join(f"{a},{s},{r}\n" for a, s, r in rows))
    assert process_seconds(metrics) == pytest.approx(6.0)
    metrics.write_text("agent,env_steps,sps_total\n0,10,\n")  # an older file without the rate
    assert math.isnan(process_seconds(metrics))


def test_probability_of_reaching_the_threshold_sooner_by_hand():
    """prob_fewer_episodes: pairs of seeds, earlier window end wins, same window end or both never 1/2, never loses."""
    from lfcs.analysis.report import first_reach, report_rows

    def cond(label: str, firsts: list[int | None]) -> Condition:  # each seed jumps from 0 to 1 at its window end
        curves = {s: {e: float(f is not None and e >= f) for e in range(50, 301, 50)} for s, f in enumerate(firsts)}
        return Condition(label, curves)

    base, new = cond("base", [100, 250, None]), cond("new", [50, 250, None])
    assert first_reach(new, 0.5, 300).tolist() == [50, 250, math.inf]
    # new's 50 beats 100, 250, never (3); its 250 beats 100? no (0), ties 250 (1/2), beats never (1); its never
    # loses to 100 and 250 and ties never (1/2): (3 + 1.5 + 0.5) / 9
    rows = {r["condition"]: r for r in report_rows([base, new], base, 300, 0.5, reps=200, seed=0)}
    assert rows["new"]["prob_fewer_episodes"] == pytest.approx(5 / 9)
    assert rows["base"]["prob_fewer_episodes"] == 0.5
    assert rows["new"]["pfe_ci_low"] <= 5 / 9 <= rows["new"]["pfe_ci_high"]
