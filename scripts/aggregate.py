"""Aggregate lfcs runs: python scripts/aggregate.py RUN_OR_MULTIRUN_DIR [...] [--out DIR] [--reference CSV]

Writes into --out (default: the first directory):
  curves.csv   condition, episode, mean, std, n_seeds, then one column per seed (METHOD.md §4 metric)
  curves.png   mean +- std over seeds per condition, thin per-seed lines
  summary.csv  one row per condition, ranked by final reward (mean of the last 5 windows)
With --reference (e.g. ../shared/reference/official_pong100.csv), the authors' curves are drawn too and
reference_check.csv compares every condition named like the reference's methods at each 250-episode mark.
"""

from __future__ import annotations

import csv
import math
import statistics
import sys
from pathlib import Path

from lfcs.analysis.results import Condition, fisher_exact_two_sided, load_conditions, load_reference, within_seed_noise
from lfcs.errors import ResultsError
from lfcs.running.scripting import OneLineParser, existing_dir, existing_file, guarded, integer, output_dir

PROG = "aggregate.py"

MARK_EVERY = 250


def write_curves(conds: list[Condition], path: Path) -> None:
    seeds = sorted({seed for c in conds for seed in c.curves})
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["condition", "episode", "mean", "std", "n_seeds", *[f"seed_{s}" for s in seeds]])
        for cond in conds:
            for episode in cond.episodes():
                mean, std, n = cond.stats(episode)
                per_seed = [cond.curves.get(s, {}).get(episode, "") for s in seeds]
                writer.writerow([cond.label, episode, f"{mean:.4f}", f"{std:.4f}", n, *per_seed])


def write_summary(conds: list[Condition], path: Path) -> list[dict]:
    rows = []
    for cond in conds:
        finals = list(cond.final_per_seed().values())
        wall = [w for w in cond.wall_clock_s if not math.isnan(w)]
        rows.append(
            {
                "condition": cond.label,
                "final_mean": statistics.fmean(finals),
                "final_std": statistics.stdev(finals) if len(finals) > 1 else float("nan"),
                "n_seeds": len(finals),
                "seeds_above_0": sum(f > 0 for f in finals),
                "episodes_to_-0.5": cond.episodes_to_reach() or "",
                "last_episode": cond.episodes()[-1] if cond.episodes() else 0,
                "wall_clock_s": f"{max(wall):.0f}" if wall else "",
            }
        )
    rows.sort(key=lambda r: -r["final_mean"])
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()})
    return rows


def write_reference_check(conds: list[Condition], refs: list[Condition], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "condition",
                "reference",
                "episode",
                "mean",
                "std",
                "n",
                "ref_mean",
                "ref_std",
                "ref_n",
                "difference",
                "two_combined_se",
                "within_seed_noise",
            ]
        )
        for ref in refs:
            method = ref.label.removeprefix("official_")
            for cond in conds:
                if f"pong100_{method}" not in cond.label:
                    continue
                ours, theirs = cond.final_per_seed().values(), ref.final_per_seed().values()
                k1, k2 = sum(f > 0 for f in ours), sum(f > 0 for f in theirs)
                p_value = fisher_exact_two_sided(k1, len(ours), k2, len(theirs))
                print(
                    f"{cond.label} vs {ref.label}: seeds ending above 0 (last 5 windows): {k1}/{len(ours)} vs "
                    f"{k2}/{len(theirs)} (Fisher exact p = {p_value:.2f})"
                )
                for episode in [e for e in ref.episodes() if e % MARK_EVERY == 0 and e in cond.episodes()]:
                    diff, bound, ok = within_seed_noise(cond, ref, episode)
                    mean, std, n = cond.stats(episode)
                    rmean, rstd, rn = ref.stats(episode)
                    writer.writerow(
                        [
                            cond.label,
                            ref.label,
                            episode,
                            f"{mean:.3f}",
                            f"{std:.3f}",
                            n,
                            f"{rmean:.3f}",
                            f"{rstd:.3f}",
                            rn,
                            f"{diff:+.3f}",
                            f"{bound:.3f}",
                            ok,
                        ]
                    )


def plot(conds: list[Condition], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for i, cond in enumerate(conds):
        colour = f"C{i % 10}"
        episodes = cond.episodes()
        for curve in cond.curves.values():
            xs = sorted(curve)
            ax.plot(xs, [curve[x] for x in xs], color=colour, lw=0.5, alpha=0.35)
        stats = [cond.stats(e) for e in episodes]
        means = [s[0] for s in stats]
        stds = [0.0 if math.isnan(s[1]) else s[1] for s in stats]
        ax.plot(episodes, means, color=colour, lw=2, label=f"{cond.label} (n={len(cond.curves)})")
        ax.fill_between(
            episodes,
            [m - s for m, s in zip(means, stds)],
            [m + s for m, s in zip(means, stds)],
            color=colour,
            alpha=0.15,
        )
    ax.set_xlabel("episode")
    ax.set_ylabel("mean episode reward, last 50 episodes")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse(argv: list[str]):
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=existing_dir)
    parser.add_argument("--out", type=output_dir, default=None)
    parser.add_argument("--reference", type=existing_file, default=None)
    parser.add_argument("--max-episode", type=integer(1), default=None, help="cut every curve here (equal horizons)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    return guarded(PROG, lambda: aggregate(args))


def aggregate(args) -> None:
    try:
        refs = load_reference(args.reference) if args.reference else []
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        allowed = f"a CSV with columns method, seed, episode, reward_mean50 ({type(exc).__name__}: {exc})"
        raise ResultsError(f"--reference {args.reference} is not allowed: {allowed}") from exc
    conds = [c for c in load_conditions(args.dirs) if c.curves]
    if not conds:
        raise ResultsError(f"no runs with 50 or more episodes under {', '.join(map(str, args.dirs))}")
    if args.max_episode is not None:
        for cond in conds + refs:
            cond.curves = {s: {e: v for e, v in c.items() if e <= args.max_episode} for s, c in cond.curves.items()}
    out = args.out or args.dirs[0]
    out.mkdir(parents=True, exist_ok=True)
    write_curves(conds + refs, out / "curves.csv")
    rows = write_summary(conds + refs, out / "summary.csv")
    plot(conds + refs, out / "curves.png")
    if refs:
        write_reference_check(conds, refs, out / "reference_check.csv")
    for row in rows:
        print(f"{row['condition']}: final {row['final_mean']:+.3f} +- {row['final_std']:.3f} (n={row['n_seeds']})")
    print(f"wrote {out / 'curves.csv'}, {out / 'curves.png'}, {out / 'summary.csv'}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
