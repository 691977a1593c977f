"""Every flag of every script in scripts/ at the edge of what it allows: the last allowed value parses, the first
refused one is one line (``<script>: error: ...``) and exit 2, before anything is read or written.

In-process through each script's ``parse``; then each script once as a user runs it, from an empty folder that
must stay empty. scripts/train.py's flags (Hydra's) are in tests/test_train_checks.py.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import GOLDEN_DIR, ROOT, load_script, run_script

GOLDEN = sorted(GOLDEN_DIR.glob("*.npz"))[:1]

# (script, arguments allowed, arguments refused, words of the line); {tmp} is a folder with `file` (a file) in it.
CASES = [
    ("evaluate", ["R", "--episodes", "1"], ["R", "--episodes", "0"], "--episodes 0 is not allowed: an integer >= 1"),
    ("evaluate", ["R", "--episodes", "1"], ["R", "--episodes", "ten"], "--episodes ten is not allowed"),
    ("evaluate", ["R", "--agent", "0"], ["R", "--agent", "-1"], "--agent -1 is not allowed: an integer >= 0"),
    ("evaluate", ["R", "--policy", "sample"], ["R", "--policy", "best"], "invalid choice: 'best'"),
    ("evaluate", ["R", "--video-episodes", "1"], ["R", "--video-episodes", "0"], "--video-episodes 0"),
    ("evaluate", ["R", "--video", "{tmp}/v.mp4"], ["R", "--video", "{tmp}/v.gif"], "named *.mp4"),
    ("evaluate", ["R", "--out", "{tmp}/new/e.json"], ["R", "--out", "{tmp}"], "it is a directory"),
    ("evaluate", ["R", "--out", "{tmp}/e.json"], ["R", "--out", "{tmp}/file/e.json"], "file is a file"),
    ("evaluate", ["R"], [], "the following arguments are required: path"),
    ("export_nir", ["R", "{tmp}/a.nir"], ["R", "{tmp}/a.h5"], "named *.nir"),
    ("export_nir", ["R", "{tmp}/a.nir", "--agent", "0"], ["R", "{tmp}/a.nir", "--agent", "-1"], "--agent -1"),
    ("export_nir", ["R", "{tmp}/new/a.nir"], ["R", "{tmp}/file/a.nir"], "file is a file"),
    ("make_zoo", ["R", "--episodes", "1"], ["R", "--episodes", "0"], "--episodes 0 is not allowed"),
    ("make_zoo", ["R", "--out", "{tmp}/zoo"], ["R", "--out", "{tmp}/file"], "--out"),
    ("make_zoo", ["R", "--name-prefix", "x_"], ["R", "--name-prefix", "a/b"], "no '/'"),
    ("make_zoo", ["R", "--frame", "{tmp}/f.png"], ["R", "--frame", "{tmp}/f.jpg"], "named *.png"),
    ("make_zoo", ["R", "--raster", "{tmp}/r.png"], ["R", "--raster", "{tmp}/file/r.png"], "--raster"),
    ("report", ["{tmp}"], ["{tmp}/nowhere"], "no such directory"),
    ("report", ["{tmp}", "--budget", "1"], ["{tmp}", "--budget", "0"], "--budget 0 is not allowed"),
    ("report", ["{tmp}", "--reps", "1"], ["{tmp}", "--reps", "0"], "--reps 0 is not allowed"),
    ("report", ["{tmp}", "--seed", "0"], ["{tmp}", "--seed", "-1"], "--seed -1 is not allowed: an integer >= 0"),
    ("report", ["{tmp}", "--threshold", "-1e308"], ["{tmp}", "--threshold", "-inf"], "a finite number"),
    ("report", ["{tmp}", "--threshold", "1e308"], ["{tmp}", "--threshold", "nan"], "a finite number"),
    ("report", ["{tmp}", "--out", "{tmp}/o"], ["{tmp}", "--out", "{tmp}/file"], "it is a file"),
    ("aggregate", ["{tmp}"], ["{tmp}/nowhere"], "no such directory"),
    ("aggregate", ["{tmp}", "--max-episode", "1"], ["{tmp}", "--max-episode", "0"], "--max-episode 0"),
    ("aggregate", ["{tmp}", "--reference", "{tmp}/file"], ["{tmp}", "--reference", "{tmp}/x.csv"], "no such file"),
    ("aggregate", ["{tmp}", "--out", "{tmp}/o"], ["{tmp}", "--out", "{tmp}/file"], "it is a file"),
    ("study", ["{tmp}"], ["{tmp}/nowhere"], "no such directory"),
    ("study", ["{tmp}", "--experiment-name", "x_1"], ["{tmp}", "--experiment-name", "../x"], "a file name"),
    ("study", ["{tmp}", "--experiment-name", "x_1"], ["{tmp}", "--experiment-name", "pong100_lfcs"], "exists"),
    ("plot_probes", ["{tmp}"], ["{tmp}/nowhere"], "no such directory"),
    ("plot_probes", ["{tmp}", "--out", "{tmp}/o"], ["{tmp}", "--out", "{tmp}/file"], "it is a file"),
    ("check_independence", ["{tmp}"], ["{tmp}/nowhere"], "no such directory"),
    ("check_independence", ["{tmp}", "--episodes", "1"], ["{tmp}", "--episodes", "0"], "--episodes 0"),
    ("check_independence", ["{tmp}", "--out", "{tmp}/o"], ["{tmp}", "--out", "{tmp}/file"], "it is a file"),
    ("observe_cost", ["--agents", "1"], ["--agents", "1", "0"], "--agents 0 is not allowed"),
    ("observe_cost", ["--episodes", "1"], ["--episodes", "0"], "--episodes 0"),
    ("observe_cost", ["--repeats", "1"], ["--repeats", "0"], "--repeats 0"),
    ("observe_cost", ["--out", "{tmp}/o.json"], ["--out", "{tmp}/o.txt"], "named *.json"),
    ("observe_cost", ["learner.gamma=1"], ["learner.gamma=1.5"], "learner.gamma=1.5 is not allowed"),
    ("bench", ["--agents", "1", "--workers", "1"], ["--agents", "0"], "--agents 0 is not allowed"),
    ("bench", ["--workers", "2", "--agents", "2"], ["--workers", "3", "--agents", "2"], "at most --agents=2"),
    ("bench", ["--episodes", "1"], ["--episodes", "0"], "--episodes 0"),
    ("bench", ["--repeats", "1"], ["--repeats", "0"], "--repeats 0"),
    ("bench", ["--out", "{tmp}/b"], ["--out", "{tmp}/file"], "it is a file"),
    ("bench", ["network.num_neurons=1"], ["network.num_neurons=0"], "network.num_neurons=0 is not allowed"),
    ("wall_clock", ["start", "{tmp}/w", "0-9", "x.sh"], ["start", "{tmp}/file", "0-9", "x.sh"], "it is a file"),
    ("wall_clock", ["start", "{tmp}/w", "0-9", "x.sh"], ["start", "{tmp}/w", "0-9"], "required: command"),
    ("wall_clock", ["end", "{tmp}"], ["stop", "{tmp}"], "invalid choice: 'stop'"),
    ("compare_behaviour", ["--ref", "HEAD", "--tol", "0"], ["--ref", "HEAD", "--tol", "-5e-324"], ">= 0"),
    ("compare_behaviour", ["--ref", "HEAD", "--tol", "1e308"], ["--ref", "HEAD", "--tol", "inf"], "a finite number"),
    ("compare_behaviour", ["--ref", "HEAD"], ["--ref", "no-such-ref"], "a commit of this repository"),
    ("compare_behaviour", ["--ref", "HEAD", "--only", "torch_pong"], ["--ref", "HEAD", "--only", "x"], "choice"),
    ("compare_behaviour", ["--ref", "HEAD", "--out", "{tmp}/c"], ["--ref", "HEAD", "--out", "{tmp}/file"], "a file"),
    ("floor_breakdown", ["--n", "2"], ["--n", "1"], "--n 1 is not allowed: an integer >= 2"),
    ("floor_breakdown", ["--steps", "1"], ["--steps", "0"], "--steps 0 is not allowed"),
    ("floor_breakdown", ["--out", "{tmp}/o"], ["--out", "{tmp}/file"], "it is a file"),
    ("net_profile", ["--episodes", "1"], ["--episodes", "0"], "--episodes 0 is not allowed"),
    ("net_profile", ["--warmup", "0"], ["--warmup", "-1"], "--warmup -1 is not allowed"),
    ("net_profile", ["--layouts", "alif_in_f32_1agent"], ["--layouts", "rec_f32_10agents"], "comma-separated names"),
    ("net_profile", ["--out", "{tmp}/o"], ["--out", "{tmp}/file"], "it is a file"),
    ("decode_probe", ["R", "--episodes", "1"], ["R", "--episodes", "0"], "--episodes 0 is not allowed"),
    ("decode_probe", ["R", "--agent", "0", "--agent", "1"], ["R", "--agent", "0", "--agent", "-1"], "--agent -1"),
    ("decode_probe", ["R", "--policy", "greedy"], ["R", "--policy", "best"], "invalid choice"),
    ("decode_probe", ["R", "--out", "{tmp}/d.json"], ["R", "--out", "{tmp}"], "it is a directory"),
    ("eprop_cost", ["--repeats", "1"], ["--repeats", "0"], "--repeats 0 is not allowed"),
    ("eprop_cost", ["--out", "{tmp}/e.json"], ["--out", "{tmp}/file/e.json"], "file is a file"),
    ("parity", [str(p) for p in GOLDEN], ["{tmp}/file"], "not a zip archive"),
    ("parity", [str(p) for p in GOLDEN], ["{tmp}/x.npz"], "no such file"),
    ("parity", [str(p) for p in GOLDEN], [*map(str, GOLDEN), "--help-me"], "unrecognized arguments"),
    ("parity", [str(p) for p in GOLDEN], [], "required: files"),
]


@pytest.fixture
def tmp(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder\n")
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))  # bench.py and observe_cost.py import their neighbours
    return tmp_path


def parse(script: str, argv: list[str]):
    module = load_script(script)
    parser = getattr(module, "parse", None) or module.parse_args
    return parser(argv)


@pytest.mark.parametrize("script, allowed, refused, words", CASES, ids=[f"{c[0]} {' '.join(c[2])}" for c in CASES])
def test_each_flag_allows_its_last_value_and_refuses_the_next_in_one_line(tmp, capsys, script, allowed, refused, words):
    before = sorted(tmp.rglob("*"))
    parse(script, [arg.format(tmp=tmp) for arg in allowed])
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        parse(script, [arg.format(tmp=tmp) for arg in refused])
    lines = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(lines) == 1 and lines[0].startswith(f"{script}.py: error: "), lines
    assert words in lines[0], lines[0]
    assert sorted(tmp.rglob("*")) == before


def test_bench_record_takes_no_arguments(capsys):
    with pytest.raises(SystemExit) as stop:
        run_module_main("bench_record", ["--out", "x"])
    assert stop.value.code == 2 and capsys.readouterr().err.startswith("bench_record.py: error: unrecognized")


def run_module_main(script: str, argv: list[str]) -> None:
    import runpy

    saved = sys.argv
    sys.argv = [script, *argv]
    try:
        runpy.run_path(str(ROOT / "scripts" / f"{script}.py"), run_name="__main__")
    finally:
        sys.argv = saved


def test_checks_that_need_the_data_are_one_line_too(tmp, capsys):
    """Found once the inputs are read, still before anything is written."""
    import optuna

    storage = f"sqlite:///{tmp}/optuna.db"
    optuna.create_study(study_name="a", storage=storage)
    with pytest.raises(SystemExit) as stop:
        load_script("study").main([str(tmp), "--study-name", "b"])
    line = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "--study-name b is not allowed" in line and "['a']" in line, line
    (tmp / "ref.csv").write_text("seed,episode\n0,50\n")
    assert load_script("aggregate").main([str(tmp), "--reference", str(tmp / "ref.csv")]) == 2
    assert "--reference" in capsys.readouterr().err
    assert load_script("aggregate").main([str(tmp)]) == 2
    assert "aggregate.py: error: no runs" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        load_script("wall_clock").main(["end", str(tmp)])
    assert stop.value.code == 2 and "has no session open" in capsys.readouterr().err
    assert sorted(p.name for p in tmp.iterdir()) == ["file", "optuna.db", "ref.csv"]


# One refused command per script, as typed, from an empty working directory.
AS_TYPED = [
    ("evaluate.py", "R", "--episodes", "0"),
    ("export_nir.py", "R", "out.h5"),
    ("make_zoo.py", "R", "--episodes", "0"),
    ("report.py", "nowhere"),
    ("aggregate.py", "nowhere"),
    ("parity.py", "--help-me"),
    ("study.py", "nowhere"),
    ("plot_probes.py", "nowhere"),
    ("check_independence.py", "nowhere"),
    ("observe_cost.py", "learner.gamma=1.5"),  # its overrides composed in a process that has not stored the schema
    ("bench.py", "network.num_neurons=0"),
    ("bench_record.py", "--out", "x"),
    ("wall_clock.py", "end", "."),
    ("compare_behaviour.py", "--ref", "no-such-ref"),
    ("decode_probe.py", "R", "--episodes", "0"),
    ("eprop_cost.py", "--repeats", "0"),
]


@pytest.mark.parametrize("chunk", range(2))
def test_each_script_as_typed_is_one_line_and_writes_nothing(tmp_path, chunk):
    commands = AS_TYPED[chunk::2]
    cwds = [tmp_path / command[0] for command in commands]
    for cwd in cwds:
        cwd.mkdir()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda c: run_script(f"scripts/{c[1][0]}", *c[1][1:], cwd=c[0]), zip(cwds, commands)))
    for command, cwd, result in zip(commands, cwds, results):
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1, (command, result.stderr)
        assert lines[0].startswith(f"{command[0]}: error: "), lines
        assert list(cwd.iterdir()) == [], (command, list(cwd.iterdir()))


def test_evaluating_a_file_outside_a_run_directory_writes_into_the_working_directory(tmp_path, monkeypatch, capsys):
    """A zoo file's folder is the source tree: eval.json goes to ./<name>.eval.json, and the line says so."""
    import shutil

    from lfcs import train
    from tests.conftest import make_cfg

    run_dir, zoo, work = tmp_path / "run", tmp_path / "zoo", tmp_path / "work"
    train(make_cfg("env=cartpole", "network.num_neurons=20", "iterations=1", "progress=false", f"run_dir={run_dir}"))
    zoo.mkdir()
    work.mkdir()
    shutil.copy(run_dir / "checkpoints" / "agents_0-0.pt", zoo / "agent.pt")
    monkeypatch.chdir(work)
    assert load_script("evaluate").main([str(zoo / "agent.pt"), "--episodes", "1", "--no-progress"]) == 0
    assert sorted(p.name for p in zoo.iterdir()) == ["agent.pt"]
    assert sorted(p.name for p in work.iterdir()) == ["agent.eval.json"]
    assert capsys.readouterr().out.strip().endswith(f"-> {work / 'agent.eval.json'}")
    assert load_script("evaluate").main([str(run_dir), "--episodes", "1", "--no-progress"]) == 0  # a run: as before
    assert (run_dir / "eval.json").is_file() and sorted(p.name for p in work.iterdir()) == ["agent.eval.json"]


