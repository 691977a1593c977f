"""Bad input, as a user types it: one line naming the key, the value and what is allowed; exit 2; nothing written."""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from lfcs import checkpoint
from tests.conftest import run_script

CASES = [
    # (overrides, words the message must contain)
    (["env.id=NoSuchEnv-v0"], ["env.id", "NoSuchEnv-v0", "doesn't exist"]),
    (["env.id=Pendulum-v1"], ["env.id", "Pendulum-v1", "Discrete"]),
    (["env.id=ALE/Pong-v5"], ["env.id", "ALE/Pong-v5", "1-D Box"]),
    (["learner.eps=0"], ["learner.eps", "> 0"]),
    (["learner.eps=-0.1"], ["learner.eps", "> 0"]),
    (["learner.n_passes=0"], ["learner.n_passes", ">= 1"]),
    (["learner.lr=0"], ["learner.lr", "> 0"]),
    (["learner.gamma=0"], ["learner.gamma", "(0, 1]"]),
    (["learner.gamma=1.01"], ["learner.gamma", "(0, 1]"]),
    (["network.num_neurons=0"], ["network.num_neurons", ">= 1"]),
    (["network.tau_mem_steps=0"], ["network.tau_mem_steps", "> 0"]),
    (["network.tau_syn_steps=-1"], ["network.tau_syn_steps", "> 0"]),
    (["network.tau_readout_steps=0"], ["network.tau_readout_steps", "> 0"]),
    (["num_agents=0"], ["num_agents", ">= 1"]),
    (["iterations=0"], ["iterations", ">= 1"]),
    (["learner.lr=abc"], ["learner.lr", "abc", "Float"]),
    (["num_agents=two"], ["num_agents", "two", "Integer"]),
    (["learner.epz=0.1"], ["learner.epz", "no such key", "eps"]),
    (["learner.timescale=medium"], ["learner.timescale", "medium", "fast or slow"]),
    (["learner.clip=soft"], ["learner.clip", "soft", "mask", "ppo", "none"]),
    (["learner.replay_episodes=0"], ["learner.replay_episodes", ">= 1"]),
    (["learner.critic=mc"], ["learner.critic", "mc", "none", "td"]),
    (["learner.critic_lr=0"], ["learner.critic_lr", "> 0"]),
    (["learner.rec_lr=-1"], ["learner.rec_lr", "> 0"]),
    (["learner.rec_lr=1e-4"], ["learner.rec_lr=0.0001", "null while learner.learn_rec=false"]),
    (["learner.terminal_credit=maybe"], ["learner.terminal_credit", "maybe", "bool"]),
    (["learner=adam"], ["learner", "adam", "eprop", "lfcs"]),
    (["env=cartpole", "env.obs_scale=[2.4,3.0]"], ["env.obs_scale=[2.4, 3.0]", "list of 4", "CartPole-v1"]),
    (["env=masked_cartpole", "env.obs_shift=[0,0,0]"], ["env.obs_shift=[0, 0, 0]", "list of 2"]),
    (["env=cartpole", "env.obs_scale=[2.4,0,0.2,3.5]"], ["env.obs_scale", "[2.4, 0, 0.2, 3.5]", "> 0"]),
    (["env.obs_scale=-1"], ["env.obs_scale=-1", "> 0"]),
    (["env.obs_scale=inf"], ["env.obs_scale=inf", "finite"]),
    (["env.obs_shift=nan"], ["env.obs_shift=nan", "finite"]),
    (["env.obs_scale=wide"], ["env.obs_scale='wide'", "one number or a list of numbers"]),
    (["env.encoding=spikes"], ["env.encoding='spikes'", "none, normalize, population, normalize_population"]),
    (["env.encoding=normalize", "env.encoding_gain=0"], ["env.encoding_gain=0.0", "> 0"]),
    (["env.encoding_gain=2"], ["env.encoding_gain=2.0", "with env.encoding=none"]),
    (["env.encoding=population", "env.population_size=1"], ["env.population_size=1", ">= 2"]),
    (["env.encoding=population", "env.population_range=[1,-1]"], ["env.population_range=[1.0, -1.0]", "lo < hi"]),
    (["env.encoding=population", "env.population_width=0"], ["env.population_width=0.0", "> 0"]),
    (["env.population_size=8"], ["env.population_size=8", "unless env.encoding is population"]),
    (["env=masked_cartpole_previous", "env.kwargs.control=velocity"], ["env.kwargs.control='velocity'", "difference"]),
]
if not torch.cuda.is_available():
    CASES.append((["device=cuda"], ["device", "cuda", "cpu"]))


def check_one_line_error(result, words):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for word in words:
        assert word in lines[0], (word, lines[0])


CHUNKS = 4  # the cases in 4 tests, so that pytest-xdist can spread them; each runs its cases 2 at a time


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_every_bad_value_gets_one_clear_line(tmp_path, chunk):
    def run(index):
        overrides, _ = CASES[index]
        run_dir = tmp_path / f"case{index}"
        return CASES[index], run_dir, run_script("scripts/train.py", "iterations=1", f"run_dir={run_dir}", *overrides)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, range(chunk, len(CASES), CHUNKS)))
    for (overrides, words), run_dir, result in results:
        check_one_line_error(result, words)
        assert not run_dir.exists(), f"{overrides}: the run directory was created"


