"""Does a network's read-out carry the velocities that masked CartPole hides? python scripts/velocity_probe.py [--out F]

For each network (masked_cartpole_rec's N = 500 network with the overrides in NETWORKS, at its initial weights, seed
0), random-policy CartPole-v1 episodes are played (env seeds 0.., actions from numpy default_rng(0)); the network sees
what the agent sees, the masked observation [x, theta] / [0.5, 0.05], and is reset at every episode start, as in
training. A ridge regression (lambda = 1e-3 times the mean feature variance, fit on the first 75 % of the episodes)
predicts the true cart and pole velocities from the read-out trace r_t, the only thing the policy's read-out sees;
R^2 on the held-out 25 % of episodes. Two references with no network: the masked observation at t alone (no memory)
and at t and t-1 (one step of memory, from which the velocities follow by finite differences). ``--runs DIR ...``
adds the trained pi_ref of every agent of each run directory (its last checkpoint), mean over agents, and the run's
firing rate (metrics.csv, mean over agents) in its first and last 50 episodes, and how far training moved W_rec and
W_in: ||W - W_0|| / ||W_0|| (Frobenius) against the initial network, rebuilt from the run's config and seeds.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from bench import compose  # scripts/bench.py, beside this file
from bench_record import git_state, machine
from omegaconf import OmegaConf

from lfcs.export.saved_agent import load_agent
from lfcs.network.policy import SpikingPolicy, build_policy

ROOT = Path(__file__).resolve().parents[1]
SCALE = np.array([0.5, 0.05])  # conf/env/masked_cartpole.yaml's obs_scale for [x, theta]
NETWORKS = {
    "lif_box (masked_cartpole_rec)": [],
    "alif (defaults: tau_a 100, beta 0.4)": ["network.neuron=alif"],
    "alif, tau_a 20, beta 2": ["network.neuron=alif", "network.tau_adapt_steps=20", "network.adapt_beta=2"],
    "lif_box, tau_m in [2, 30]": ["network.tau_mem_steps=[2,30]"],
    "alif, tau_m in [2, 30]": ["network.neuron=alif", "network.tau_mem_steps=[2,30]"],
    "lif_box, tau_m in [2, 30], read-out tau 4": ["network.tau_mem_steps=[2,30]", "network.tau_readout_steps=4"],
}


def episodes(count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(masked observations (T, 2) scaled as the agent sees them, true velocities (T, 2)) of random-policy episodes."""
    env, rng, out = gym.make("CartPole-v1"), np.random.default_rng(0), []
    for i in range(count):
        state, _ = env.reset(seed=i)
        obs, vel, done = [], [], False
        while not done:
            obs.append(state[[0, 2]] / SCALE)
            vel.append(state[[1, 3]])
            state, _, terminated, truncated, _ = env.step(int(rng.integers(2)))
            done = terminated or truncated
        out.append((np.array(obs), np.array(vel)))
    return out


def initial_policy(overrides: list[str]) -> SpikingPolicy:
    cfg = compose(["experiment=masked_cartpole_rec", *overrides])
    network = OmegaConf.to_container(cfg.network, resolve=True)
    return build_policy([torch.Generator().manual_seed(0)], 2, 2, **network)


def readout_features(policy: SpikingPolicy, data) -> list[np.ndarray]:
    feats = []
    for obs, _ in data:
        state, rows = policy.initial_state(), []
        for x in torch.as_tensor(obs).unsqueeze(1):  # (T, 1, 2): one agent
            _, _, state = policy.step(x, state)
            rows.append(state.r[0].numpy().copy())
        feats.append(np.array(rows))
    return feats


