"""launcher=submitit_slurm against a real Slurm controller: a 2 x 2 multirun, scancel + re-run, and a job that hits
its time limit and comes back by itself. The end state of every interrupted run equals an uninterrupted local run.

    scripts/slurm_local.sh up && .venv/bin/python -m pytest -q -m slow tests/test_slurm.py   # about 5 minutes here

The cluster tests are slow (deselected by default); .ci/run runs them after the default tests, on the local cluster.
Without a controller they bring the local cluster up themselves when run as root on a machine with apt (and take it
down again), and skip with the reason otherwise; with LFCS_REQUIRE_SLURM=1 (.ci/run sets it) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lfcs import checkpoint
from lfcs.running.logger import CSV_COLUMNS
from tests.conftest import ROOT, read_metrics

SLURM_LOCAL = ROOT / "scripts" / "slurm_local.sh"
TINY = ["num_agents=1", "network.num_neurons=20", "progress=false"]
ON_SLURM = ["launcher=submitit_slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1"]
WALL_CLOCK = ("sps", "sps_total")  # columns that measure time, not the run
# Set by .ci/run, which brings the cluster up itself: without a controller the cluster tests fail instead of skipping.
REQUIRE = "LFCS_REQUIRE_SLURM"


def _cluster_up() -> bool:
    if shutil.which("scontrol") is None:
        return False
    return subprocess.run(["scontrol", "ping"], capture_output=True, text=True).stdout.count("UP") > 0


@pytest.fixture(scope="module")
def cluster():
    started = False
    if not _cluster_up():
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(
                f"{REQUIRE}=1 but no Slurm controller answers `scontrol ping` (scripts/slurm_local.sh up first)",
                pytrace=False,
            )
        if os.geteuid() != 0 or shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
            pytest.skip("no Slurm controller answers `scontrol ping`: run scripts/slurm_local.sh up (as root)")
        up = subprocess.run([str(SLURM_LOCAL), "up"], capture_output=True, text=True, timeout=900)
        if up.returncode != 0:
            pytest.skip(f"scripts/slurm_local.sh up failed: {up.stderr.strip()[-500:]}")
        started = True
    yield
    if started:
        subprocess.run([str(SLURM_LOCAL), "down"], capture_output=True, timeout=300)


def train_command(*overrides: str) -> list[str]:
    return [sys.executable, "scripts/train.py", *overrides]


@pytest.fixture
def start():
    """Popen in the repository root, output to a log file; whatever still runs at the end of the test is killed."""
    procs = []

    def run(cmd: list[str], log: Path) -> subprocess.Popen:
        with open(log, "w") as handle:
            procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, text=True))
        return procs[-1]

    yield run
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def sweep(tmp_path):
    """The test's sweep folder; any Slurm job of it still queued or running at the end is cancelled (a failed test
    would otherwise leave it behind, holding CPUs of the node the next test needs)."""
    folder = tmp_path / "sweep"
    yield folder
    jobs = sorted({p.name.split("_")[0] for p in (folder / ".submitit").glob("[0-9]*")})
    if jobs:
        subprocess.run(["scancel", *jobs], capture_output=True, timeout=60)


def wait(proc: subprocess.Popen, timeout: float) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def slurm(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=True, timeout=60).stdout


def job_of(sweep: Path, index: int) -> str:
    """The Slurm id of job ``index`` of a multirun (submitit keeps one folder per array task)."""
    (folder,) = [p for p in (sweep / ".submitit").iterdir() if p.name.endswith(f"_{index}")]
    return folder.name


def episodes_checkpointed(run_dir: Path) -> int:
    path = run_dir / "checkpoints" / "agents_0-0.pt"
    try:
        return int(checkpoint.load(path)["episode"])
    except checkpoint.CheckpointError:
        return 0


def assert_same_state(a, b, where="checkpoint"):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_state(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def assert_same_run(run: Path, reference: Path) -> None:
    """metrics.csv and the final checkpoint are equal bit for bit, wall-clock columns aside."""
    assert read_metrics(run / "metrics.csv", drop=WALL_CLOCK) == read_metrics(reference / "metrics.csv")
    a, b = (checkpoint.load(r / "checkpoints" / "agents_0-0.pt") for r in (run, reference))
    keep = [i for i, name in enumerate(CSV_COLUMNS) if name not in WALL_CLOCK]
    a["history"], b["history"] = a["history"][..., keep], b["history"][..., keep]  # (episodes, agents, columns)
    for state in (a, b):  # the stored config names where the run lives: the only line allowed to differ
        state["config"] = [line for line in state["config"].splitlines() if not line.startswith("run_dir:")]
    assert_same_state(a, b)


@pytest.mark.slow
def test_multirun_on_slurm_then_scancel_and_rerun_resumes_bit_identical(cluster, start, sweep, tmp_path):
    iterations, every = 200, 20
    grid = ["-m", *ON_SLURM, "network.readout_gain=2.0,3.0", "seed=0,1", f"iterations={iterations}"]
    cmd = train_command(*grid, f"checkpoint_every={every}", *TINY, f"hydra.sweep.dir={sweep}")
    # Job #3 (readout_gain=3.0, seed=1) is cancelled; its uninterrupted twin runs here meanwhile.
    reference = tmp_path / "reference"
    twin = ["network.readout_gain=3.0", "seed=1", f"iterations={iterations}", f"checkpoint_every={every}", *TINY]
    ref = start(train_command(*twin, f"run_dir={reference}"), tmp_path / "reference.log")
    first = start(cmd, tmp_path / "first.log")
    target = None
    deadline = time.time() + 600
    while time.time() < deadline and first.poll() is None:
        runs = sorted(sweep.glob("*readout_gain=3.0*/seed=1"))
        if runs and episodes_checkpointed(runs[0]) >= every:
            target = runs[0]
            break
        time.sleep(0.5)
    assert target is not None, (tmp_path / "first.log").read_text()[-3000:]
    job = job_of(sweep, 3)
    slurm("scancel", job)
    assert wait(first, 600) != 0  # the launcher reports the cancelled job
    log = (tmp_path / "first.log").read_text()
    assert "CANCELLED" in log or job in log, log[-3000:]
    stopped_at = episodes_checkpointed(target)
    assert every <= stopped_at < iterations

    rerun = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    for output in (log, rerun.stdout + rerun.stderr):
        assert "Bypassing sacct error" not in output  # submitit's status queries work (accounting is on)
    runs = sorted(p.parent for p in sweep.glob("*/seed=*/summary.json"))
    folders = [dict(kv.split("=") for kv in p.parent.name.split(",")) for p in runs]  # <overrides>/seed=<seed>
    assert [(f["network.readout_gain"], p.name) for f, p in zip(folders, runs)] == [
        ("2.0", "seed=0"),
        ("2.0", "seed=1"),
        ("3.0", "seed=0"),
        ("3.0", "seed=1"),
    ]
    for run in runs:
        rows = read_metrics(run / "metrics.csv")
        assert [int(r["episode"]) for r in rows] == list(range(1, iterations + 1))
        assert episodes_checkpointed(run) == iterations
    assert wait(ref, 600) == 0, (tmp_path / "reference.log").read_text()[-3000:]
    assert_same_run(target, reference)


def task_pid(sweep: Path) -> int:
    """The process of the sweep's running job step on this node: submitit's Python, which runs the training."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0") if proc.name.isdigit() else []
        except OSError:  # gone meanwhile
            continue
        # srun carries the same arguments; the task is the one that runs Python itself
        if args and Path(args[0]).name.startswith("python") and "submitit.core._submit" in args:
            if any(str(sweep) in arg for arg in args):
                pids.append(int(proc.name))
    assert len(pids) == 1, pids
    return pids[0]


