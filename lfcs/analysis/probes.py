"""Representation probes of the hidden states: intrinsic dimension (TwoNN), linear CKA, decoding R^2. Pure numpy maths.

- ``intrinsic_dimension``: TwoNN (Facco et al. 2017, Sci. Rep. 7:12140) from scikit-dimension (``skdim.id.TwoNN``,
  the linear fit of the paper, discarding the largest 10 % of the ratios r2 / r1). Duplicate points have
  r1 = 0 and no ratio: they are dropped first (spike read-out traces repeat whenever the spike pattern does).
- ``linear_cka``: linear centred kernel alignment (Kornblith et al. 2019, ICML, eq. for linear kernels)::

      CKA(X, Y) = ||Y_c^T X_c||_F^2 / (||X_c^T X_c||_F ||Y_c^T Y_c||_F),   X_c = X - mean over samples

  1 for X against itself or any orthogonal transform or isotropic scaling of it; near 0 for independent data.
- ``decoding_r2``: how well a linear read-out recovers hidden variables y from features X (samples in time
  order): cross-validated ridge regression R^2 = 1 - sum (y - y_hat)^2 / sum (y - mean y)^2, with y_hat predicted
  out of fold. The samples are cut into ``DECODE_FOLDS`` contiguous blocks (neighbouring steps are alike, so a
  random split would leak); each block is predicted by a ridge fit on the others, on features standardised with
  the training blocks' mean and std (a std below ``STD_FLOOR`` times the features' rms std is raised to it, so a
  nearly constant feature cannot blow up out of fold), the ridge penalty chosen per variable among
  ``RIDGE_PENALTIES`` x (training samples) by ``INNER_FOLDS``-fold contiguous-block cross-validation inside the
  training blocks alone (leave-one-out would pick too small a penalty: neighbouring steps leak). Fewer
  than ``MIN_DECODE_SAMPLES`` samples give nan: a handful of steps says nothing about a read-out.
  About 1 where y is a linear function of X; about 0 (or below) where X carries nothing about y.
"""

from __future__ import annotations

import warnings

import numpy as np
from threadpoolctl import threadpool_limits

MIN_TWONN_POINTS = 3  # TwoNN needs two neighbours of each point
DECODE_FOLDS = 5
INNER_FOLDS = 4  # the penalty is chosen by contiguous-block cross-validation inside each training part
RIDGE_PENALTIES = np.logspace(-8, 2, 21)  # per training sample: the penalty is this times the samples
MIN_DECODE_SAMPLES = 50  # fewer samples (steps): nan
STD_FLOOR = 0.01  # features are divided by max(std, STD_FLOOR * rms std of all features)


def intrinsic_dimension(points: np.ndarray) -> float:
    """TwoNN intrinsic dimension of ``points`` (samples, features); nan if fewer than 3 distinct points."""
    distinct = np.unique(np.asarray(points, dtype=np.float64), axis=0)
    if len(distinct) < MIN_TWONN_POINTS:
        return float("nan")
    import skdim  # imported here: it takes seconds, and only probe episodes need it

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a degenerate fit warns and returns nan: the curve shows the nan
        return float(skdim.id.TwoNN().fit(distinct).dimension_)


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two representations of the same samples, x (samples, p) and y (samples, q); nan if either
    is constant over the samples (no variance to compare)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"linear_cka needs the same samples: got {x.shape[0]} and {y.shape[0]} rows")
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    cross = np.linalg.norm(y.T @ x) ** 2
    norms = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / norms) if norms > 0 else float("nan")


def decoding_r2(features: np.ndarray, targets: np.ndarray, folds: int = DECODE_FOLDS) -> np.ndarray:
    """Cross-validated ridge R^2 of each target column read out of ``features`` (samples, p); ``targets``
    (samples, q) -> (q,). nan for a target that does not vary, or with fewer than MIN_DECODE_SAMPLES samples."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"decoding_r2 needs the same samples: got {x.shape[0]} and {y.shape[0]} rows")
    n, q = y.shape
    if n < max(MIN_DECODE_SAMPLES, 2 * folds):
        return np.full(q, np.nan)
    predicted = np.empty_like(y)
    with threadpool_limits(1):  # many small SVDs: a second BLAS thread on a busy 2-core machine made them 20x slower
        _cross_validate(x, y, folds, predicted)
    total = ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    residual = ((y - predicted) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, 1.0 - residual / total, np.nan)


def _cross_validate(x: np.ndarray, y: np.ndarray, folds: int, predicted: np.ndarray) -> None:
    """Fill ``predicted`` with each contiguous block's ridge prediction from the other blocks."""
    q = y.shape[1]
    for train, test in _blocks(len(y), folds):
        # the penalty of each target: the smallest squared error over contiguous blocks of the training part
        errors = np.zeros((len(RIDGE_PENALTIES), q))
        for inner_train, inner_test in _blocks(len(train), INNER_FOLDS):
            path = _ridge_path(x[train[inner_train]], y[train[inner_train]], x[train[inner_test]])
            errors += ((path - y[train[inner_test]]) ** 2).sum(axis=1)
        best = errors.argmin(axis=0)  # (q,)
        path = _ridge_path(x[train], y[train], x[test])  # (penalties, test, q)
        predicted[test] = path[best, :, np.arange(q)].T


def _blocks(n: int, folds: int):
    """(train, test) index pairs of ``folds`` contiguous test blocks of range(n)."""
    for test in np.array_split(np.arange(n), folds):
        yield np.setdiff1d(np.arange(n), test), test


def _ridge_path(x: np.ndarray, y: np.ndarray, x_new: np.ndarray) -> np.ndarray:
    """Ridge predictions at ``x_new`` from (x, y) for every penalty of RIDGE_PENALTIES x len(x): (penalties, m, q)."""
    mean, std = x.mean(axis=0), x.std(axis=0)
    typical = np.sqrt((std**2).mean())
    y_mean = y.mean(axis=0)
    if typical == 0:  # no feature varies: predict the mean
        return np.broadcast_to(y_mean, (len(RIDGE_PENALTIES), len(x_new), y.shape[1])).copy()
    scale = np.maximum(std, STD_FLOOR * typical)  # a nearly constant feature is not blown up to unit variance
    u, s, vt = np.linalg.svd((x - mean) / scale, full_matrices=False)  # = u diag(s) vt
    uty = u.T @ (y - y_mean)  # (k, q)
    projected = ((x_new - mean) / scale) @ vt.T  # (m, k)
    gains = s[None, :] / (s[None, :] ** 2 + RIDGE_PENALTIES[:, None] * len(x))  # (penalties, k)
    return (projected[None, :, :] * gains[:, None, :]) @ uty + y_mean  # (penalties, m, k) @ (k, q)
