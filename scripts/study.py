"""Explain an Optuna sweep: python scripts/study.py SWEEP_DIR [--experiment-name NAME] [--study-name NAME].

Writes SWEEP_DIR/trials.csv, history.png, importances.png and best_experiment.yaml (the best trial as an experiment
file); with --experiment-name NAME also conf/experiment/NAME.yaml, so that `experiment=NAME` reruns the best trial.
"""

import argparse
import sys
from pathlib import Path

from lfcs.running.cli import fail
from lfcs.running.study import CONF_DIR, write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="hydra.sweep.dir of an hparams_search=... sweep")
    parser.add_argument("--study-name", help="the study in SWEEP_DIR/optuna.db (default: the only one there)")
    parser.add_argument("--experiment-name", help="also write conf/experiment/NAME.yaml (refused if it exists)")
    args = parser.parse_args()
    experiment = CONF_DIR / "experiment" / f"{args.experiment_name}.yaml" if args.experiment_name else None
    if experiment is not None and experiment.exists():
        fail(f"--experiment-name={args.experiment_name} is not allowed: {experiment} exists (choose another name)")
    try:
        written = write_report(args.sweep_dir, args.study_name, experiment)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        fail(" ".join(str(exc).split()))
    for path in written:
        print(f"wrote {path}")
    name = args.experiment_name or "NAME"
    if experiment is None:
        print(f"rerun the best trial: cp {args.sweep_dir / 'best_experiment.yaml'} conf/experiment/{name}.yaml")
    print(f"  python scripts/train.py experiment={name}")


if __name__ == "__main__":
    sys.exit(main())
