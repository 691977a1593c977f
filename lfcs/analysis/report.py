"""The table behind scripts/report.py: each condition's final reward over seeds at one episode budget.

Per condition (runs grouped as in lfcs/analysis/results.py), at budget E (a multiple of the 50-episode window):
- final reward of a seed: ``Condition.final_per_seed(budget=E)``, the mean reward_mean50 of its last FINAL_WINDOWS
  (5) windows ending at or before E;
- iqm, iqm_ci_low/high: the interquartile mean of those finals and its 95 % bootstrap CI (lfcs/analysis/stats.py);
- mean, std (ddof 1) of the finals;
- prob_improvement, pi_ci_low/high: P(final of this condition > final of the baseline), ties 1/2, and its CI;
- episodes_to_threshold_median: the median over seeds of the first window end <= E where reward_mean50 >=
  threshold, a seed that never got there counting as never (empty when half or more never did);
  seeds_reached_threshold: how many got there; env_steps_to_threshold_median: the same median in env steps (the
  env steps each seed had played at that window end);
- prob_fewer_episodes, pfe_ci_low/high: P(this condition's seed reaches the threshold at an earlier window end than
  the baseline's), over all pairs of seeds, ties (both at the same window end, or both never) 1/2, a seed that never
  got there within E counting as later than any that did, and its 95 % CI (seeds resampled as for
  prob_improvement): how much sooner a condition learns, not how high it ends;
- wall_s_per_million_steps: the seconds the runs' processes spent in their episodes (metrics.csv, every resumed
  segment counted; ``results.process_seconds``) per million env steps they played, on their machine;
- ``config.<key>``: the configuration values on which the reported conditions differ, as text.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import numpy as np

from lfcs.analysis import stats
from lfcs.analysis.results import WINDOW, Condition, config_differences
from lfcs.errors import ResultsError

PROFILE_POINTS = 201  # taus of the performance profile, evenly spaced over the finals' range
PROFILE_MARGIN = 0.05  # fraction of that range added at each end, so every profile starts at 1 and ends at 0


def in_dir_order(conds: list[Condition], dirs: list[Path]) -> list[Condition]:
    """Conditions in the order of the directories given (the first directory holding one of their runs)."""

    def first_dir(cond: Condition) -> int:
        return min(i for run in cond.runs for i, d in enumerate(dirs) if run == d or d in run.parents)

    return sorted(conds, key=first_dir)  # stable: within a directory, the order of load_conditions (by path)


def common_budget(conds: list[Condition]) -> int:
    """The largest episode that every seed of every condition reached (a window end)."""
    return min(last for cond in conds for last in cond.last_episode_per_seed().values())


def reaching(conds: list[Condition], budget: int, drop_short: bool) -> tuple[list[Condition], dict[str, str]]:
    """The conditions whose every seed reached ``budget``, and {label: why} for the others (an error unless
    ``drop_short``)."""
    if budget < WINDOW or budget % WINDOW:
        raise ResultsError(f"--budget {budget} is not a positive multiple of the {WINDOW}-episode window")
    kept, excluded = [], {}
    for cond in conds:
        short = {seed: last for seed, last in sorted(cond.last_episode_per_seed().items()) if last < budget}
        if not short:
            kept.append(cond)
            continue
        stops = ", ".join(f"seed {seed} at {last}" for seed, last in short.items())
        why = f"{len(short)} of {len(cond.curves)} seeds stopped before episode {budget} ({stops})"
        if not drop_short:
            raise ResultsError(f"condition {cond.label}: {why}; pass a smaller --budget or --drop-short")
        excluded[cond.label] = why
    if not kept:
        raise ResultsError(f"no condition has every seed at episode {budget}; pass a smaller --budget")
    return kept, excluded


def pick_baseline(conds: list[Condition], label: str | None, excluded: dict[str, str]) -> Condition:
    if label is None:
        return conds[0]
    for cond in conds:
        if cond.label == label:
            return cond
    if label in excluded:
        raise ResultsError(f"baseline {label} is excluded: {excluded[label]}")
    raise ResultsError(f"no condition labelled {label!r}; the labels are: {', '.join(c.label for c in conds)}")


def finals(cond: Condition, budget: int) -> np.ndarray:
    """The seeds' final rewards at ``budget``, in seed order."""
    per_seed = cond.final_per_seed(budget=budget)
    return np.array([per_seed[seed] for seed in sorted(per_seed)], dtype=np.float64)


