"""Sweeps and launchers: an Optuna study that survives kill -9, joblib and submitit multiruns, aggregation."""

from __future__ import annotations

import csv
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
    proc = subprocess.Popen(
        [*cmd, "hydra.sweeper.n_trials=50"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if (sweep / "optuna.db").exists() and len(completed_trials(sweep)) >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    before = completed_trials(sweep)
    assert len(before) >= 2
    rerun = subprocess.run([*cmd, "hydra.sweeper.n_trials=2"], cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    after = completed_trials(sweep)
    assert len(after) >= len(before) + 2
    assert {t.number for t in before} <= {t.number for t in after}  # the earlier trials are kept
    assert all(t.value is not None for t in after)


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
