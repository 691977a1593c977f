"""Check the independence contract where users rely on it: seeds trained together vs each seed trained alone.

    python scripts/check_independence.py RUN_DIR [--episodes 300] [--out results/independence]

RUN_DIR is a finished (or running) run with several agents, e.g. one job of ``scripts/reproduce_fig1.sh`` (10 agents
in one process). For every agent b it trains seed ``seed + b`` alone with the same configuration for ``--episodes``
episodes, then compares its ``metrics.csv`` rows with agent b's rows in RUN_DIR, every column but the wall-clock
ones, bit for bit (the CSV holds the exact float repr). Writes ``<out>/<name>.json`` with the verdict per seed,
the command and the machine. Exit 0 only if every seed matches.
"""

from __future__ import annotations

import csv
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from omegaconf import OmegaConf

from lfcs.running.scripting import OneLineParser, existing_dir, fail, integer, output_dir

PROG = "check_independence.py"
WALL_CLOCK = ("sps", "sps_total")


def rows_by_agent(metrics_csv: Path, episodes: int) -> dict[int, list[dict]]:
    per: dict[int, list[dict]] = {}
    with open(metrics_csv) as handle:
        for row in csv.DictReader(handle):
            if int(row["episode"]) <= episodes:
                agent = int(row.pop("agent"))
                per.setdefault(agent, []).append({k: v for k, v in row.items() if k not in WALL_CLOCK})
    return {agent: sorted(rows, key=lambda r: int(r["episode"])) for agent, rows in per.items()}


def parse(argv: list[str]):
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=existing_dir)
    parser.add_argument("--episodes", type=integer(1), default=300)
    parser.add_argument("--out", type=output_dir, default="results/independence")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    if not (args.run_dir / "config.yaml").exists() or not (args.run_dir / "metrics.csv").exists():
        fail(PROG, f"{args.run_dir} is not allowed: an lfcs run directory (no config.yaml and metrics.csv)")
    import torch

    from lfcs import train
    from lfcs.config import Config

    torch.set_num_threads(1)
    # The schema's defaults under the stored run: a run written before a key was added still composes.
    cfg = OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(args.run_dir / "config.yaml"))
    group = rows_by_agent(args.run_dir / "metrics.csv", args.episodes)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for agent in sorted(group):
            seed = int(cfg.seed) + agent
            alone = OmegaConf.merge(cfg, {"seed": seed, "num_agents": 1, "workers": 1, "iterations": args.episodes})
            alone.run_dir, alone.resume, alone.progress = str(Path(tmp) / f"seed{seed}"), None, False
            train(alone)
            mine = rows_by_agent(Path(alone.run_dir) / "metrics.csv", args.episodes)[0]
            theirs = group[agent]
            same = mine == theirs
            first = next((i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b), None)
            results[str(seed)] = {"episodes_compared": min(len(mine), len(theirs)), "identical": same,
                                  "first_difference_episode": None if first is None else first + 1}  # fmt: skip
            print(f"seed {seed}: {'identical' if same else 'DIFFERENT'} over {len(mine)} episodes", flush=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    report = {
        "command": " ".join(["python", "scripts/check_independence.py", *argv]),
        "group_run": str(args.run_dir),
        "group_agents_per_process": int(cfg.num_agents) // max(int(cfg.workers), 1),
        "columns_compared": "every metrics.csv column but " + ", ".join(WALL_CLOCK),
        "network_num_neurons": int(cfg.network.num_neurons),
        "seeds": results,
        "all_identical": all(r["identical"] for r in results.values()),
        "machine": {"platform": platform.platform(), "git_commit": commit},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"{args.run_dir.parent.name}_{args.run_dir.name}".replace("=", "-").replace(",", "_")
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out / (name + '.json')}: all identical = {report['all_identical']}")
    return 0 if report["all_identical"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
