"""Statistics over seeds that a reviewer accepts (Agarwal et al. 2021, "Deep RL at the edge of the statistical
precipice"), as pure functions of arrays of per-seed scores.

- interquartile mean (IQM): ``scipy.stats.trim_mean(x, 0.25)``, the mean after dropping floor(n / 4) scores at
  each end;
- probability of improvement P(X > Y): the mean over all pairs (x, y) of 1[x > y] + 1/2 1[x == y], i.e. the
  Mann-Whitney U of X over Y divided by n_x n_y;
- performance profile: for each threshold tau, the fraction of seeds whose score is > tau;
- confidence intervals: ``scipy.stats.bootstrap`` with ``method="percentile"``, resampling seeds with replacement
  (each sample on its own: with one task, stratified = within the condition). Every interval draws from a fresh
  ``numpy.random.default_rng(seed)``, so a condition's interval does not depend on which others are reported.
  A sample of fewer than two seeds has no interval (NaN).

Imports nothing from lfcs: ``import lfcs.analysis.stats`` loads numpy and scipy only.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

CONFIDENCE_LEVEL = 0.95
IQM_CUT = 0.25  # trim_mean's proportiontocut: drop the lowest and highest quarter
ELEMENTS_PER_BATCH = 10_000_000  # bounds the comparison arrays of a bootstrap batch: (resamples, n_x, n_y) and so on


def iqm(scores: np.ndarray, axis: int = -1) -> np.ndarray | float:
    """Interquartile mean along ``axis``: the mean after dropping floor(n / 4) scores at each end."""
    return stats.trim_mean(scores, IQM_CUT, axis=axis)


def probability_of_improvement(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray | float:
    """P(X > Y) over all pairs of x's and y's scores along ``axis``, ties counting 1/2."""
    x, y = np.moveaxis(np.asarray(x), axis, -1), np.moveaxis(np.asarray(y), axis, -1)
    pairs_x, pairs_y = x[..., :, None], y[..., None, :]  # (..., n_x, 1) against (..., 1, n_y)
    return ((pairs_x > pairs_y) + 0.5 * (pairs_x == pairs_y)).mean(axis=(-2, -1))


def performance_profile(scores: np.ndarray, taus: np.ndarray, axis: int = -1) -> np.ndarray:
    """Fraction of scores > tau for every tau; the taus' axis comes first: shape (len(taus), ...)."""
    above = np.expand_dims(np.moveaxis(np.asarray(scores), axis, -1), -1) > np.asarray(taus)  # (..., n, n_taus)
    return np.moveaxis(above.mean(axis=-2), -1, 0)


def _percentile_ci(samples: tuple[np.ndarray, ...], statistic, reps: int, seed: int, **options):
    if min(len(s) for s in samples) < 2:
        return None
    result = stats.bootstrap(
        samples,
        statistic,
        n_resamples=reps,
        method="percentile",
        confidence_level=CONFIDENCE_LEVEL,
        rng=np.random.default_rng(seed),
        vectorized=True,
        **options,
    )
    return result.confidence_interval


def iqm_ci(scores: np.ndarray, reps: int, seed: int) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the IQM, resampling the seeds."""
    ci = _percentile_ci((np.asarray(scores, dtype=np.float64),), iqm, reps, seed)
    return (float("nan"), float("nan")) if ci is None else (float(ci.low), float(ci.high))


def probability_of_improvement_ci(x: np.ndarray, y: np.ndarray, reps: int, seed: int) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of P(X > Y), resampling x's and y's seeds independently."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    batch = max(1, ELEMENTS_PER_BATCH // (len(x) * len(y)))
    ci = _percentile_ci((x, y), probability_of_improvement, reps, seed, paired=False, batch=batch)
    return (float("nan"), float("nan")) if ci is None else (float(ci.low), float(ci.high))


def performance_profile_band(scores: np.ndarray, taus: np.ndarray, reps: int, seed: int) -> tuple[np.ndarray, ...]:
    """95 % percentile-bootstrap band (low, high) of the performance profile at every tau."""
    scores, taus = np.asarray(scores, dtype=np.float64), np.asarray(taus, dtype=np.float64)
    batch = max(1, ELEMENTS_PER_BATCH // (len(scores) * len(taus)))

    def profile(resampled: np.ndarray, axis: int) -> np.ndarray:
        return performance_profile(resampled, taus, axis)

    ci = _percentile_ci((scores,), profile, reps, seed, batch=batch)
    return (np.full(len(taus), np.nan),) * 2 if ci is None else (np.asarray(ci.low), np.asarray(ci.high))
