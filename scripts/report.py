"""Report lfcs conditions at one episode budget, with the statistics a reviewer asks for.

    python scripts/report.py DIR [DIR ...] [--budget EPISODES] [--baseline LABEL] [--threshold REWARD]
                             [--reps 10000] [--seed 0] [--bands] [--drop-short] [--out DIR]

Runs under the DIRs are grouped into conditions as scripts/aggregate.py does (configuration minus seed-like keys,
labelled by the multirun folder), listed in the order of the DIRs. At budget E (default: the largest episode that
every seed of every condition reached; a multiple of the 50-episode window), per condition:
- final reward of a seed: the mean reward_mean50 of its last 5 windows ending at or before E (lfcs/analysis/results.py);
- IQM: scipy.stats.trim_mean(finals, 0.25) over seeds, with a 95 % percentile-bootstrap CI from
  scipy.stats.bootstrap (seeds resampled within the condition; --reps resamples; numpy.random.default_rng(--seed),
  fresh for every interval); mean and std (ddof 1);
- probability of improvement over the baseline (--baseline, default the first condition): the mean over all seed
  pairs of 1[x > y] + 1/2 1[x == y], with a CI resampling both conditions' seeds independently;
- episodes to --threshold (default 0.0): per seed the first window end <= E where reward_mean50 >= threshold;
  the median over seeds (a seed that never got there counts as never) and how many seeds got there, also in env
  steps; the runs' wall-clock per million env steps (a cost on the runs' machine);
- performance profile: the fraction of seeds whose final reward is > tau, over a grid of taus.
A condition with a seed short of E is an error (with --drop-short: left out, and said so). One seed has no CI.

Writes into --out (default: the first DIR): report.csv (one row per condition, then the configuration values on
which the conditions differ), profile.csv and profile.png (the performance profiles; --bands adds bootstrap
bands), report.json (command, budget, baseline, bootstrap settings, each condition's runs, seeds and finals).
"""

from __future__ import annotations

import csv
import json
import math
import shlex
import sys
from pathlib import Path

import numpy as np
import scipy

from lfcs.analysis import report, stats
from lfcs.analysis.results import FINAL_WINDOWS, WINDOW, load_conditions
from lfcs.errors import ResultsError
from lfcs.running.scripting import OneLineParser, existing_dir, guarded, integer, number, output_dir

PROG = "report.py"


def cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows({key: cell(value) for key, value in row.items()} for row in rows)


def write_profiles(taus: np.ndarray, curves: dict, path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["condition", "tau", "fraction_above", "band_low", "band_high"])
        for label, (fraction, low, high) in curves.items():
            for i, tau in enumerate(taus):
                band = ("", "") if low is None else (cell(float(low[i])), cell(float(high[i])))
                writer.writerow([label, cell(float(tau)), cell(float(fraction[i])), *band])