def test_bad_value_creates_no_folder_at_all(tmp_path):
    result = run_script("scripts/train.py", "learner.gamma=1.5", cwd=tmp_path)
    check_one_line_error(result, ["learner.gamma=1.5", "(0, 1]"])
    assert list(tmp_path.iterdir()) == []  # no outputs/<date>/<time>/.hydra, no train.log


@pytest.mark.parametrize(
    "sweep,words",
    [
        (["learner.gamma=0.5,1.5"], ["learner.gamma=1.5", "(0, 1]"]),
        (["learner.lr=1e-3,2e-3", "learner.n_passes=1,0"], ["learner.n_passes=0", ">= 1"]),
        (["+learner.epz=0.1,0.2"], ["learner.epz=0.1", "no such key", "eps", "gamma"]),
        (["hparams_search=pong100_optuna", "learner.gamma=1.5"], ["learner.gamma=1.5", "(0, 1]"]),
    ],
)
def test_bad_value_in_a_sweep_is_one_line_per_key_and_creates_nothing(tmp_path, sweep, words):
    args = ["-m", *sweep, "iterations=1", "network.num_neurons=20", "progress=false"]
    result = run_script("scripts/train.py", *args, f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    check_one_line_error(result, words)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("override", ["+learner.epz=0.1", "++learner.epz=0.1", "+epz=0.1", "+env.idd=x"])
def test_added_key_outside_the_schema_is_refused(tmp_path, override):
    key = override.lstrip("+").split("=")[0]
    allowed = {"learner.epz": "eps", "epz": "num_agents", "env.idd": "max_episode_steps"}[key]
    result = run_script("scripts/train.py", override, "iterations=1", cwd=tmp_path)
    check_one_line_error(result, [override.lstrip("+"), "no such key", allowed])
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    result = run_script("scripts/train.py", "network.num_neurons=20", "iterations=2", f"run_dir={run_dir}")
    assert result.returncode == 0, result.stderr
    return run_dir


def snapshot(run_dir: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def test_unparsable_override_is_named(tmp_path):
    result = run_script("scripts/train.py", "learner.lr=1e-3=2", f"run_dir={tmp_path / 'run'}")
    check_one_line_error(result, ["learner.lr=1e-3=2", "cannot parse"])


def test_resume_from_nowhere(tmp_path):
    check_one_line_error(run_script("scripts/train.py", f"resume={tmp_path / 'missing'}"), ["resume", "does not exist"])
    (tmp_path / "empty").mkdir()
    check_one_line_error(run_script("scripts/train.py", f"resume={tmp_path / 'empty'}"), ["resume", "no checkpoint"])


def test_resume_with_other_network_sizes(finished_run):
    before = snapshot(finished_run)
    result = run_script("scripts/train.py", f"resume={finished_run}", "network.num_neurons=30", "iterations=3")
    check_one_line_error(result, ["network.num_neurons", "30", "20"])
    assert snapshot(finished_run) == before


def test_new_run_never_overwrites_an_existing_one(finished_run):
    before = snapshot(finished_run)
    result = run_script("scripts/train.py", "network.num_neurons=25", f"run_dir={finished_run}")
    check_one_line_error(result, ["network.num_neurons", "already holds a run"])
    assert snapshot(finished_run) == before


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_checkpoint(finished_run, tmp_path, damage):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy)
    (ckpt,) = (copy / "checkpoints").glob("*.pt")
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2] if damage == "truncate" else os.urandom(len(data)))
    before = snapshot(copy)
    result = run_script("scripts/train.py", f"resume={copy}", "iterations=3")
    check_one_line_error(result, ["checkpoint", "corrupt or truncated"])
    assert snapshot(copy) == before


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/lfcs_pwned",))


def test_malicious_checkpoint_is_refused_without_running_code(finished_run, tmp_path):
    import shutil

    marker = Path("/tmp/lfcs_pwned")
    marker.unlink(missing_ok=True)
    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy)
    (ckpt,) = (copy / "checkpoints").glob("*.pt")
    buffer = io.BytesIO()
    torch.save({"format": checkpoint.FORMAT, "payload": _Exploit()}, buffer)
    ckpt.write_bytes(buffer.getvalue())
    with pytest.raises(checkpoint.CheckpointError, match="refused"):
        checkpoint.load(ckpt)
    result = run_script("scripts/train.py", f"resume={copy}", "iterations=3")
    check_one_line_error(result, ["refused to load"])
    assert not marker.exists()


def test_config_values_are_never_evaluated(tmp_path):
    marker = tmp_path / "evaluated"
    result = run_script(
        "scripts/train.py",
        f"env.id=__import__('os').system('touch {marker}')",
        "iterations=1",
        f"run_dir={tmp_path / 'run'}",
    )
    assert result.returncode == 2 and not marker.exists()
