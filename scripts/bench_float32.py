"""How far float32 training stays from float64: python scripts/bench_float32.py [--seeds 5] [--out results/bench]

Trains the same agents (seeds 0 .. S-1, ``num_agents=S`` in one process: agent b equals the same seed trained alone)
in float64 and in float32 for the experiment's full run (``experiment=masked_cartpole_rec``: 1,000 episodes, learned
W_rec; float32 updates W_rec in float32 arithmetic with subnormals flushed, lfcs/backends/floor.py), one process per
dtype side by side, and compares their metrics.csv: per seed the first episode whose return differs and the gap of
the reward_mean50 curves; over seeds the mean curves, their gap and the float64 seeds' spread. Spiking networks are
chaotic: a rounding difference that flips one spike changes the trajectory, so per-seed curves part early; the
question is whether the float32 curves are statistically those of float64. Writes DIR/float32_accuracy.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_layouts import compose, say
from bench_record import git_state, machine

ROOT = Path(__file__).resolve().parents[1]
EVERY = 50  # curve points: reward_mean50 at every 50th episode (the paper's windows)


def _train(overrides: list[str], run_dir: str) -> None:
    import torch

    from lfcs.running.training import train

    torch.set_num_threads(1)
    train(compose([*overrides, f"run_dir={run_dir}"]))


def _curves(run_dir: Path) -> dict[int, dict[str, list[float]]]:
    """agent -> {'returns': per episode, 'mean50': reward_mean50 per episode}."""
    found: dict[int, dict[str, list[float]]] = {}
    with open(run_dir / "metrics.csv") as handle:
        for row in csv.DictReader(handle):
            agent = found.setdefault(int(row["agent"]), {"returns": [], "mean50": []})
            agent["returns"].append(float(row["episodic_return"]))
            agent["mean50"].append(float(row["reward_mean50"]))
    return found


def _train_both(base: list[str], seeds: int, tmp: Path) -> tuple[dict, dict]:
    """Both dtypes' runs side by side (one process each); their curves."""
    ctx = mp.get_context("spawn")
    runs = {dtype: tmp / dtype for dtype in ("float64", "float32")}
    procs = [ctx.Process(target=_train, args=([*base, f"dtype={d}"], str(p))) for d, p in runs.items()]
    say(f"training {seeds} seeds in float64 and float32 side by side in {tmp}")
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    if any(proc.exitcode for proc in procs) or not all((p / "summary.json").exists() for p in runs.values()):
        raise SystemExit(f"bench_float32.py: a training process failed or stopped ({[p.exitcode for p in procs]})")
    return _curves(runs["float64"]), _curves(runs["float32"])


def compare(f64: dict, f32: dict) -> dict:
    """Per seed and over seeds, the float32 curves against the float64 ones (module docstring)."""
    seeds = {}
    for b in sorted(f64):
        a, c = f64[b], f32[b]
        parted = next((i + 1 for i, (x, y) in enumerate(zip(a["returns"], c["returns"])) if x != y), None)
        gaps = [abs(x - y) for x, y in zip(a["mean50"], c["mean50"])]
        seeds[b] = {"first_different_episode": parted, "max_gap_mean50": max(gaps),
                    "final_mean50": {"float64": a["mean50"][-1], "float32": c["mean50"][-1]}}  # fmt: skip
    episodes = len(next(iter(f64.values()))["mean50"])
    points = sorted({*range(EVERY - 1, episodes, EVERY), episodes - 1})  # every 50th episode and the last
    mean64 = [statistics.mean(f64[b]["mean50"][i] for b in f64) for i in points]
    mean32 = [statistics.mean(f32[b]["mean50"][i] for b in f32) for i in points]
    spread64 = [statistics.stdev(f64[b]["mean50"][i] for b in f64) if len(f64) > 1 else 0.0 for i in points]
    return {
        "seeds": seeds,
        "episodes": [i + 1 for i in points],
        "mean_mean50": {"float64": mean64, "float32": mean32},
        "std_over_seeds_float64": spread64,
        "max_gap_of_means": max(abs(x - y) for x, y in zip(mean64, mean32)),
        "max_gap_over_std": max(abs(x - y) / s if s > 0 else 0.0 for x, y, s in zip(mean64, mean32, spread64)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="write DIR/float32_accuracy.json")
    finished = "compare these finished runs (a stopped run resumes exactly) instead of training"
    parser.add_argument("--runs", type=Path, nargs=2, metavar=("FLOAT64_DIR", "FLOAT32_DIR"), help=finished)
    parser.add_argument("overrides", nargs="*", help="config overrides after the experiment, e.g. iterations=200")
    args = parser.parse_args()
    base = ["experiment=masked_cartpole_rec", f"num_agents={args.seeds}", "progress=false", "log_images_every=0",
            *args.overrides]  # fmt: skip
    started, load_before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), os.getloadavg()
    provenance: dict = {"overrides": base}
    code = git_state(ROOT)  # the commit that trains (taken now: the run lasts minutes)
    if args.runs:  # the runs' own resolved configurations stand in for the overrides
        result = compare(_curves(args.runs[0]), _curves(args.runs[1]))
        provenance = {"run_configs": {str(d): (d / "config.yaml").read_text() for d in args.runs}}
    else:
        with tempfile.TemporaryDirectory(prefix="lfcs_float32_") as tmp:
            result = compare(*_train_both(base, args.seeds, Path(tmp)))
    record = {"result": result, **provenance, "machine": machine(), "git": code, "date": started,
              "command": shlex.join([sys.executable, *sys.argv]), "seeds": sorted(result["seeds"]),
              "loadavg_before": list(load_before), "loadavg_after": list(os.getloadavg())}  # fmt: skip
    say(f"max gap of the seed-mean reward_mean50 curves {result['max_gap_of_means']:.3f} "
        f"({result['max_gap_over_std']:.2f} float64 seed std)")  # fmt: skip
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "float32_accuracy.json").write_text(json.dumps(record, indent=1) + "\n")
        say(f"wrote {args.out / 'float32_accuracy.json'}")
    print(json.dumps({k: v for k, v in result.items() if k != "seeds"}))


if __name__ == "__main__":
    main()
