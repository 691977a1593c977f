"""Representation probes of the hidden states: intrinsic dimension (TwoNN) and linear CKA. Pure numpy maths.

- ``intrinsic_dimension``: TwoNN (Facco et al. 2017, Sci. Rep. 7:12140) from scikit-dimension (``skdim.id.TwoNN``,
  the linear fit of the paper, discarding the largest 10 % of the ratios r2 / r1). Duplicate points have
  r1 = 0 and no ratio: they are dropped first (spike read-out traces repeat whenever the spike pattern does).
- ``linear_cka``: linear centred kernel alignment (Kornblith et al. 2019, ICML, eq. for linear kernels)::

      CKA(X, Y) = ||Y_c^T X_c||_F^2 / (||X_c^T X_c||_F ||Y_c^T Y_c||_F),   X_c = X - mean over samples

  1 for X against itself or any orthogonal transform or isotropic scaling of it; near 0 for independent data.
"""

from __future__ import annotations

import warnings

import numpy as np

MIN_TWONN_POINTS = 3  # TwoNN needs two neighbours of each point


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