def stopped(pid: int) -> bool:
    """Whether the process ``pid`` is stopped (SIGSTOP); False once it has ended."""
    try:
        return "\nState:\tT" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_time_limit_requeues_and_resumes_by_itself_bit_identical(cluster, start, sweep, tmp_path):
    """The job cannot finish inside its first time limit, whatever the machine's speed.

    The job starts with a 10-minute limit. Once the run has written its first checkpoint, the test stops its process
    (SIGSTOP) and shortens the job's limit so that it ends within ``signal_delay_s``: Slurm's own time-limit warning
    (SIGCONT + USR2 from slurmstepd, at once or at the controller's next 30-s tick) then reaches a process that
    cannot have finished. It checkpoints at the end of its episode and submitit requeues the job. The test releases
    the requeued job at once, with its 10 minutes back; it resumes and ends like an uninterrupted run.
    """
    iterations, every, limit_min, delay_s = 400, 50, 10, 150
    limits = [
        f"hydra.launcher.timeout_min={limit_min}",
        f"hydra.launcher.signal_delay_s={delay_s}",
        "hydra.launcher.max_num_timeout=3",
    ]
    run_args = ["seed=0", f"iterations={iterations}", f"checkpoint_every={every}", *TINY]
    reference = tmp_path / "reference"
    ref = start(train_command(*run_args, f"run_dir={reference}"), tmp_path / "reference.log")
    proc = start(train_command("-m", *ON_SLURM, *limits, *run_args, f"hydra.sweep.dir={sweep}"), tmp_path / "run.log")
    deadline, job, run, warned, stopped_at, requeues = time.time() + 600, None, None, False, None, 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if job is None and (sweep / ".submitit").is_dir():
            job = next((p.name for p in (sweep / ".submitit").iterdir() if p.name.isdigit()), None)
        run = run or next(iter(sweep.glob("*/seed=0")), None)
        if job is None or run is None:
            continue
        state = slurm("squeue", "-h", "-j", job, "-o", "%T %r %M").split() or ["GONE"]
        if not warned and state[0] == "RUNNING" and episodes_checkpointed(run) >= every:
            pid = task_pid(sweep)
            os.kill(pid, signal.SIGSTOP)
            try:
                stop_by = time.time() + 10  # the stop takes effect a moment after the signal
                while not stopped(pid):
                    assert time.time() < stop_by, "the job's process did not stop (or ended)"
                    time.sleep(0.01)
                assert episodes_checkpointed(run) < iterations  # stopped mid-run, so it cannot finish in this limit
                elapsed_s = sum(int(x) * 60**i for i, x in enumerate(reversed(state[2].split(":"))))
                # ends 60-120 s from now (whole minutes): within delay_s, so Slurm warns at once or at its next tick
                slurm("scontrol", "update", f"JobId={job}", f"TimeLimit={elapsed_s // 60 + 2}")
                warned_by = time.time() + 60
                while stopped(pid):  # slurmstepd sends SIGCONT with the warning: the run goes on only then
                    assert time.time() < warned_by, "Slurm sent no time-limit warning within 60 s"
                    time.sleep(0.2)
                warned = True
            finally:
                if stopped(pid):
                    os.kill(pid, signal.SIGCONT)
        if state[:2] == ["PENDING", "BeginTime"]:
            # Slurm holds a requeued job for 120 s before it may start again; release it at once, with its full limit.
            stopped_at = episodes_checkpointed(run) if stopped_at is None else stopped_at
            slurm("scontrol", "update", f"JobId={job}", "StartTime=now", f"TimeLimit={limit_min}")
            requeues += 1
    assert wait(proc, 60) == 0, (tmp_path / "run.log").read_text()[-3000:]
    for _ in range(60):  # the launcher returns on the job's result file, a moment before Slurm records the end
        history = slurm("sacct", "-D", "-n", "-X", "-P", "-j", job, "-o", "State").split()
        if history[-1] != "RUNNING":
            break
        time.sleep(1)
    assert warned and requeues == 1 and history == ["REQUEUED", "COMPLETED"], (warned, requeues, history)
    assert every <= stopped_at < iterations  # the requeued job resumed from the checkpoint written on USR2
    submitit_log = "".join(p.read_text() for p in (sweep / ".submitit" / job).glob("*_log.out"))
    assert "Caught signal SIGUSR2" in submitit_log and "this job is timed-out" in submitit_log, submitit_log[-3000:]
    assert "Requeued job" in submitit_log, submitit_log[-3000:]
    assert (run / "summary.json").is_file()
    assert wait(ref, 600) == 0, (tmp_path / "reference.log").read_text()[-3000:]
    assert_same_run(run, reference)
