"""scripts/train.py's checks before Hydra starts: its flags, the run directory, resume. A refused command prints one
line (``error: ...``), exits 2 and writes nothing: no ``outputs/``, no run directory, no ``multirun/``.

In-process through :func:`lfcs.running.cli.precheck` (what scripts/train.py runs first); a few cases also as a user
types them, from an empty working directory that must stay empty.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from lfcs import train
from lfcs.running.cli import precheck
from tests.conftest import ROOT, make_cfg, run_script

CONF_DIR = ROOT / "conf"
RUN = ["env=cartpole", "network.num_neurons=20", "progress=false"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    train(make_cfg(*RUN, "iterations=2", f"run_dir={run_dir}"))
    return run_dir


@pytest.fixture
def paths(tmp_path, finished):
    (tmp_path / "file").write_text("not a folder\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "metrics.csv").write_text("a,b\n")
    return {"tmp": tmp_path, "run": finished}


# (arguments allowed, arguments refused: the first refused value next to the last allowed one, words of the line)
CASES = [
    (["-m", "seed=0,1"], ["--multirun-please"], "unrecognized arguments"),
    (["--cfg", "job"], ["--cfg", "jobx"], "invalid choice"),
    (["--info", "config"], ["--info", "bogus"], "invalid choice"),
    (["--config-name", "config"], ["--config-name", "nope"], "--config-name=nope is not allowed"),
    (["--config-path", "../conf"], ["--config-path", "../nowhere"], "--config-path=../nowhere is not allowed"),
    (["--config-dir", "{tmp}/empty"], ["--config-dir", "{tmp}/nowhere"], "no such directory"),
    (["run_dir={tmp}/new/run"], ["run_dir={tmp}/file"], "it is a file"),
    (["run_dir={tmp}/new"], ["run_dir={tmp}/file/run"], "is a file"),
    (["run_dir={run}"], ["run_dir={run}", "learner.gamma=0.5"], "already holds a run"),
    (["run_dir={tmp}/empty"], ["run_dir={tmp}/foreign"], "not an lfcs run"),
    (["hydra.run.dir={tmp}/new"], ["hydra.run.dir={tmp}/file"], "hydra.run.dir="),
    (["-m", "seed=0,1", "hydra.sweep.dir={tmp}/s"], ["-m", "hydra.sweep.dir={tmp}/file"], "hydra.sweep.dir="),
    (["resume={run}"], ["resume={tmp}/missing"], "does not exist"),
    (["resume={run}"], ["resume={tmp}/empty"], "holds no checkpoint"),
    (["resume={run}"], ["resume={tmp}/file"], "it is a file"),
    (["resume={run}", "iterations=5"], ["resume={run}", "learner.gamma=0.5"], "learner.gamma=0.5 is not allowed here"),
    (["resume=true", "run_dir={run}"], ["resume=true"], "without the run's directory"),
    (["resume=true", "hydra.run.dir={run}"], ["resume=true", "hydra.run.dir={tmp}/empty"], "holds no checkpoint"),
    (["-m", "resume=true", "seed=0,1"], ["-m", "resume={tmp}/missing", "seed=0,1"], "does not exist"),
    (["num_agents=2", "workers=2"], ["num_agents=2", "workers=3"], "workers=3 is not allowed: at most num_agents=2"),
    (["seed=0"], ["seed=-1"], "seed=-1 is not allowed"),
]


def fill(args: list[str], paths: dict) -> list[str]:
    return [arg.format(**paths) for arg in args]


@pytest.mark.parametrize("allowed, refused, words", CASES, ids=[" ".join(c[1]) for c in CASES])
def test_precheck_passes_the_allowed_and_refuses_the_next_in_one_line(paths, capsys, allowed, refused, words):
    before = sorted(paths["tmp"].rglob("*"))
    run = [] if any(arg.startswith("--") for arg in allowed) else RUN
    assert precheck([*fill(allowed, paths), *run], CONF_DIR) is None
    with pytest.raises(SystemExit) as stop:
        precheck([*fill(refused, paths), *run], CONF_DIR)
    lines = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    assert words in lines[0], lines[0]
    assert sorted(paths["tmp"].rglob("*")) == before  # the checks write nothing


def test_help_and_version_are_left_to_hydra():
    for flag in ("--help", "-h", "--hydra-help", "--version"):
        assert precheck([flag, "learner.gamma=5"], CONF_DIR) is None


@pytest.mark.parametrize("chunk", range(2))
def test_refused_commands_write_nothing_where_they_run(tmp_path, chunk):
    """As typed, from an empty folder: a negative seed (a traceback once), resume errors (they left Hydra's output
    folder behind), a bad flag, more workers than agents, a run directory that is a file."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("not a folder\n")
    commands = [
        (["seed=-1"], "seed=-1 is not allowed"),
        ([f"resume={tmp_path / 'empty'}"], "holds no checkpoint"),
        (["resume=true"], "without the run's directory"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["num_agents=2", "workers=3"], "at most num_agents=2"),
        ([f"run_dir={tmp_path / 'file'}"], "it is a file"),
    ][chunk::2]
    cwds = [tmp_path / f"cwd{i}" for i in range(len(commands))]
    for cwd in cwds:
        cwd.mkdir()

    def run(index):
        args, _ = commands[index]
        return run_script("scripts/train.py", *args, "iterations=1", "network.num_neurons=20", cwd=cwds[index])

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, range(len(commands))))
    for (args, words), cwd, result in zip(commands, cwds, results):
        lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, (args, result.stderr)
        assert words in lines[0], lines[0]
        assert list(cwd.iterdir()) == [], f"{args} wrote {list(cwd.iterdir())}"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["empty", "file", *(c.name for c in cwds)])
    assert list((tmp_path / "empty").iterdir()) == []


def test_a_checkpoint_that_is_not_the_runs_own_is_refused_before_hydra(finished, tmp_path, capsys):
    """A renamed checkpoint, or a checkpoint without training state (a zoo file) in a run's checkpoints/."""
    import shutil

    from lfcs import checkpoint

    copy = tmp_path / "copy"
    shutil.copytree(finished, copy)
    (ckpt,) = (copy / "checkpoints").glob("*.pt")
    ckpt.rename(ckpt.with_name("agents_1-1.pt"))
    for words in ("holds agents [0]: it must be named", "lacks new_policy"):
        before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
        with pytest.raises(SystemExit) as stop:
            precheck([*RUN, f"resume={copy}"], CONF_DIR)
        line = capsys.readouterr().err.strip()
        assert stop.value.code == 2 and words in line and "\n" not in line, line
        assert {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before
        checkpoint.save_atomic({"agents": [1], "episode": 2}, copy / "checkpoints" / "agents_1-1.pt")
