"""Evaluate a trained agent's pi_ref on held-out seeds and write eval.json (and an MP4 with --video).

    python scripts/evaluate.py PATH [--episodes 100] [--policy greedy|sample] [--agent B] [--out FILE]
                               [--video FILE.mp4 --video-episodes 3]

PATH is a run directory or a checkpoint file; the seeds are documented in lfcs/export/evaluate.py. Without --out,
eval.json goes into the run directory, and the evaluation of a checkpoint file outside a run directory (a zoo
file) into <file name>.eval.json in the working directory.
"""

import sys
from pathlib import Path

from lfcs.running.scripting import OneLineParser, guarded, integer, output_file

PROG = "evaluate.py"
POLICY_MODES = ("greedy", "sample")  # lfcs.export.evaluate.POLICY_MODES (checked there too)


def parse(argv: list[str]):
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="run directory or checkpoint file")
    parser.add_argument("--episodes", type=integer(1), default=100)
    parser.add_argument("--policy", choices=POLICY_MODES, default="greedy")
    parser.add_argument("--agent", type=integer(0), default=None, help="global agent id (default: the first)")
    parser.add_argument("--out", type=output_file(), help="default: <run dir>/eval.json or ./<name>.eval.json")
    parser.add_argument("--video", type=output_file(".mp4"), default=None, help="MP4 file of the first episodes")
    parser.add_argument("--video-episodes", type=integer(1), default=3)
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)

    def run() -> None:
        from lfcs.export.evaluate import default_out, evaluate, write_json
        from lfcs.export.saved_agent import load_agent

        saved = load_agent(args.path, args.agent)
        result = evaluate(saved, args.episodes, args.policy, args.video, args.video_episodes, not args.no_progress)
        out = args.out or default_out(saved, Path.cwd())
        write_json(result, out)
        ci = result["ci95"]
        print(
            f"agent {saved.agent} ({saved.path.name}, episode {saved.episode}), {args.policy}, "
            f"{args.episodes} episodes: mean {result['mean']:+.3f}, IQM {result['iqm']:+.3f}, "
            f"95% CI [{ci[0]:+.3f}, {ci[1]:+.3f}] -> {out}"
        )
        if args.video is not None:
            print(f"video: {args.video}")

    return guarded(PROG, run)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
