"""Explain an Optuna sweep: python scripts/study.py SWEEP_DIR [--experiment-name NAME] [--study-name NAME].

Writes SWEEP_DIR/trials.csv, history.png, importances.png and best_experiment.yaml (the best trial as an experiment
file); with --experiment-name NAME also conf/experiment/NAME.yaml, so that `experiment=NAME` reruns the best trial.
"""

import argparse
import re
import sys
from pathlib import Path

from lfcs.running.scripting import OneLineParser, existing_dir, fail

PROG = "study.py"
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"  # lfcs.running.study.CONF_DIR
EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=-]*")  # a file name in conf/experiment/, as experiment=NAME


def experiment_name(text: str) -> str:
    """argparse type: the name of a new experiment file."""
    if not EXPERIMENT_NAME.fullmatch(text):
        allowed = "a file name of letters, digits, _ . = - (not starting with . or -)"
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: {allowed}")
    path = CONF_DIR / "experiment" / f"{text}.yaml"
    if path.exists():
        raise argparse.ArgumentTypeError(f"{text} is not allowed: {path} exists (choose another name)")
    return text


def parse(argv: list[str]):
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=existing_dir, help="hydra.sweep.dir of an hparams_search=... sweep")
    parser.add_argument("--study-name", help="the study in SWEEP_DIR/optuna.db (default: the only one there)")
    parser.add_argument("--experiment-name", type=experiment_name, help="also write conf/experiment/NAME.yaml")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    import optuna

    from lfcs.running.study import DB_NAME, write_report

    experiment = CONF_DIR / "experiment" / f"{args.experiment_name}.yaml" if args.experiment_name else None
    try:
        written = write_report(args.sweep_dir, args.study_name, experiment)
    except KeyError:  # optuna: no study of that name
        if args.study_name is None:
            raise
        names = [s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{args.sweep_dir / DB_NAME}")]
        fail(PROG, f"--study-name {args.study_name} is not allowed: {args.sweep_dir / DB_NAME} holds studies {names}")
    except (FileNotFoundError, ValueError) as exc:
        fail(PROG, str(exc))
    for path in written:
        print(f"wrote {path}")
    name = args.experiment_name or "NAME"
    if experiment is None:
        print(f"rerun the best trial: cp {args.sweep_dir / 'best_experiment.yaml'} conf/experiment/{name}.yaml")
    print(f"  python scripts/train.py experiment={name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
