"""Throughput of lfcs on this machine: python scripts/bench.py [--agents 20] [--workers 2] [--episodes 10]

Measures, in one run, with the same env construction and the same split of agents over worker processes as
``train`` (``lfcs.train.agent_groups``, one torch thread per process):
  (a) env only: the exact Pong-100 protocol (reset, 1 + 20 NOOPs, 100 steps) with random actions;
  (b) training: lf-cs (fast, 2 passes, N = 500), acting and learning;
  (c) the same for a single agent in one process; (d) for 10 agents in one process (and its peak memory).
Steady state only: each process plays one untimed warm-up episode first. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import time

import numpy as np
import torch

CONF_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conf")
AUTHORS_EPISODES_PER_S = 2.3  # the authors' numpy code, one agent, one core (issue #4)


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from lfcs.config import register_schema

    register_schema()
    with initialize_config_dir(config_dir=os.path.abspath(CONF_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def _worker(job: tuple[str, list[int], int, list[str]]) -> dict:
    mode, agent_ids, episodes, overrides = job
    torch.set_num_threads(1)
    from lfcs.agents import AgentGroup
    from lfcs.rollout import make_env

    cfg = compose(overrides)
    if mode == "env":
        envs = [make_env(cfg.env.id, cfg.env.max_episode_steps, cfg.env.kwargs) for _ in agent_ids]
        rng = np.random.default_rng(0)
        for b, env in enumerate(envs):
            env.reset(seed=b)

        def episode():
            for env in envs:
                env.reset()
                done = False
                while not done:
                    _, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
                    done = terminated or truncated
    else:
        group = AgentGroup(cfg, agent_ids)

        def episode():
            group.run_episode()

    episode()  # warm-up, untimed
    start = time.perf_counter()
    for _ in range(episodes):
        episode()
    elapsed = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"episodes": episodes * len(agent_ids), "seconds": elapsed, "peak_mib": peak_mib}


def measure(mode: str, groups: list[list[int]], episodes: int, overrides: list[str]) -> dict:
    jobs = [(mode, g, episodes, overrides) for g in groups]
    if len(groups) == 1:
        results = [_worker(jobs[0])]
    else:
        with mp.get_context("spawn").Pool(len(groups)) as pool:
            results = pool.map(_worker, jobs)
    # Processes run side by side: throughput is total episodes over the slowest process's time.
    seconds = max(r["seconds"] for r in results)
    return {
        "episodes_per_s": sum(r["episodes"] for r in results) / seconds,
        "peak_mib_per_process": max(r["peak_mib"] for r in results),
        "peak_mib_total": sum(r["peak_mib"] for r in results),
    }


def main() -> None:
    from lfcs.train import agent_groups

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=20, help="agents in (a) and (b); 20 = Fig. 1c's 2 x 10")
    parser.add_argument("--workers", type=int, default=2, help="processes (this machine has 2 cores)")
    parser.add_argument("--episodes", type=int, default=10, help="timed episodes per agent")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. network.num_neurons=500")
    args = parser.parse_args()
    overrides = ["experiment=pong100_lfcs", *args.overrides]
    groups = agent_groups(args.agents, args.workers)
    print(f"bench: {args.agents} agents over {len(groups)} processes, {args.episodes} timed episodes each", flush=True)
    env_only = measure("env", groups, args.episodes, overrides)
    print(f"(a) env only        {env_only['episodes_per_s']:7.2f} episodes/s", flush=True)
    training = measure("train", groups, args.episodes, overrides)
    print(f"(b) lf-cs training  {training['episodes_per_s']:7.2f} episodes/s", flush=True)
    single = measure("train", [[0]], 2 * args.episodes, overrides)
    print(f"(c) one agent       {single['episodes_per_s']:7.2f} episodes/s", flush=True)
    ten = measure("train", [list(range(10))], args.episodes, overrides)
    print(f"(d) 10 agents, one process {ten['episodes_per_s']:7.2f} episodes/s", flush=True)
    fig1c_episodes = 2 * 10 * 2500
    result = {
        "env_only_episodes_per_s": round(env_only["episodes_per_s"], 3),
        "train_episodes_per_s": round(training["episodes_per_s"], 3),
        "efficiency": round(training["episodes_per_s"] / env_only["episodes_per_s"], 3),
        "single_agent_episodes_per_s": round(single["episodes_per_s"], 3),
        "single_agent_speedup_vs_authors": round(single["episodes_per_s"] / AUTHORS_EPISODES_PER_S, 2),
        "ten_agents_one_process_episodes_per_s": round(ten["episodes_per_s"], 3),
        "fig1c_minutes_estimate": round(fig1c_episodes / training["episodes_per_s"] / 60, 1),
        "peak_mib_10_agents_one_process": round(ten["peak_mib_per_process"], 1),
        "peak_mib_training_total": round(training["peak_mib_total"], 1),
        "num_agents": args.agents,
        "workers": len(groups),
        "num_neurons": int(compose(overrides).network.num_neurons),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
