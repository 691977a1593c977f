"""scripts/peers.py: SB3 peers on lfcs's envs write run directories that lfcs's results, report and aggregate read.

Runs only with the optional extra installed (pip install -e '.[peers]'); skipped otherwise, except where
LFCS_REQUIRE_PEERS=1 (.ci/run's third phase): there a missing extra fails the module instead of skipping it.
"""

from __future__ import annotations

import csv
import json
import math
import os

import pytest

REASON = "the peers extra is not installed (pip install -e '.[peers]')"
if os.environ.get("LFCS_REQUIRE_PEERS") == "1":
    import sb3_contrib  # noqa: F401  (an ImportError here fails CI instead of skipping)
    import stable_baselines3  # noqa: F401
else:
    pytest.importorskip("stable_baselines3", reason=REASON)
    pytest.importorskip("sb3_contrib", reason=REASON)

from omegaconf import OmegaConf  # noqa: E402

from tests.conftest import ROOT, lfcs_run, load_script, read_metrics, run_script  # noqa: E402

peers = load_script("peers")
QUIET = ["--no-progress"]


def rows_of(run_dir) -> dict[int, list[dict]]:
    by_agent: dict[int, list[dict]] = {}
    for row in read_metrics(run_dir / "metrics.csv"):
        by_agent.setdefault(int(row["agent"]), []).append(row)
    return by_agent


def test_the_script_keeps_lfcs_s_contracts():
    from lfcs.analysis.results import WINDOW
    from lfcs.config import Config
    from lfcs.running.logger import CSV_COLUMNS

    assert peers.CSV_COLUMNS == CSV_COLUMNS
    assert peers.WINDOW == WINDOW
    assert peers.OBJECTIVE_WINDOWS == Config().objective_windows


