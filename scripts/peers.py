"""Peers: SB3's PPO and sb3-contrib's RecurrentPPO on lfcs's envs, seeds and episode budgets, in lfcs's run layout.

    python scripts/peers.py --algo recurrent_ppo|ppo --env ENV --seeds 0-9 --episodes 1000 [--out DIR] [--no-progress]

ENV is a config-group name of conf/env/ (cartpole, masked_cartpole, pong100, pong100_nosticky, popgym_*): the peer
plays that file's env id, kwargs and max_episode_steps (null: the id's registered limit), and sees the env's raw
observation (obs_shift / obs_scale are lfcs's spike input encoding, not part of the task; SB3 one-hot encodes a
Discrete / MultiDiscrete one). Seed s is one "agent" (row ``agent`` = s - first seed): torch, numpy and the policy's
actions are seeded with s (SB3's ``seed=``); env i of its n_envs starts from ``reset(seed=s + i * ENV_SEED_STRIDE)``,
so env 0 starts where lfcs's agent s does and no two envs of seeds 0-999 share a reset seed. A seed's episodes are
counted over its n_envs envs as they end; training stops at the step where the budget's last one ends (unfinished
episodes are dropped).

Hyperparameters: RL Zoo's per (algo, env family), in conf/peers/zoo.yaml with the Zoo's commit, "exact" or "borrowed"
(why). lin_x schedules fall from x to 0 over the Zoo's n_timesteps; past it, as if the Zoo's run had ended there, SB3's
updates are skipped and VecNormalize's statistics frozen (else they drift under the fixed policy's states).

Writes OUT (default runs/peers/<env>_<algo>), as lfcs's scripts/train.py does: config.yaml (seed, num_agents, iterations
and ``learner.name``, which lfcs/analysis/results.py groups by), metrics.csv (lfcs's columns; one row per seed and
finished episode; env_steps = the seed's env steps over all its envs when the episode ended; sps = sps_total = the
steps since the seed's previous row over the seconds since it, so that, as for lfcs's rows, steps over sps_total add
up to the seed's time; lfcs-only columns empty), summary.json, command.txt. A seed's rows are written when it ends;
running the same command again continues the others. An OUT holding anything else, or a bad flag: one line, exit 2.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import importlib.util
import json
import shlex
import sys
import time
from collections import Counter
from functools import partial
from pathlib import Path

import gymnasium as gym
import numpy as np
import yaml
from omegaconf import OmegaConf
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import envs  # noqa: E402, F401  (registers lfcs's env ids)

PROG = "peers.py"
# lfcs's logger CSV_COLUMNS, results WINDOW and objective_windows default (tests/test_peers.py checks them).
CSV_COLUMNS = "agent episode env_steps episodic_return reward_mean50 episode_length sps sps_total mask_fraction".split()
CSV_COLUMNS += "abs_log_ratio approx_kl ref_kl old_episode_weight firing_rate w_out_norm".split()
WINDOW, OBJECTIVE_WINDOWS = 50, 5
ENV_SEED_STRIDE = 1_000
ZOO_FILE = ROOT / "conf" / "peers" / "zoo.yaml"  # RL Zoo's hyperparameters per (algo, env family), and why
_ZOO = yaml.safe_load(ZOO_FILE.read_text())
ZOO_COMMIT, FAMILIES = _ZOO["zoo_commit"], _ZOO["families"]
# (algo, env family) -> (Zoo file: key, exact or borrowed (why), hyperparameters as the Zoo writes them)
ZOO = {(algo, family): tuple(entry) for algo, rows in _ZOO["entries"].items() for family, entry in rows.items()}
ALGOS = ("recurrent_ppo", "ppo")
SB3_KEYS = ("n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "ent_coef", "vf_coef")


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(message)


def env_groups() -> dict[str, dict]:
    """conf/env/<name>.yaml -> its env config, for the envs a peer can play."""
    groups = {path.stem: OmegaConf.to_container(OmegaConf.load(path)) for path in sorted(ROOT.glob("conf/env/*.yaml"))}
    return {name: cfg for name, cfg in groups.items() if cfg["id"] in FAMILIES}


def parse_seeds(text: str) -> tuple[int, int]:
    """'A-B' (inclusive) or 'A' -> (first seed, number of seeds)."""
    first, sep, last = text.partition("-")
    if not (first.isdigit() and (last.isdigit() or not sep)) or int(last or first) < int(first):
        raise UsageError(f"argument --seeds: {text!r} is not allowed: one seed N or a range A-B with 0 <= A <= B")
    return int(first), int(last or first) - int(first) + 1


def make_env(env_cfg: dict) -> gym.Env:
    """lfcs.environments.make_env without the observation scaling (the same id, kwargs and max_episode_steps)."""
    if env_cfg["id"].startswith("ALE/"):
        import ale_py

        gym.register_envs(ale_py)
    steps = env_cfg.get("max_episode_steps")
    extra = {} if steps is None else {"max_episode_steps": int(steps)}
    env = gym.make(env_cfg["id"], **extra, **dict(env_cfg.get("kwargs") or {}))
    return MultiOneHot(env) if isinstance(env.observation_space, gym.spaces.MultiDiscrete) else env


class FirstResetSeed(gym.Wrapper):
    """The env's first reset uses ``seed`` (whatever the caller passes); later resets continue its RNG."""

    def __init__(self, env: gym.Env, seed: int):
        super().__init__(env)
        self.first_seed = seed

    def reset(self, *, seed=None, options=None):
        seed, self.first_seed = (seed if self.first_seed is None else self.first_seed), None
        return self.env.reset(seed=seed, options=options)


