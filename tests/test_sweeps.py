"""Sweeps and launchers: an Optuna study that survives kill -9, joblib and submitit multiruns, aggregation."""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import sys
import time

import optuna

from tests.conftest import ROOT, run_script

QUICK = ["iterations=2", "num_agents=1", "network.num_neurons=20", "progress=false"]


def completed_trials(sweep_dir):
    try:
        study = optuna.load_study(study_name="pong100_lfcs", storage=f"sqlite:///{sweep_dir}/optuna.db")
    except Exception:  # the sweeper has not created the database or the study yet
        return []
    return [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]


def test_optuna_sweep_killed_and_rerun_continues_the_study(tmp_path):
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, "scripts/train.py", "hparams_search=pong100_optuna", *QUICK, f"hydra.sweep.dir={sweep}"]
    log = tmp_path / "sweep.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen([*cmd, "hydra.sweeper.n_trials=50"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        # Open the database only once trials have run, so the poll never races the sweeper creating it.
        if len(list(sweep.rglob("summary.json"))) >= 2 and len(completed_trials(sweep)) >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    before = completed_trials(sweep)
    assert len(before) >= 2, log.read_text()[-2000:]
    rerun = subprocess.run([*cmd, "hydra.sweeper.n_trials=2"], cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    after = completed_trials(sweep)
    assert len(after) >= len(before) + 2
    assert {t.number for t in before} <= {t.number for t in after}  # the earlier trials are kept
    assert all(t.value is not None for t in after)
    check_new_points_and_own_folders(sweep, after)


def check_new_points_and_own_folders(sweep, trials):
    """Every trial sampled its own point and trained in its own folder, whose objective is the stored value."""
    points = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(points)) == len(points), "a continued study proposed earlier points again"
    folders: dict[int, list] = {}
    for summary in sweep.rglob("summary.json"):
        number = re.search(r"(?:^|/)trial=(\d+)(?:/|$)", str(summary.relative_to(sweep)))
        assert number, f"{summary}: no trial number in the path"
        folders.setdefault(int(number.group(1)), []).append(summary)
    for trial in trials:
        (summary,) = folders[trial.number]  # one folder per trial
        assert json.loads(summary.read_text())["objective"] == trial.value, summary


def test_optuna_study_from_scratch_is_reproducible_and_continues_with_new_points(tmp_path):
    def study(name):
        sweep = tmp_path / name
        cmd = ["scripts/train.py", "hparams_search=pong100_optuna", *QUICK, f"hydra.sweep.dir={sweep}"]
        for _ in range(2):  # the same command twice: a start and a continuation
            result = run_script(*cmd, "hydra.sweeper.n_trials=1")
            assert result.returncode == 0, result.stderr[-2000:]
        trials = completed_trials(sweep)
        check_new_points_and_own_folders(sweep, trials)
        return [t.params for t in trials]

    first = study("first")
    assert len(first) == 2
    assert study("again") == first


def multirun(launcher, tmp_path, iterations):
    sweep = tmp_path / launcher
    result = run_script(
        "scripts/train.py",
        "-m",
        f"launcher={launcher}",
        "seed=0,1",
        f"iterations={iterations}",
        "num_agents=1",
        "network.num_neurons=20",
        "progress=false",
        f"hydra.sweep.dir={sweep}",
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep


def test_joblib_multirun_puts_the_seed_last_and_aggregates(tmp_path):
    sweep = multirun("joblib", tmp_path, iterations=50)
    runs = sorted(p.parent.relative_to(sweep) for p in sweep.rglob("summary.json"))
    assert [r.name for r in runs] == ["seed=0", "seed=1"]
    assert runs[0].parent == runs[1].parent and "seed" not in str(runs[0].parent)
    result = run_script("scripts/aggregate.py", str(sweep))
    assert result.returncode == 0, result.stderr
    with open(sweep / "summary.csv") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["n_seeds"] == "2"
    with open(sweep / "curves.csv") as handle:
        header = next(csv.reader(handle))
    assert header == ["condition", "episode", "mean", "std", "n_seeds", "seed_0", "seed_1"]
    assert (sweep / "curves.png").stat().st_size > 0


def test_submitit_local_multirun(tmp_path):
    sweep = multirun("submitit_local", tmp_path, iterations=1)
    assert len(list(sweep.rglob("summary.json"))) == 2


def test_a_trial_never_reports_an_earlier_runs_result_as_its_own(tmp_path):
    """Two trials of one point forced into one folder: the second is refused, not scored with the first's run."""
    point = {
        "learner.lr": 1e-3,
        "learner.eps": 0.2,
        "learner.n_passes": 2,
        "learner.gamma": 0.99,
        "network.readout_gain": 2.5,
    }
    params = "{" + ",".join(f'{key}:"choice({value})"' for key, value in point.items()) + "}"
    result = run_script(
        "scripts/train.py",
        "hparams_search=pong100_optuna",
        *QUICK,
        f"hydra.sweep.dir={tmp_path}",
        "hydra.sweeper.n_trials=2",
        f"hydra.sweeper.params={params}",
        "hydra.sweep.subdir=shared",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "already holds a finished run" in line
    assert len(completed_trials(tmp_path)) == 1
