"""Representation probes against cases with a known answer."""

from __future__ import annotations

import math

import numpy as np

from lfcs.analysis.probes import intrinsic_dimension, linear_cka


def _plane(rng, samples: int, dim: int, ambient: int) -> np.ndarray:
    basis = np.linalg.qr(rng.normal(size=(ambient, ambient)))[0][:dim]  # dim orthonormal rows in R^ambient
    return rng.normal(size=(samples, dim)) @ basis + rng.normal(size=ambient)  # (samples, ambient), shifted


def test_twonn_finds_the_dimension_of_a_plane_embedded_in_more_dimensions():
    rng = np.random.default_rng(0)
    assert abs(intrinsic_dimension(_plane(rng, 1000, 3, 20)) - 3.0) < 0.3
    assert abs(intrinsic_dimension(_plane(rng, 1000, 6, 20)) - 6.0) < 0.6


def test_twonn_drops_duplicate_points_and_needs_three_distinct_ones():
    rng = np.random.default_rng(1)
    points = _plane(rng, 800, 3, 20)
    repeated = np.concatenate([points, points[:300]])  # duplicates have r1 = 0: no ratio r2 / r1
    assert intrinsic_dimension(repeated) == intrinsic_dimension(points)
    assert math.isnan(intrinsic_dimension(np.zeros((50, 20))))  # a silent network: one distinct point


def test_linear_cka_is_one_for_the_same_representation_up_to_rotation_and_scale():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 30))
    rotation = np.linalg.qr(rng.normal(size=(30, 30)))[0]
    assert math.isclose(linear_cka(x, x), 1.0, rel_tol=1e-12)
    assert math.isclose(linear_cka(x, 3.0 * x @ rotation), 1.0, rel_tol=1e-12)
    assert math.isclose(linear_cka(x, x[:, :10]), linear_cka(x[:, :10], x), rel_tol=1e-12)  # symmetric


def test_linear_cka_is_small_for_independent_data_and_nan_without_variance():
    rng = np.random.default_rng(3)
    x, noise = rng.normal(size=(2000, 10)), rng.normal(size=(2000, 10))
    assert linear_cka(x, noise) < 0.02  # E[CKA] ~ q / samples for independent Gaussians
    assert linear_cka(x, x + 0.1 * noise) > 0.95
    assert math.isnan(linear_cka(x, np.ones((2000, 5))))
