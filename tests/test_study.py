"""scripts/study.py on a small real study (trials told through the Optuna API, no training)."""

from __future__ import annotations

import csv

import optuna
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from tests.conftest import ROOT, run_script

STUDY = "pong100_lfcs"
# What a trial of `hparams_search=pong100_optuna network.num_neurons=20` records in its .hydra/overrides.yaml.
SWEEP_OVERRIDES = ["hparams_search=pong100_optuna", "network.num_neurons=20", "iterations=7"]
TRIALS = [  # (learner.lr, learner.n_passes, objective)
    (1e-3, 1, -1.5),
    (3e-3, 2, -0.25),  # the best
    (2e-4, 2, -1.0),
    (5e-3, 1, -0.75),
]


def make_sweep(sweep_dir):
    study = optuna.create_study(study_name=STUDY, storage=f"sqlite:///{sweep_dir}/optuna.db", direction="maximize")
    distributions = {
        "learner.lr": optuna.distributions.LogUniformDistribution(1e-4, 1e-2),
        "learner.n_passes": optuna.distributions.IntUniformDistribution(1, 3),
    }
    for lr, n_passes, value in TRIALS:
        params = {"learner.lr": lr, "learner.n_passes": n_passes}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, value=value))
    trial_dir = sweep_dir / "learner.lr=0.003,learner.n_passes=2" / "seed=0" / ".hydra"
    trial_dir.mkdir(parents=True)
    overrides = OmegaConf.create([*SWEEP_OVERRIDES, "learner.lr=0.003", "learner.n_passes=2"])
    OmegaConf.save(overrides, trial_dir / "overrides.yaml")


def test_study_report_writes_csv_plots_and_a_rerunnable_best_experiment(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    make_sweep(sweep)
    result = run_script("scripts/study.py", str(sweep))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "experiment=" in result.stdout

    with open(sweep / "trials.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["value"]) for r in rows] == [value for *_, value in TRIALS]
    assert [float(r["learner.lr"]) for r in rows] == [lr for lr, *_ in TRIALS]
    for name in ("history.png", "importances.png"):
        assert (sweep / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The experiment file, put where Hydra looks for experiments, composes to the best trial's configuration.
    extra = tmp_path / "conf_extra" / "experiment"
    extra.mkdir(parents=True)
    (extra / "best.yaml").write_text((sweep / "best_experiment.yaml").read_text())
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        rerun = compose("config", overrides=["experiment=best", f"hydra.searchpath=[file://{extra.parent}]"])
        trial = compose("config", overrides=[*SWEEP_OVERRIDES, "learner.lr=0.003", "learner.n_passes=2"])
    assert rerun.learner.lr == 3e-3 and rerun.learner.n_passes == 2
    assert rerun.network.num_neurons == 20 and rerun.iterations == 7
    assert rerun.num_agents == trial.num_agents == 4  # from hparams_search=pong100_optuna
    assert OmegaConf.to_container(rerun) == OmegaConf.to_container(trial)


def test_study_report_names_the_study_when_the_database_holds_several(tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    for name in ("a", "b"):
        optuna.create_study(study_name=name, storage=storage)
    result = run_script("scripts/study.py", str(tmp_path))
    assert result.returncode == 2
    assert "--study-name" in result.stderr


def test_an_optuna_sweep_explains_itself_when_it_ends(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_script(
        "scripts/train.py",
        "hparams_search=pong100_optuna",
        "hydra.sweeper.n_trials=2",
        "iterations=2",
        "num_agents=1",
        "network.num_neurons=20",
        f"hydra.sweep.dir={sweep}",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("trials.csv", "history.png", "importances.png", "best_experiment.yaml"):
        assert (sweep / name).stat().st_size > 0, name
    text = (sweep / "best_experiment.yaml").read_text()
    assert text.startswith("# @package _global_") and "num_neurons: 20" in text