def plot_profiles(taus: np.ndarray, curves: dict, rows: list[dict], budget: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for i, row in enumerate(rows):
        fraction, low, high = curves[row["condition"]]
        colour = f"C{i % 10}"
        label = f"{row['condition']} (n={row['n_seeds']})"
        ax.plot(taus, fraction, color=colour, lw=2, drawstyle="steps-post", label=label)
        if low is not None:
            ax.fill_between(taus, low, high, color=colour, alpha=0.15, lw=0, step="post")
    ax.set_xlabel(f"tau: final reward (mean reward_mean50 of the last {FINAL_WINDOWS} windows to episode {budget})")
    ax.set_ylabel("fraction of seeds with final reward > tau")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def print_table(rows: list[dict], baseline: str, threshold: float) -> None:
    width = max(len(row["condition"]) for row in rows)
    print(f"baseline: {baseline}; threshold: reward_mean50 >= {threshold:g}")
    print(
        f"{'condition':<{width}}  {'n':>3}  IQM [95% CI]              mean +- std      "
        "P(> baseline) [95% CI]  median episodes to threshold (seeds there)  P(sooner) [95% CI]"
    )
    for row in rows:
        median = row["episodes_to_threshold_median"]
        print(
            f"{row['condition']:<{width}}  {row['n_seeds']:>3}  {row['iqm']:+.3f} [{row['iqm_ci_low']:+.3f}, "
            f"{row['iqm_ci_high']:+.3f}]  {row['mean']:+.3f} +- {row['std']:.3f}  {row['prob_improvement']:.3f} "
            f"[{row['pi_ci_low']:.3f}, {row['pi_ci_high']:.3f}]  "
            f"{'never' if median is None else median} ({row['seeds_reached_threshold']}/{row['n_seeds']})  "
            f"{row['prob_fewer_episodes']:.3f} [{row['pfe_ci_low']:.3f}, {row['pfe_ci_high']:.3f}]"
        )


def parse(argv: list[str]):
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=existing_dir, help="run or multirun directories")
    parser.add_argument("--budget", type=integer(1), default=None, help="episodes (default: all seeds reached)")
    parser.add_argument("--baseline", default=None, help="label of the baseline condition (default: the first)")
    parser.add_argument("--threshold", type=number(), default=0.0, help="reward_mean50 for episodes to threshold")
    parser.add_argument("--reps", type=integer(1), default=10_000, help="bootstrap resamples")
    parser.add_argument("--seed", type=integer(0), default=0, help="seed of every bootstrap's numpy generator")
    parser.add_argument("--bands", action="store_true", help="bootstrap bands around the performance profiles")
    parser.add_argument("--drop-short", action="store_true", help="leave out conditions with seeds short of --budget")
    parser.add_argument("--out", type=output_dir, default=None, help="default: the first DIR")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)

    def run() -> None:
        conds = report.in_dir_order([c for c in load_conditions(args.dirs) if c.curves], args.dirs)
        if not conds:
            raise ResultsError(f"no runs with {WINDOW} or more episodes under {', '.join(map(str, args.dirs))}")
        budget = report.common_budget(conds) if args.budget is None else args.budget
        conds, excluded = report.reaching(conds, budget, args.drop_short)
        baseline = report.pick_baseline(conds, args.baseline, excluded)
        rows = report.report_rows(conds, baseline, budget, args.threshold, args.reps, args.seed)
        taus = report.profile_taus(conds, budget)
        curves = report.profiles(conds, budget, taus, args.bands, args.reps, args.seed)

        out = args.out or args.dirs[0]
        out.mkdir(parents=True, exist_ok=True)
        write_csv(rows, out / "report.csv")
        write_profiles(taus, curves, out / "profile.csv")
        plot_profiles(taus, curves, rows, budget, out / "profile.png")
        made = {
            "command": shlex.join(["python", "scripts/report.py", *argv]),
            "budget": budget,
            "budget_from": "--budget"
            if args.budget is not None
            else "the largest episode every seed of every condition reached",
            "baseline": baseline.label,
            "threshold": args.threshold,
            "final_windows": FINAL_WINDOWS,
            "window_episodes": WINDOW,
            "iqm": f"scipy.stats.trim_mean(finals, {stats.IQM_CUT})",
            "bootstrap": {
                "function": "scipy.stats.bootstrap",
                "method": "percentile",
                "confidence_level": stats.CONFIDENCE_LEVEL,
                "resamples": args.reps,
                "seed": args.seed,
                "rng": "numpy.random.default_rng(seed), fresh for every interval",
                "scipy": scipy.__version__,
            },
            "conditions": {
                cond.label: {
                    "runs": [str(run) for run in cond.runs],
                    "seeds": sorted(cond.curves),
                    "finals": {str(seed): final for seed, final in sorted(cond.final_per_seed(budget=budget).items())},
                }
                for cond in conds
            },
            "excluded": excluded,
        }
        (out / "report.json").write_text(json.dumps(made, indent=2) + "\n")
        for label, why in excluded.items():
            print(f"excluded {label}: {why}")
        print_table(rows, baseline.label, args.threshold)
        print(f"wrote {out / 'report.csv'}, {out / 'profile.csv'}, {out / 'profile.png'}, {out / 'report.json'}")

    return guarded(PROG, run)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
