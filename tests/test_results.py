"""Analytic checks of the statistics that the README's reproduction claims rest on."""

from __future__ import annotations

import math

from lfcs.results import Condition, fisher_exact_two_sided, load_reference, within_seed_noise
from tests.conftest import GOLDEN_DIR


def test_fisher_exact_matches_hand_values():
    # Lady tasting tea: 3 of 4 vs 1 of 4, two-sided p = 34/70.
    assert math.isclose(fisher_exact_two_sided(3, 4, 1, 4), 34 / 70)
    assert fisher_exact_two_sided(5, 8, 5, 8) == 1.0
    # 0 of 10 vs 5 of 8: only the observed table and none more extreme: C(8,5) C(10,0) / C(18,5) * ...
    assert math.isclose(fisher_exact_two_sided(0, 10, 5, 8), (1 * 56 + 0) / 8568, rel_tol=1e-9)


def test_within_seed_noise_and_stats():
    a = Condition("a", {0: {50: 0.0}, 1: {50: 2.0}})
    b = Condition("b", {0: {50: 1.0}, 1: {50: 1.0}, 2: {50: 1.0}})
    assert a.stats(50) == (1.0, math.sqrt(2.0), 2)
    diff, bound, ok = within_seed_noise(a, b, 50)
    assert diff == 0.0 and math.isclose(bound, 2 * math.sqrt(2.0 / 2 + 0.0)) and ok
    assert a.final_per_seed() == {0: 0.0, 1: 2.0} and a.episodes_to_reach(-0.5) == 50


def test_reference_curves_match_method_md():
    (lfcs,) = [
        c
        for c in load_reference(GOLDEN_DIR.parent / "reference" / "official_pong100.csv")
        if c.label == "official_lfcs"
    ]
    mean, std, n = lfcs.stats(2500)
    assert n == 8 and round(mean, 2) == 0.10 and round(std, 2) == 0.95  # METHOD.md §4's table