def relative_change(run: Path, agent: int, policy: SpikingPolicy) -> dict[str, float]:
    """||W - W_0|| / ||W_0|| of W_rec and W_in, W_0 drawn again from the run's config with seed + agent."""
    cfg = OmegaConf.load(run / "config.yaml")
    network = OmegaConf.to_container(cfg.network, resolve=True)
    start = build_policy([torch.Generator().manual_seed(cfg.seed + agent)], 2, 2, **network,
                         learn_rec=cfg.learner.learn_rec, feedback=cfg.learner.feedback)  # fmt: skip
    change = {}
    for name in ("w_rec", "w_in"):
        before, after = getattr(start, name), getattr(policy, name)
        if before is not None:
            change[name] = float((after - before).norm() / before.norm())
    return change


def held_out_r2(features: list[np.ndarray], data) -> list[float]:
    """R^2 per velocity of a ridge fit on the first 75 % of episodes, scored on the rest."""
    split = int(0.75 * len(data))
    x_fit, x_test = np.concatenate(features[:split]), np.concatenate(features[split:])
    y_fit, y_test = np.concatenate([v for _, v in data[:split]]), np.concatenate([v for _, v in data[split:]])
    mean, y_mean = x_fit.mean(0), y_fit.mean(0)
    a, b = x_fit - mean, y_fit - y_mean
    lam = 1e-3 * a.var(0).mean() * len(a)
    weights = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ b)
    pred = (x_test - mean) @ weights + y_mean
    return [float(1 - ((pred - y_test)[:, k] ** 2).sum() / ((y_test[:, k] - y_test[:, k].mean()) ** 2).sum())
            for k in range(2)]  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--runs", type=Path, nargs="*", default=[])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    data = episodes(args.episodes)
    now = [o for o, _ in data]
    lagged = [np.concatenate([o, np.vstack([o[:1], o[:-1]])], axis=1) for o in now]
    results = {"observation at t (no memory)": held_out_r2(now, data),
               "observations at t and t-1": held_out_r2(lagged, data)}  # fmt: skip
    for name, overrides in NETWORKS.items():
        results[name] = held_out_r2(readout_features(initial_policy(overrides), data), data)
    trained = {}
    for run in args.runs:
        agents = sorted(int(a) for a in json.loads((run / "summary.json").read_text())["episodes_per_agent"])
        policies = [load_agent(run, a).ref_policy for a in agents]
        per_agent = [held_out_r2(readout_features(policy, data), data) for policy in policies]
        changes = [relative_change(run, a, policy) for a, policy in zip(agents, policies)]
        with open(run / "metrics.csv") as handle:
            rows = [(int(r["episode"]), float(r["firing_rate"])) for r in csv.DictReader(handle)]
        last = max(e for e, _ in rows)
        first_rate = float(np.mean([f for e, f in rows if e <= 50]))
        last_rate = float(np.mean([f for e, f in rows if e > last - 50]))
        rates = [first_rate, last_rate]
        mean_change = {k: float(np.mean([c[k] for c in changes])) for k in changes[0]}
        trained[str(run)] = {"r2_per_agent": per_agent, "firing_rate_first_last_50": rates,
                             "relative_change_per_agent": changes, "relative_change_mean": mean_change}  # fmt: skip
        print(f"{run.name}: firing rate {rates[0]:.4f} (episodes 1-50) -> {rates[1]:.4f} (last 50); "
              f"||W - W_0|| / ||W_0||: {mean_change}")  # fmt: skip
        results[f"trained: {run.name}"] = np.mean(per_agent, axis=0).tolist()
    for name, (r2_cart, r2_pole) in results.items():
        print(f"{name:60s} R^2 cart velocity {r2_cart:+.3f}  pole angular velocity {r2_pole:+.3f}")
    record = {
        "command": "python scripts/velocity_probe.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "episodes": args.episodes,
        "steps": int(sum(len(o) for o in now)),
        "r2_held_out": {name: {"cart_velocity": r[0], "pole_angular_velocity": r[1]} for name, r in results.items()},
        "overrides": NETWORKS,
        "trained_per_agent": trained,
        "machine": machine(),
        "git": git_state(ROOT),
    }
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    main()