class MultiOneHot(gym.ObservationWrapper):
    """MultiDiscrete as SB3 preprocesses it, in a Box (sb3-contrib's nn.LSTM refuses its numpy.int64 input size)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.nvec = np.asarray(env.observation_space.nvec).ravel()
        self.observation_space = gym.spaces.Box(0.0, 1.0, (int(self.nvec.sum()),), np.float32)

    def observation(self, observation):
        out = np.zeros(self.observation_space.shape, np.float32)
        out[np.cumsum(self.nvec) - self.nvec + np.asarray(observation).ravel()] = 1.0
        return out


def build_config(args, env_cfg: dict, first: int, count: int) -> dict:
    source, match, hp = ZOO[(args.algo, FAMILIES[env_cfg["id"]])]
    env = {"name": args.env, **{k: env_cfg.get(k) for k in ("id", "max_episode_steps", "kwargs")}}
    env.update(obs_shift=None, obs_scale=None)  # raw observations (see the module docstring)
    learner = {"name": args.algo, "zoo": f"DLR-RM/rl-baselines3-zoo@{ZOO_COMMIT} hyperparams/{source}"}
    learner["zoo_match"] = match
    learner.update({"normalize": False, "frame_stack": None, **hp, "env_seed_stride": ENV_SEED_STRIDE})
    return dict(seed=first, num_agents=count, iterations=args.episodes, device="cpu", env=env, learner=learner)


def schedule(value, n_timesteps: int, total: int):
    """A Zoo value: 'lin_x' falls from x to 0 over the Zoo's n_timesteps (then stays 0); a number stays."""
    from stable_baselines3.common.utils import LinearSchedule

    if isinstance(value, str) and value.startswith("lin_"):
        return LinearSchedule(float(value[4:]), 0.0, n_timesteps / total)
    return value


def train_seed(cfg: dict, agent: int, on_row) -> list[dict]:
    """One seed's training until its episode budget; its metric rows."""
    import torch
    from sb3_contrib import RecurrentPPO
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecNormalize

    hp, env_cfg, budget, seed = dict(cfg["learner"]), cfg["env"], cfg["iterations"], cfg["seed"] + agent
    torch.set_num_threads(1)
    n, stride = hp["n_envs"], hp["env_seed_stride"]
    venv = DummyVecEnv([lambda i=i: Monitor(FirstResetSeed(make_env(env_cfg), seed + i * stride)) for i in range(n)])
    if hp["frame_stack"]:
        venv = VecFrameStack(venv, hp["frame_stack"])
    if hp["normalize"]:
        venv = VecNormalize(venv, gamma=hp["gamma"])  # as the Zoo passes gamma to VecNormalize
    limit = env_cfg["max_episode_steps"] or gym.spec(env_cfg["id"]).max_episode_steps
    total = (budget + n) * int(limit) + n * hp["n_steps"]  # every episode at its limit + a rollout: the budget ends it
    kwargs = {k: v for k, v in hp.items() if k in SB3_KEYS}
    for key in ("learning_rate", "clip_range"):
        kwargs[key] = schedule(hp[key], hp["n_timesteps"], total)
    policy_kwargs = dict(hp.get("policy_kwargs") or {})
    if policy_kwargs.get("activation_fn") == "relu":
        policy_kwargs["activation_fn"] = torch.nn.ReLU
    algo = RecurrentPPO if hp["name"] == "recurrent_ppo" else PPO

    class Peer(algo):
        def train(self) -> None:  # past the Zoo's n_timesteps (lin_ schedules at 0) the Zoo's run has ended
            if not frozen or self.num_timesteps <= hp["n_timesteps"]:
                return super().train()
            if hp["normalize"]:  # and VecNormalize's statistics stop with the updates
                self.env.training = False

    frozen = all(str(hp[key]).startswith("lin_") for key in ("learning_rate", "clip_range"))
    model = Peer(hp["policy"], venv, policy_kwargs=policy_kwargs, seed=seed, device="cpu", **kwargs)
    rows, returns, last = [], [], [0, time.perf_counter()]  # env steps and time at the seed's previous row

    class EpisodeBudget(BaseCallback):
        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" not in info:
                    continue
                returns.append(float(info["episode"]["r"]))
                window = returns[-WINDOW:]
                now = time.perf_counter()
                sps = (self.num_timesteps - last[0]) / max(now - last[1], 1e-9)
                last[:] = [self.num_timesteps, now]
                row = {"agent": agent, "episode": len(returns), "env_steps": self.num_timesteps}
                row.update(episodic_return=returns[-1], reward_mean50=sum(window) / len(window))
                row.update(episode_length=int(info["episode"]["l"]), sps=sps, sps_total=sps)
                rows.append(row)
                on_row(row)
                if len(rows) == budget:
                    return False
            return True

    model.learn(total_timesteps=total, callback=EpisodeBudget())
    venv.close()
    return rows