@pytest.mark.parametrize("name", ["cartpole", "masked_cartpole", "pong100", "pong100_nosticky"])
def test_a_peer_plays_lfcs_s_env_without_the_input_encoding(name):
    from lfcs.environments import make_env

    env_cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "env" / f"{name}.yaml"))
    theirs = make_env(env_cfg["id"], env_cfg["max_episode_steps"], env_cfg["kwargs"])  # lfcs's, without obs_*
    ours = peers.make_env(env_cfg)
    try:
        assert ours.spec.id == theirs.spec.id == env_cfg["id"]
        assert ours.spec.max_episode_steps == theirs.spec.max_episode_steps == env_cfg["max_episode_steps"]
        assert ours.spec.kwargs == theirs.spec.kwargs
        assert ours.observation_space == theirs.observation_space
        assert (ours.reset(seed=3)[0] == theirs.reset(seed=3)[0]).all()
    finally:
        ours.close()
        theirs.close()


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--algo", "dqn", "--env", "cartpole", "--episodes", "3"], "--algo"),
        (["--algo", "ppo", "--env", "acrobot", "--episodes", "3"], "--env"),
        (["--algo", "ppo", "--env", "cartpole", "--episodes", "0"], "--episodes"),
        (["--algo", "ppo", "--env", "cartpole", "--episodes", "many"], "--episodes"),
        (["--algo", "ppo", "--env", "cartpole"], "--episodes"),
        (["--algo", "ppo", "--env", "cartpole", "--episodes", "3", "--seeds", "5-2"], "--seeds"),
        (["--algo", "ppo", "--env", "cartpole", "--episodes", "3", "--seeds", "a-b"], "--seeds"),
        (["--algo", "ppo", "--env", "cartpole", "--episodes", "3", "--bogus"], "--bogus"),
    ],
)
def test_a_bad_flag_is_one_line_and_exit_2_and_writes_nothing(tmp_path, capsys, argv, flag):
    out = tmp_path / "run"
    assert peers.main([*argv, "--out", str(out), *QUIET]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("peers.py: error:") and flag in err, err
    assert not out.exists()


def test_an_out_dir_with_something_else_is_refused_untouched(tmp_path, capsys):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert peers.main(["--algo", "ppo", "--env", "cartpole", "--episodes", "2", "--out", str(foreign), *QUIET]) == 2
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    run = tmp_path / "run"
    assert peers.main(["--algo", "ppo", "--env", "cartpole", "--episodes", "2", "--seeds", "0", "--out", str(run)]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    assert peers.main(["--algo", "ppo", "--env", "cartpole", "--episodes", "3", "--seeds", "0", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err and "iterations" in err, err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_the_budget_is_exact_the_rows_are_right_and_a_rerun_finishes_only_the_missing_seeds(tmp_path):
    run, budget = tmp_path / "run", 7
    argv = ["--algo", "recurrent_ppo", "--env", "masked_cartpole", "--seeds", "3-4", "--episodes", str(budget)]
    assert peers.main([*argv, "--out", str(run), *QUIET]) == 0
    cfg = OmegaConf.to_container(OmegaConf.load(run / "config.yaml"))
    assert (cfg["seed"], cfg["num_agents"], cfg["iterations"], cfg["learner"]["name"]) == (
        3,
        2,
        budget,
        "recurrent_ppo",
    )
    assert cfg["env"]["id"] == "lfcs/MaskedCartPole-v0" and cfg["env"]["obs_scale"] is None
    assert "peers.py --algo recurrent_ppo" in (run / "command.txt").read_text()
    first = rows_of(run)
    assert sorted(first) == [0, 1]
    for rows in first.values():
        assert [int(r["episode"]) for r in rows] == list(range(1, budget + 1))
        steps = [int(r["env_steps"]) for r in rows]
        lengths = [int(r["episode_length"]) for r in rows]
        assert steps == sorted(steps) and all(s % 8 == 0 for s in steps)  # 8 envs step together
        assert all(s >= sum(lengths[: i + 1]) for i, s in enumerate(steps))  # every finished step is counted
        assert all(r["firing_rate"] == "" and r["mask_fraction"] == "" for r in rows)
    assert [r["episodic_return"] for r in first[0]] != [r["episodic_return"] for r in first[1]]  # two seeds
    summary = json.loads((run / "summary.json").read_text())
    assert summary["episodes_per_agent"] == {"0": budget, "1": budget} and summary["columns"] == peers.CSV_COLUMNS

    # A seed killed before its rows were written: the same command runs it again, and it comes out the same.
    with open(run / "metrics.csv") as handle:
        kept = [row for row in csv.DictReader(handle) if row["agent"] == "0"]
    peers.write_rows(run / "metrics.csv", kept, "w")
    assert peers.main([*argv, "--out", str(run), *QUIET]) == 0
    assert rows_of(run) == first


def test_the_cli_is_deterministic_across_processes_and_reward_mean50_is_the_last_50(tmp_path):
    argv = ["--algo", "ppo", "--env", "cartpole", "--seeds", "2", "--episodes", "55"]
    assert peers.main([*argv, "--out", str(tmp_path / "a"), *QUIET]) == 0
    proc = run_script("scripts/peers.py", *argv, "--out", str(tmp_path / "b"), *QUIET, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = rows_of(tmp_path / "a")[0]
    assert rows == rows_of(tmp_path / "b")[0]
    returns = [float(r["episodic_return"]) for r in rows]
    for i, row in enumerate(rows):
        window = returns[max(0, i + 1 - 50) : i + 1]
        assert math.isclose(float(row["reward_mean50"]), sum(window) / len(window), rel_tol=1e-12)
    assert returns != [returns[0]] * len(returns)


@pytest.mark.parametrize("algo", ["ppo", "recurrent_ppo"])
def test_pong100_runs_with_frame_stacking_and_its_kwargs(tmp_path, algo):
    run = tmp_path / "run"
    assert (
        peers.main(["--algo", algo, "--env", "pong100_nosticky", "--seeds", "0", "--episodes", "1", "--out", str(run)])
        == 0
    )
    cfg = OmegaConf.to_container(OmegaConf.load(run / "config.yaml"))
    assert cfg["env"]["kwargs"] == {"repeat_action_probability": 0.0} and cfg["learner"]["frame_stack"] == 4
    (row,) = rows_of(run)[0]
    assert int(row["episode_length"]) == 100 and int(row["env_steps"]) == 800  # 8 envs, 100 steps each


def test_report_and_aggregate_put_a_peer_and_an_lfcs_run_in_one_table(tmp_path):
    from lfcs.analysis.results import load_conditions

    lfcs_dir, peer_dir = tmp_path / "cartpole_lfcs", tmp_path / "cartpole_ppo"
    lfcs_run(lfcs_dir, seeds=2, episodes=100, reward=lambda agent, episode: 20.0 + agent + episode % 3)
    argv = ["--algo", "ppo", "--env", "cartpole", "--seeds", "0-1", "--episodes", "50", "--out", str(peer_dir)]
    assert peers.main([*argv, *QUIET]) == 0

    conds = {c.label: c for c in load_conditions([lfcs_dir, peer_dir])}
    assert sorted(conds) == ["cartpole_lfcs", "cartpole_ppo"]
    peer = conds["cartpole_ppo"]
    assert sorted(peer.curves) == [0, 1] and all(sorted(c) == [50] for c in peer.curves.values())
    assert peer.config["learner"]["name"] == "ppo" and len(peer.wall_clock_s) == 1
    # env steps over sps_total add up to the seeds' time in training: within the run's wall-clock, and most of it
    (seconds,) = peer.process_seconds
    assert 0.3 * peer.wall_clock_s[0] < seconds <= peer.wall_clock_s[0]

    report, aggregate = load_script("report"), load_script("aggregate")
    out = tmp_path / "table"
    assert report.main([str(lfcs_dir), str(peer_dir), "--reps", "200", "--out", str(out)]) == 0
    with open(out / "report.csv") as handle:
        table = {row["condition"]: row for row in csv.DictReader(handle)}
    assert sorted(table) == ["cartpole_lfcs", "cartpole_ppo"] and table["cartpole_ppo"]["n_seeds"] == "2"
    assert table["cartpole_ppo"]["config.learner.name"] == "ppo"
    assert aggregate.main([str(lfcs_dir), str(peer_dir), "--out", str(out)]) == 0
    with open(out / "summary.csv") as handle:
        assert sorted(row["condition"] for row in csv.DictReader(handle)) == ["cartpole_lfcs", "cartpole_ppo"]


def test_the_popgym_tasks_run_at_their_registered_limits_and_multidiscrete_is_sb3_s_own_one_hot(tmp_path, monkeypatch):
    """Each POPGym env (max_episode_steps null: the registered 200 / 51) runs for both peers, RecurrentPPO included,
    whose LSTM refuses a MultiDiscrete input; the one-hot wrapper must give PPO exactly the run SB3's own one-hot
    preprocessing gives."""
    for env, steps in [("popgym_position_only_cartpole_easy", None), ("popgym_repeat_previous_easy", 51)]:
        for algo in ("ppo", "recurrent_ppo"):
            run = tmp_path / f"{env}_{algo}"
            assert peers.main(["--algo", algo, "--env", env, "--seeds", "3", "--episodes", "2", "--out", str(run)]) == 0
            rows = rows_of(run)[0]
            assert len(rows) == 2 and (steps is None or {int(r["episode_length"]) for r in rows} == {steps})
    argv = ["--algo", "ppo", "--env", "popgym_count_recall_easy", "--seeds", "0", "--episodes", "12"]
    assert peers.main([*argv, "--out", str(tmp_path / "wrapped")]) == 0
    monkeypatch.setattr(peers, "MultiOneHot", lambda env: env)  # SB3 one-hot encodes MultiDiscrete itself
    assert peers.main([*argv, "--out", str(tmp_path / "sb3")]) == 0
    timeless = [
        [{k: v for k, v in r.items() if not k.startswith("sps")} for r in rows_of(tmp_path / d)[0]]
        for d in ("wrapped", "sb3")
    ]
    assert timeless[0] == timeless[1]
    with pytest.raises(TypeError, match="input_size"):  # what the wrapper is for
        peers.main(["--algo", "recurrent_ppo", *argv[2:], "--out", str(tmp_path / "lstm")])


def test_past_the_zoo_s_n_timesteps_vecnormalize_s_statistics_stop_with_the_updates(tmp_path, monkeypatch):
    """The Zoo's run ends at n_timesteps: after it neither the policy nor VecNormalize's running mean may change
    (they drifted under the frozen policy's own states before: RecurrentPPO's CartPole seeds fell from 500 to 157)."""
    from stable_baselines3.common import vec_env

    counts = []

    class Spy(vec_env.VecNormalize):
        def step_wait(self):
            out = super().step_wait()
            counts.append((self.num_timesteps_seen, float(self.obs_rms.count)))
            return out

        num_timesteps_seen = property(lambda self: len(counts) * self.num_envs)

    monkeypatch.setattr(vec_env, "VecNormalize", Spy)
    source, match, hp = peers.ZOO[("recurrent_ppo", "masked_cartpole")]
    monkeypatch.setitem(peers.ZOO, ("recurrent_ppo", "masked_cartpole"), (source, match, {**hp, "n_timesteps": 512}))
    run = tmp_path / "run"
    argv = ["--algo", "recurrent_ppo", "--env", "masked_cartpole", "--seeds", "0", "--episodes", "60"]
    assert peers.main([*argv, "--out", str(run)]) == 0
    rollout = hp["n_envs"] * hp["n_steps"]  # the statistics stop with the first update skipped: after 512 + a rollout
    after = [count for steps, count in counts if steps > 512 + rollout]
    before = [count for steps, count in counts if steps <= 512]
    assert len(after) > 10 and len(set(after)) == 1 and len(set(before)) == len(before)
