"""Evaluate a trained agent's pi_ref on held-out seeds and write eval.json (and an MP4 with --video).

    python scripts/evaluate.py PATH [--episodes 100] [--policy greedy|sample] [--agent B] [--out FILE]
                               [--video FILE.mp4 --video-episodes 3]

PATH is a run directory or a checkpoint file; the seeds are documented in lfcs/export/evaluate.py.
"""

import sys
from pathlib import Path

from lfcs.export.evaluate import POLICY_MODES, evaluate, write_json
from lfcs.export.saved_agent import load_agent
from lfcs.running.scripting import OneLineParser, guarded

PROG = "evaluate.py"


def main(argv: list[str]) -> int:
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="run directory or checkpoint file")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--policy", choices=POLICY_MODES, default="greedy")
    parser.add_argument("--agent", type=int, default=None, help="global agent id (default: the first)")
    parser.add_argument("--out", type=Path, default=None, help="default: <run dir>/eval.json")
    parser.add_argument("--video", type=Path, default=None, help="MP4 file of the first episodes")
    parser.add_argument("--video-episodes", type=int, default=3)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    def run() -> None:
        saved = load_agent(args.path, args.agent)
        result = evaluate(saved, args.episodes, args.policy, args.video, args.video_episodes, not args.no_progress)
        out = args.out or saved.run_dir / "eval.json"
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
