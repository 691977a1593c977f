"""scripts/bench.py --quick: the file it writes holds the machine, and every rate, efficiency and floor is
recomputable from it; the floor's bytes follow the configuration, and its loop touches them."""

from __future__ import annotations

import json
import os
import statistics
import sys

import numpy as np
import pytest

from lfcs.backends.floor import touch_words
from lfcs.running.training import agent_groups
from tests.conftest import ROOT, make_cfg, run_script

sys.path.insert(0, str(ROOT / "scripts"))
import bench_net  # noqa: E402  (scripts/, as bench.py imports it)

# JSON line key of each layout's efficiency, and of its median training / env-only rates.
EFFICIENCY_KEYS = {
    "fig1c": ("efficiency", "train_episodes_per_s", "env_only_episodes_per_s"),
    "single_agent": ("single_agent_efficiency", "single_agent_episodes_per_s", "single_agent_env_only_episodes_per_s"),
    "ten_agents_one_process": (
        "ten_agents_efficiency",
        "ten_agents_one_process_episodes_per_s",
        "ten_agents_env_only_episodes_per_s",
    ),
}
SUMMARY_KEYS = {
    "efficiency_paired_median",
    "single_agent_speedup_vs_authors",
    "fig1c_minutes_estimate",
    "peak_mib_10_agents_one_process",
    "peak_mib_training_total",
    "num_agents",
    "workers",
    "num_neurons",
    "cpu",
    "cores",
}
ROUNDING = 0.0005 + 1e-9  # the JSON line rounds rates and efficiencies to 3 decimals


def _rate(processes: list[dict]) -> float:
    """Processes ran side by side: their episodes over the slowest one's seconds."""
    return sum(p["episodes"] for p in processes) / max(p["seconds"] for p in processes)


def _cpu_rate(processes: list[dict]) -> float:
    return sum(p["episodes"] for p in processes) / sum(p["cpu_seconds"] for p in processes)


def _steps_rate(processes: list[dict]) -> float:
    return sum(p["env_steps"] for p in processes) / max(p["seconds"] for p in processes)


