"""Analytic checks of the statistics that the README's reproduction claims rest on."""

from __future__ import annotations

import math

from omegaconf import OmegaConf

from lfcs.analysis.results import (
    Condition,
    config_differences,
    fisher_exact_two_sided,
    load_conditions,
    load_reference,
    within_seed_noise,
)
from tests.conftest import GOLDEN_DIR, make_cfg


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


def test_reference_check_csv_flags_each_mark_by_hand(tmp_path):
    """aggregate.py --reference: one row per 250-episode mark, difference and 2 x combined SE as computed by hand."""
    import csv

    from tests.conftest import run_script

    run = tmp_path / "sweep" / "experiment=pong100_lfcs" / "seed=0"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("seed: 0\nexperiment_tag: lfcs\n")
    ours = {250: (0.0, 2.0), 500: (5.0, 5.0)}  # agent 0, agent 1 (seeds 0 and 1)
    with open(run / "metrics.csv", "w") as handle:
        handle.write("agent,episode,reward_mean50\n")
        for episode in range(50, 501, 50):
            for agent in (0, 1):
                handle.write(f"{agent},{episode},{ours.get(episode, (0.0, 0.0))[agent]}\n")
    reference = tmp_path / "reference.csv"
    with open(reference, "w") as handle:
        handle.write("method,seed,episode,reward_mean50\n")
        for seed, values in ((1, {250: 1.0, 500: 0.0}), (2, {250: 1.0, 500: 0.0})):
            for episode, value in values.items():
                handle.write(f"lfcs,{seed},{episode},{value}\n")
    result = run_script("scripts/aggregate.py", str(tmp_path / "sweep"), "--reference", str(reference))
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "sweep" / "reference_check.csv") as handle:
        rows = {int(row["episode"]): row for row in csv.DictReader(handle)}
    assert sorted(rows) == [250, 500]
    # 250: means 1 vs 1, stds sqrt(2) vs 0, n = 2: bound 2 sqrt(2/2) = 2, difference 0 -> within noise.
    assert (rows[250]["difference"], rows[250]["two_combined_se"], rows[250]["within_seed_noise"]) == (
        "+0.000",
        "2.000",
        "True",
    )
    # 500: 5 vs 0 with no spread on either side: bound 0 -> outside.
    assert (rows[500]["difference"], rows[500]["two_combined_se"], rows[500]["within_seed_noise"]) == (
        "+5.000",
        "0.000",
        "False",
    )
    assert rows[250]["reference"] == "official_lfcs" and rows[250]["n"] == "2" and rows[250]["ref_n"] == "2"


def test_a_run_of_an_earlier_version_reads_with_the_new_keys_at_their_defaults(tmp_path):
    """A config.yaml written before learner.rec_lr / learner.critic existed groups with a run of this version that
    has them at their defaults (the same training), and no configuration column shows them as a difference."""
    for name, seed in (("old", 0), ("new", 10)):
        run = tmp_path / name
        run.mkdir()
        text = OmegaConf.to_yaml(make_cfg(f"seed={seed}", f"run_dir={run}"))
        if name == "old":
            text = "\n".join(line for line in text.splitlines() if not line.strip().startswith(("rec_lr:", "critic:")))
        (run / "config.yaml").write_text(text + "\n")
        (run / "metrics.csv").write_text("agent,episode,reward_mean50\n0,50,-1.0\n")
    (cond,) = load_conditions([tmp_path / "old", tmp_path / "new"])
    assert sorted(cond.curves) == [0, 10] and len(cond.runs) == 2
    other = load_conditions([tmp_path / "old"])[0]
    other.label = "old"
    assert config_differences([cond, other]) == {cond.label: {}, "old": {}}