def test_evaluate_offers_the_policy_modes_that_evaluation_knows():
    from lfcs.export.evaluate import POLICY_MODES

    assert load_script("evaluate").POLICY_MODES == POLICY_MODES  # kept beside the parser, which imports no torch


@pytest.mark.parametrize("seed", ["-1", "ten", "1.5"])
def test_experiments_sh_refuses_a_seed_that_is_not_a_whole_number_before_writing(tmp, seed):
    import os
    import subprocess

    command = ["bash", str(ROOT / "scripts" / "experiments.sh"), "cartpole", str(tmp / "out")]
    done = subprocess.run(command, env={**os.environ, "SEED": seed, "PYTHON": "false"}, capture_output=True, text=True)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and f"SEED={seed} is not allowed" in lines[0], done.stderr
    assert not (tmp / "out").exists()


def test_experiments_sh_keeps_each_segments_log_when_run_again(tmp):
    """Running an experiment again (to continue it) appends to each condition's log instead of replacing it."""
    import os
    import subprocess

    fake = tmp / "python"  # stands in for Python: prints its arguments (train.py's become the log)
    fake.write_text('#!/bin/sh\necho "$@"\n')
    fake.chmod(0o755)
    command = ["bash", str(ROOT / "scripts" / "experiments.sh"), "cartpole", str(tmp / "out")]
    for _ in range(2):
        done = subprocess.run(command, env={**os.environ, "PYTHON": str(fake)}, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    lines = (tmp / "out" / "cartpole_lfcs.log").read_text().splitlines()
    assert len(lines) == 2 and all("experiment=cartpole_lfcs" in line for line in lines)