def test_quick_bench_file_is_complete_and_consistent(tmp_path):
    # About 20 s on 2 idle cores and 36 s at load 5.7 before the network-bound and torch parts (+ 9 process starts);
    # the limit leaves room for a machine shared by 5 engineers.
    done = run_script("scripts/bench.py", "--quick", "--out", str(tmp_path), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "bench: fig1c: env 1/3" in done.stderr  # progress on stderr

    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1
    record = json.loads(files[0].read_text())
    line = json.loads(done.stdout.strip().splitlines()[-1])
    summary = record["summary"]
    assert line == {**summary, "file": str(files[0])}

    for keys in EFFICIENCY_KEYS.values():
        assert set(keys) <= summary.keys()
    assert SUMMARY_KEYS <= summary.keys()
    machine = record["machine"]
    assert machine["cpu_count"] == os.cpu_count() == summary["cores"]
    assert machine["platform"] and machine["cpu_model"] == summary["cpu"]
    assert {"torch", "numpy", "ale-py"} <= machine["versions"].keys()
    assert len(record["git"]["commit"]) == 40
    assert "--quick" in record["command"] and record["date"]
    assert len(record["loadavg_before"]) == len(record["loadavg_after"]) == 3
    assert record["seeds"]["config_seed"] == 0
    assert any("constant" in note and "issue #4" in note for note in record["notes"])

    layouts = record["layouts"]
    assert summary["num_agents"] == 4 and summary["workers"] == 2  # --quick's Fig. 1c layout
    assert layouts["fig1c"]["groups"] == agent_groups(4, 2)
    assert layouts["ten_agents_one_process"]["groups"] == [list(range(10))]
    assert layouts["single_agent"]["groups"] == [[0]]
    for name, (efficiency_key, train_key, env_key) in EFFICIENCY_KEYS.items():
        layout = layouts[name]
        assert len(layout["repeats"]) == summary["repeats"] == 3
        env, train = [], []
        for repeat in layout["repeats"]:
            for kind, rates in (("env", env), ("train", train)):
                processes = repeat[kind]
                assert [p["episodes"] for p in processes] == [
                    layout["episodes_per_agent"] * len(g) for g in layout["groups"]
                ]
                rates.append(_rate(processes))
        env_median, train_median = statistics.median(env), statistics.median(train)
        assert abs(summary[efficiency_key] - train_median / env_median) <= ROUNDING, name
        assert abs(summary[train_key] - train_median) <= ROUNDING, name
        assert abs(summary[env_key] - env_median) <= ROUNDING, name
        assert abs(layout["efficiency"] - train_median / env_median) <= 1e-12
        env_cpu, train_cpu = ([_cpu_rate(r[kind]) for r in layout["repeats"]] for kind in ("env", "train"))
        cpu_ratio = statistics.median(train_cpu) / statistics.median(env_cpu)
        assert abs(layout["efficiency_cpu_time"] - cpu_ratio) <= 1e-12
        paired = statistics.median(t / e for t, e in zip(train, env))
        assert abs(layout["efficiency_paired_median"] - paired) <= 1e-12
    fig1c_train = statistics.median(_rate(r["train"]) for r in layouts["fig1c"]["repeats"])
    assert abs(summary["efficiency_paired_median"] - layouts["fig1c"]["efficiency_paired_median"]) <= ROUNDING
    assert abs(summary["fig1c_minutes_estimate"] - 2 * 10 * 2500 / fig1c_train / 60) <= 0.05 + 1e-9

    # Network-bound layouts: training and its floor, alternated in one process; the keys from the raw repeats.
    assert any("floor" in note for note in record["notes"])
    assert sorted(layouts["net"]) == sorted(bench_net.QUICK)
    for name in bench_net.QUICK:
        layout, agents = layouts["net"][name], bench_net.LAYOUTS[name][1]
        assert len(layout["repeats"]) == 3 and layout["agents"] == agents
        train = [_steps_rate(r["train"]) for r in layout["repeats"]]
        floor = [_steps_rate(r["floor"]) for r in layout["repeats"]]
        for repeat in layout["repeats"]:  # the floor replays the bytes of the training measurement before it
            assert repeat["floor"][0]["env_steps"] == repeat["train"][0]["env_steps"] > 0
            assert repeat["floor"][0]["replayed_steps"] == repeat["train"][0]["replayed_steps"]
            assert len(repeat["train"][0]["replayed_steps"]) == agents
        assert abs(summary[f"net_{name}_steps_per_s"] - statistics.median(train)) <= 0.05 + 1e-9
        assert abs(summary[f"net_{name}_floor_steps_per_s"] - statistics.median(floor)) <= 0.05 + 1e-9
        over = statistics.median(f / t for t, f in zip(train, floor))
        assert abs(summary[f"net_{name}_over_floor"] - over) <= ROUNDING
        cpu = statistics.median(r["train"][0]["cpu_seconds"] / r["floor"][0]["cpu_seconds"] for r in layout["repeats"])
        assert abs(summary[f"net_{name}_over_floor_cpu_time"] - cpu) <= ROUNDING
    # backend=torch: agent steps per second at each agent count, and ms per env step at N = 1 and the bench's N.
    torch_part = layouts["torch"]
    for kind, prefix in (("scaling", "torch_cpu_b"), ("kernels", "kernels_cpu_b")):
        for b, measured in torch_part[kind].items():
            rates = [_steps_rate(r["train"]) for r in measured["repeats"]]
            assert abs(summary[f"{prefix}{b}_agent_steps_per_s"] - statistics.median(rates)) <= 0.05 + 1e-9
    assert {"torch_cpu_ms_per_env_step_n1", "torch_cpu_ms_per_env_step_n20"} <= summary.keys()


def test_floor_bytes_follow_the_configuration():
    """W_rec, its trace and Adam's two moments per weight (fast), trace and D (slow), W_out always; 4 bytes in f32."""
    n, o = 500, 2
    cfg = make_cfg("experiment=masked_cartpole_rec")
    assert bench_net.update_bytes(cfg, 2, o)["bytes"] == 8 * 4 * (n * n + o * n)
    assert bench_net.update_bytes(make_cfg("experiment=masked_cartpole_rec", "dtype=float32"), 2, o)["bytes"] == (
        4 * 4 * (n * n + o * n)
    )
    slow = make_cfg("experiment=masked_cartpole_rec", "learner.timescale=slow")
    assert bench_net.update_bytes(slow, 2, o)["bytes"] == 8 * 2 * (n * n + o * n)
    fixed = make_cfg("experiment=masked_cartpole_fixed")
    assert bench_net.update_bytes(fixed, 2, o)["bytes"] == 8 * 4 * o * n
    alif_in = make_cfg("experiment=masked_cartpole_rec", *bench_net.ALIF_IN)  # + eps_a on the 250 adaptive rows
    assert bench_net.update_bytes(alif_in, 2, o)["bytes"] == 8 * (4 * o * n + (4 * n + 250) * (n + 2))


@pytest.mark.parametrize("steps", [0, 1, 2, 3])
def test_the_floor_loop_reads_and_writes_every_word_once_per_step(steps):
    words = np.arange(6, dtype=np.uint64).reshape(2, 3)
    before = words.copy()
    touch_words(words, np.array([steps, steps + 1]))
    assert np.array_equal(words[0], before[0] if steps % 2 == 0 else ~before[0])
    assert np.array_equal(words[1], ~before[1] if steps % 2 == 0 else before[1])
