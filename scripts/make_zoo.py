"""Cut trained runs into a model zoo: one small pi_ref checkpoint per agent, its eval.json, index.json, README.md.

    python scripts/make_zoo.py RUN_DIR... [--out zoo] [--name-prefix P] [--episodes 100]
                               [--frame FILE.png] [--raster FILE.png] [--no-progress]

Every agent of every run directory (or checkpoint file) becomes ``<out>/<P><method>_seed<k>.pt`` (method from
learner.timescale: fast -> lfcs, slow -> eprop; k = the run's seed + the agent id), evaluated greedily on the
held-out seeds of lfcs/export/evaluate.py into ``<name>.eval.json``, exactly what ``scripts/evaluate.py <file>`` writes.
--frame / --raster: a video frame (screen and action bars) / spike raster of the best lf-cs agent, for the README.
"""

import argparse
import os
import shlex
import sys
from pathlib import Path

from lfcs.running.scripting import OneLineParser, guarded, integer, output_dir, output_file

PROG = "make_zoo.py"
STATS = ("mean", "std", "iqm", "ci95")


def name_prefix(text: str) -> str:
    """argparse type: a prefix of file names, so no path separator."""
    if "/" in text or os.sep in text or "\0" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: a file name prefix (no '/')")
    return text


def parse(argv: list[str]):
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run directories or checkpoint files")
    parser.add_argument("--out", type=output_dir, default="zoo")
    parser.add_argument("--name-prefix", type=name_prefix, default="", help="put before every file name")
    parser.add_argument("--episodes", type=integer(1), default=100)
    parser.add_argument("--frame", type=output_file(".png"), help="PNG: one video frame of the best lf-cs agent")
    parser.add_argument("--raster", type=output_file(".png"), help="PNG: spike raster of the best lf-cs agent")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)

    def run() -> None:
        from tqdm import tqdm

        from lfcs.export.evaluate import evaluate, write_json
        from lfcs.export.saved_agent import load_agent
        from lfcs.export.zoo import best, eval_name, extract, snapshot, write_index

        entries = extract(args.runs, args.out, args.name_prefix)
        rows = []
        for entry in tqdm(entries, desc="zoo", unit="agent", file=sys.stderr, disable=args.no_progress):
            result = evaluate(load_agent(args.out / entry.file), args.episodes, "greedy", progress=False)
            write_json(result, args.out / eval_name(entry))
            rows.append({**vars(entry), "eval": eval_name(entry), **{key: result[key] for key in STATS}})
        top = best(rows)
        if args.frame or args.raster:
            snapshot(load_agent(args.out / top["file"]), args.frame, args.raster)
        image = args.frame or args.raster  # shown in the zoo README, by its path relative to it
        shown = None if image is None else Path(os.path.relpath(image, args.out)).as_posix()
        write_index(args.out, rows, shlex.join(["python", "scripts/make_zoo.py", *argv]), args.episodes, shown)
        for row in rows:
            low, high = row["ci95"]
            print(
                f"{args.out / row['file']} ({row['size_bytes'] / 1000:.1f} kB, {row['method']}, seed "
                f"{row['training_seed']}, episode {row['training_episodes']}): mean {row['mean']:+.3f}, "
                f"IQM {row['iqm']:+.3f}, 95% CI [{low:+.3f}, {high:+.3f}]"
            )
        print(f"best {top['method']}: {top['file']}; index: {args.out / 'index.json'}, {args.out / 'README.md'}")

    return guarded(PROG, run)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
