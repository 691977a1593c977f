"""Collect a representation probe over training from runs' TensorBoard events: per-condition mean ± std over seeds.

    python scripts/plot_probes.py RUN_OR_MULTIRUN_DIR... [--tag probe/intrinsic_dim] [--out results/probes]

Writes ``<out>/<tag name>.csv`` (condition, episode, mean, std, n_seeds, one column per seed) and ``.png``. The x-axis
is the episode (env steps / episode length of each agent's run).
"""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path

from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lfcs.analysis.results import _identity, _label, find_runs
from lfcs.running.scripting import OneLineParser, existing_dir, fail, output_dir

PROG = "plot_probes.py"


def probe_curves(run: Path, tag: str) -> dict[int, dict[int, float]]:
    """seed -> {episode: value} from every agent's event file of one run."""
    cfg = OmegaConf.load(run / "config.yaml")
    steps_per_episode = int(cfg.env.max_episode_steps or 1)
    curves = {}
    for agent_dir in sorted((run / "tb").glob("agent_*")):
        events = EventAccumulator(str(agent_dir), size_guidance={"scalars": 0})
        events.Reload()
        if tag not in events.Tags()["scalars"]:
            continue
        agent = int(agent_dir.name.removeprefix("agent_"))
        curves[int(cfg.seed) + agent] = {e.step // steps_per_episode: e.value for e in events.Scalars(tag)}
    return curves


def parse(argv: list[str]):
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=existing_dir)
    parser.add_argument("--tag", default="probe/intrinsic_dim")
    parser.add_argument("--out", type=output_dir, default="results/probes")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    conditions: dict[str, tuple[str, dict[int, dict[int, float]]]] = {}
    for run in find_runs(args.dirs):
        key = _identity(OmegaConf.to_container(OmegaConf.load(run / "config.yaml"), resolve=True))
        label, curves = conditions.setdefault(key, (_label(run), {}))
        curves.update(probe_curves(run, args.tag))
    conditions = {k: v for k, v in conditions.items() if v[1]}
    if not conditions:
        fail(PROG, f"--tag {args.tag} is not allowed: no such scalars under {', '.join(map(str, args.dirs))}")
    args.out.mkdir(parents=True, exist_ok=True)
    name = args.tag.replace("/", "_")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    with open(args.out / f"{name}.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        seeds_all = sorted({s for _, curves in conditions.values() for s in curves})
        writer.writerow(["condition", "episode", "mean", "std", "n_seeds", *[f"seed_{s}" for s in seeds_all]])
        for label, curves in conditions.values():
            episodes = sorted({e for c in curves.values() for e in c})
            means, stds = [], []
            for episode in episodes:
                values = [c[episode] for c in curves.values() if episode in c and c[episode] == c[episode]]
                mean = statistics.fmean(values) if values else float("nan")
                std = statistics.stdev(values) if len(values) > 1 else float("nan")
                means.append(mean)
                stds.append(std)
                row = [curves[s].get(episode, "") if s in curves else "" for s in seeds_all]
                writer.writerow([label, episode, f"{mean:.4f}", f"{std:.4f}", len(values), *row])
            ax.plot(episodes, means, label=f"{label} (n={len(curves)})")
            ax.fill_between(episodes, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                            alpha=0.2)  # fmt: skip
    ax.set_xlabel("episode")
    ax.set_ylabel(args.tag)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out / f"{name}.png", dpi=120)
    print(f"wrote {args.out / (name + '.csv')} and .png")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
