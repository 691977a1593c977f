"""What an Optuna sweep found: trials as CSV, optimisation history and parameter importances as PNG, and the best
trial as an experiment file (``experiment=NAME`` reruns it).

Used by ``scripts/study.py SWEEP_DIR`` and, at the end of every ``hparams_search=...`` sweep, by the Hydra callback
:class:`StudyReport`. The experiment file holds the best trial's whole configuration as the difference from the
defaults of its env/network/learner choices, so it does not depend on the sweep's command line or on
``hparams_search`` (which would start a new sweep).
"""

from __future__ import annotations

import csv
import logging
import warnings
from pathlib import Path
from typing import Any

import optuna
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from lfcs.config import register_schema

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
DB_NAME = "optuna.db"
GROUPS = ("env", "network", "learner")  # config groups an experiment file selects with `override /group: choice`
NOT_EXPERIMENT = ("hydra", "hparams_search", "launcher", "experiment", "resume", "run_dir")
log = logging.getLogger(__name__)


def sweep_overrides(sweep_dir: Path) -> list[str]:
    """The command-line overrides of the sweep (taken from one trial's ``.hydra/overrides.yaml``), or []."""
    for path in sorted(sweep_dir.rglob(".hydra/overrides.yaml")):
        return [str(o) for o in OmegaConf.load(path)]
    return []


def load_study(sweep_dir: Path, study_name: str | None = None) -> optuna.Study:
    """The study in ``SWEEP_DIR/optuna.db``: the one named, else the only one there."""
    storage = f"sqlite:///{sweep_dir / DB_NAME}"
    if not (sweep_dir / DB_NAME).is_file():
        raise FileNotFoundError(f"no {DB_NAME} in {sweep_dir}: is it the hydra.sweep.dir of an Optuna sweep?")
    if study_name is None:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        if len(names) != 1:
            raise ValueError(f"{sweep_dir / DB_NAME} holds studies {names}: name one with --study-name")
        study_name = names[0]
    return optuna.load_study(study_name=study_name, storage=storage)


def write_trials_csv(study: optuna.Study, path: Path) -> None:
    params = sorted({name for t in study.trials for name in t.params})
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["number", "state", "value", "datetime_start", "datetime_complete", "duration_s", *params])
        for t in study.trials:
            duration = t.duration.total_seconds() if t.duration is not None else ""
            row = [t.number, t.state.name, "" if t.value is None else t.value, t.datetime_start, t.datetime_complete]
            writer.writerow([*row, duration, *(t.params.get(name, "") for name in params)])


def _save_plot(plot, path: Path, **kwargs) -> None:
    """Optuna 2.10's matplotlib plots call ``matplotlib.cm.get_cmap``, gone since matplotlib 3.9: lend it back."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    missing = not hasattr(matplotlib.cm, "get_cmap")
    if missing:
        matplotlib.cm.get_cmap = matplotlib.colormaps.get_cmap
    try:
        with warnings.catch_warnings():  # "plot_param_importances is experimental" on every call
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            ax = plot(**kwargs)
        ax.figure.set_size_inches(8, 5)
        ax.figure.tight_layout()
        ax.figure.savefig(path, dpi=100)
        plt.close(ax.figure)
    finally:
        if missing:
            del matplotlib.cm.get_cmap


def _override_key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def _compose(overrides: list[str], **kwargs) -> DictConfig:
    """compose() with lfcs's conf/, also from inside a running Hydra app (the end-of-sweep callback)."""
    register_schema()
    if GlobalHydra.instance().is_initialized():
        return compose("config", overrides=overrides, **kwargs)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=overrides, **kwargs)


def best_config(study: optuna.Study, overrides: list[str]) -> tuple[DictConfig, dict[str, str]]:
    """The best trial's composed configuration and its group choices, from the sweep's overrides and its params."""
    best = study.best_params
    fixed = [o for o in overrides if _override_key(o) not in best and not _override_key(o).startswith("hydra")]
    trial = [*fixed, *(f"{key}={value!r}" for key, value in best.items())]
    cfg = _compose(trial, return_hydra_config=True)
    choices = {group: cfg.hydra.runtime.choices[group] for group in GROUPS}
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


def _difference(config: dict, base: dict) -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            sub = _difference(value, base[key])
            if sub:
                out[key] = sub
        elif base.get(key, object()) != value:
            out[key] = value
    return out


def experiment_text(study: optuna.Study, overrides: list[str], source: str) -> str:
    """An experiment file (``# @package _global_``) that composes to the best trial's configuration."""
    cfg, choices = best_config(study, overrides)
    base = _compose([f"{group}={choice}" for group, choice in choices.items()])
    values = _difference(OmegaConf.to_container(cfg), OmegaConf.to_container(base))
    values = {key: value for key, value in values.items() if key not in NOT_EXPERIMENT}
    best = study.best_trial
    header = [
        "# @package _global_",
        f"# Best trial of Optuna study {study.study_name!r} in {source}: trial {best.number}, objective {best.value}.",
        "# Written by scripts/study.py; rerun it with: python scripts/train.py experiment=<this file's name>",
        "defaults:",
        *(f"  - override /{group}: {choice}" for group, choice in choices.items()),
    ]
    return "\n".join(header) + "\n\n" + OmegaConf.to_yaml(OmegaConf.create(values))


def write_report(sweep_dir: Path, study_name: str | None = None, experiment_path: Path | None = None) -> list[Path]:
    """trials.csv, history.png, importances.png and best_experiment.yaml in ``sweep_dir``; returns what was written."""
    from optuna.importance import MeanDecreaseImpurityImportanceEvaluator
    from optuna.visualization.matplotlib import plot_optimization_history, plot_param_importances

    sweep_dir = Path(sweep_dir)
    study = load_study(sweep_dir, study_name)
    written = [sweep_dir / "trials.csv"]
    write_trials_csv(study, written[0])
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        log.warning("study %s has no complete trial: only trials.csv written", study.study_name)
        return written
    _save_plot(plot_optimization_history, sweep_dir / "history.png", study=study)
    written.append(sweep_dir / "history.png")
    if len(complete) >= 2:
        # Optuna 2.10's default (fANOVA) fails on scikit-learn >= 1.3 trees; mean decrease in impurity works.
        evaluator = MeanDecreaseImpurityImportanceEvaluator(seed=0)
        _save_plot(plot_param_importances, sweep_dir / "importances.png", study=study, evaluator=evaluator)
        written.append(sweep_dir / "importances.png")
    text = experiment_text(study, sweep_overrides(sweep_dir), str(sweep_dir))
    for path in (sweep_dir / "best_experiment.yaml", experiment_path):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(path)
    return written


class StudyReport(Callback):
    """Hydra callback: :func:`write_report` at the end of an Optuna sweep (a few seconds); never fails the sweep."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            written = write_report(sweep_dir, OmegaConf.select(config, "hydra.sweeper.study_name"))
        except Exception as exc:  # a report is a convenience: say why it is missing, keep the sweep's result
            log.warning("no study report in %s: %s: %s", sweep_dir, type(exc).__name__, exc)
            return
        log.info("study report: %s", ", ".join(str(p) for p in written))