def read_rows(path: Path) -> list[dict]:
    return list(csv.DictReader(path.read_text().splitlines())) if path.exists() else []


def write_rows(path: Path, rows: list[dict], mode: str) -> None:
    with open(path, mode, newline="") as handle:
        writer = csv.DictWriter(handle, CSV_COLUMNS, restval="")
        if mode == "w":
            writer.writeheader()
        writer.writerows(rows)


def summarize(rows: list[dict], wall_clock_s: float) -> dict:
    """As lfcs.running.training.summarize: per agent the mean reward_mean50 of its last 5 windows; their mean."""
    per_agent: dict[int, list[tuple[int, float]]] = {}
    for row in rows:
        per_agent.setdefault(int(row["agent"]), []).append((int(row["episode"]), float(row["reward_mean50"])))
    finals = []
    for values in per_agent.values():
        windows = [value for episode, value in values if episode % WINDOW == 0] or [values[-1][1]]
        finals.append(sum(windows[-OBJECTIVE_WINDOWS:]) / len(windows[-OBJECTIVE_WINDOWS:]))
    objective = sum(finals) / len(finals) if finals else float("nan")
    episodes = {agent: len(values) for agent, values in sorted(per_agent.items())}
    summary = {"objective": objective, "final_reward_per_agent": finals, "episodes_per_agent": episodes}
    return {**summary, "columns": CSV_COLUMNS, "wall_clock_s": wall_clock_s}


def prepare(args) -> tuple[dict, Path, set[int]]:
    """Check every flag and the run directory; returns the config, the directory and the agents already done."""
    missing = [name for name in ("stable_baselines3", "sb3_contrib") if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"the peers extra is not installed (no {', '.join(missing)}): pip install -e '.[peers]'")
    groups = env_groups()
    if args.env not in groups:
        raise UsageError(f"argument --env: {args.env!r} is not allowed: one of {', '.join(groups)}")
    if args.episodes < 1:
        raise UsageError(f"argument --episodes: {args.episodes} is not allowed: an integer >= 1")
    cfg = build_config(args, groups[args.env], *parse_seeds(args.seeds))
    out = args.out or ROOT / "runs" / "peers" / f"{args.env}_{args.algo}"
    if out.exists() and not out.is_dir():
        raise UsageError(f"argument --out: {str(out)!r} is not allowed: it is a file")
    stored = out / "config.yaml"
    if stored.exists():
        old = OmegaConf.to_container(OmegaConf.load(stored))
        if old != json.loads(json.dumps(cfg)):
            keys = [k for k in sorted(set(old) | set(cfg)) if old.get(k) != cfg.get(k)]
            raise UsageError(f"argument --out: {str(out)!r} already holds another run (differs in {', '.join(keys)})")
    elif out.is_dir() and any(out.iterdir()):
        raise UsageError(f"argument --out: {str(out)!r} is not allowed: it holds files and no peers run")
    counts = Counter(int(row["agent"]) for row in read_rows(out / "metrics.csv"))
    return cfg, out, {agent for agent, n in counts.items() if n == args.episodes}


def progress(bar: tqdm, row: dict) -> None:
    bar.set_postfix(reward_mean50=f"{row['reward_mean50']:.2f}", refresh=False)
    bar.update(1)


def main(argv: list[str]) -> int:
    parser = Parser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--algo", required=True, choices=ALGOS)
    parser.add_argument("--env", required=True, help="a conf/env/<name>.yaml name")
    parser.add_argument("--seeds", default="0-9", help="A-B (inclusive) or N; default 0-9")
    parser.add_argument("--episodes", type=int, required=True, help="episode budget of every seed")
    parser.add_argument("--out", type=Path, default=None, help="run directory (default runs/peers/<env>_<algo>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    try:
        args = parser.parse_args(argv)
        cfg, out, done = prepare(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(cfg)))
    (out / "command.txt").write_text(shlex.join(["python", "scripts/peers.py", *argv]) + "\n")
    kept = [row for row in read_rows(out / "metrics.csv") if int(row["agent"]) in done]
    write_rows(out / "metrics.csv", kept, "w")  # drops the rows of a seed that did not finish
    todo = [agent for agent in range(cfg["num_agents"]) if agent not in done]
    started, bar = time.perf_counter(), tqdm(total=len(todo) * cfg["iterations"], unit="ep", disable=args.no_progress)
    for agent in todo:
        bar.set_description(f"seed {cfg['seed'] + agent}")
        rows = train_seed(cfg, agent, partial(progress, bar))
        write_rows(out / "metrics.csv", rows, "a")
    bar.close()
    summary = summarize(read_rows(out / "metrics.csv"), time.perf_counter() - started)
    summary["versions"] = {name: importlib.metadata.version(name) for name in ("stable-baselines3", "sb3-contrib")}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{out}: objective {summary['objective']:.3f} (mean over seeds of reward_mean50, last 5 windows)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