def episodes_to_threshold(cond: Condition, threshold: float, budget: int) -> tuple[int | None, int]:
    """Median over seeds of the first window end reaching ``threshold`` (None if half or more never did) and how
    many seeds reached it. The median of window ends (multiples of 50) is a whole episode."""
    firsts = [math.inf if e is None else e for e in cond.first_reach_per_seed(threshold, budget).values()]
    median = statistics.median(firsts)
    return (None if math.isinf(median) else int(median)), sum(not math.isinf(e) for e in firsts)


def first_reach(cond: Condition, threshold: float, budget: int) -> np.ndarray:
    """Each seed's first window end <= ``budget`` with reward_mean50 >= ``threshold`` (inf: never), in seed order."""
    firsts = cond.first_reach_per_seed(threshold, budget)
    return np.array([math.inf if firsts[s] is None else firsts[s] for s in sorted(firsts)], dtype=np.float64)


def env_steps_to_threshold(cond: Condition, threshold: float, budget: int) -> int | None:
    """Median over seeds of the env steps played by the first window end reaching ``threshold`` (a seed that never
    got there counts as never: None if half or more never did)."""
    firsts = cond.first_reach_per_seed(threshold, budget)
    steps = [math.inf if e is None else cond.steps.get(seed, {}).get(e, math.nan) for seed, e in firsts.items()]
    median = statistics.median(steps) if steps else math.nan
    return None if math.isinf(median) or math.isnan(median) else int(median)


def wall_s_per_million_steps(cond: Condition) -> float:
    """Process-seconds of the condition's runs (``results.process_seconds``: every segment of a resumed run) per
    million env steps that they played: the cost of the learner on this machine, whatever the number of agents per
    process."""
    steps = sum(cond.env_steps_per_seed().values())
    seconds = [s for s in cond.process_seconds if not math.isnan(s)]
    if not steps or len(seconds) != len(cond.runs):
        return math.nan
    return sum(seconds) / steps * 1e6


def as_text(value: object) -> str:
    """A configuration value as written in config.yaml's JSON subset (never rounded like the statistics)."""
    return value if isinstance(value, str) else json.dumps(value)


def report_rows(
    conds: list[Condition], baseline: Condition, budget: int, threshold: float, reps: int, seed: int
) -> list[dict]:
    """One row per condition (columns as in the module docstring), in the order given."""
    base, base_reach = finals(baseline, budget), first_reach(baseline, threshold, budget)
    differences = config_differences(conds)
    rows = []
    for cond in conds:
        scores = finals(cond, budget)
        iqm_low, iqm_high = stats.iqm_ci(scores, reps, seed)
        pi_low, pi_high = stats.probability_of_improvement_ci(scores, base, reps, seed)
        median, reached = episodes_to_threshold(cond, threshold, budget)
        sooner = -first_reach(cond, threshold, budget)  # fewer episodes is better: P(-x > -y), never = -inf
        pfe_low, pfe_high = stats.probability_of_improvement_ci(sooner, -base_reach, reps, seed)
        rows.append(
            {
                "condition": cond.label,
                "n_seeds": len(scores),
                "budget": budget,
                "iqm": float(stats.iqm(scores)),
                "iqm_ci_low": iqm_low,
                "iqm_ci_high": iqm_high,
                "mean": float(scores.mean()),
                "std": float(scores.std(ddof=1)) if len(scores) > 1 else math.nan,
                "prob_improvement": float(stats.probability_of_improvement(scores, base)),
                "pi_ci_low": pi_low,
                "pi_ci_high": pi_high,
                "episodes_to_threshold_median": median,
                "seeds_reached_threshold": reached,
                "env_steps_to_threshold_median": env_steps_to_threshold(cond, threshold, budget),
                "prob_fewer_episodes": float(stats.probability_of_improvement(sooner, -base_reach)),
                "pfe_ci_low": pfe_low,
                "pfe_ci_high": pfe_high,
                "wall_s_per_million_steps": wall_s_per_million_steps(cond),
                **{f"config.{key}": as_text(value) for key, value in differences[cond.label].items()},
            }
        )
    return rows


def profile_taus(conds: list[Condition], budget: int) -> np.ndarray:
    scores = np.concatenate([finals(cond, budget) for cond in conds])
    low, high = float(scores.min()), float(scores.max())
    margin = PROFILE_MARGIN * (high - low or 1.0)
    return np.linspace(low - margin, high + margin, PROFILE_POINTS)


def profiles(
    conds: list[Condition], budget: int, taus: np.ndarray, bands: bool, reps: int, seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
    """label -> (fraction of seeds with final > tau at every tau, band low, band high); no band unless ``bands``."""
    curves = {}
    for cond in conds:
        scores = finals(cond, budget)
        band = stats.performance_profile_band(scores, taus, reps, seed) if bands else (None, None)
        curves[cond.label] = (stats.performance_profile(scores, taus), *band)
    return curves
