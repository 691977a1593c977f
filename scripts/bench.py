"""Throughput of lfcs on this machine: python scripts/bench.py [--episodes 20] [--repeats 3] [--out results/bench]

Three process layouts: one agent in one process, 10 agents in one process, and Fig. 1c's set-up (``--agents 20`` over
``--workers 2`` processes, split by ``lfcs.running.training.agent_groups``, one torch thread per process). Each layout's
processes start once and build one ``AgentGroup`` each (training's own env construction and code path), play one untimed
warm-up episode of each kind, then alternate env only / training ``--repeats`` times:
  env only: the group's own envs, the exact Pong-100 protocol (reset, 1 + 20 NOOPs, 100 steps in lockstep),
            random actions, no network;
  training: ``AgentGroup.run_episode`` (lf-cs fast, 2 passes, N = 500), acting and learning.
Each measurement is ``--episodes`` E episodes per agent (2E for the single agent, so that it lasts long enough to
time); its rate is all processes' episodes over the slowest process's seconds (they run side by side).
A layout's efficiency is its median training rate over its median env-only rate; ``*_paired_median`` is the
median of the per-repeat ratios. Progress goes to stderr; the last stdout line is one JSON object, and ``--out DIR``
writes it with every repeat's raw numbers and the machine to DIR/<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from bench_record import git_state, machine  # scripts/bench_record.py, beside this file

from lfcs.running.scripting import OneLineParser, integer, output_dir

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
# The authors' numpy code, one agent, one core, as quoted in issue #4: a constant, not measured by this script.
AUTHORS_EPISODES_PER_S = 2.3
FIG1C_EPISODES = 2 * 10 * 2500  # two curves x 10 seeds x 2500 episodes
ACTION_SEED = 12345  # env-only random actions: process p draws from default_rng(ACTION_SEED + its first agent id)
PROGRESS_EVERY_S = 5.0
HIGH_LOAD = 3.0
SINGLE_EPISODES_FACTOR = 2  # one agent plays 2E episodes per measurement, so that it lasts long enough to time


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from lfcs.config import register_schema

    register_schema()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=overrides)


def env_only_episode(envs: list, rng: np.random.Generator) -> None:
    """``play_episode``'s env calls with random actions: reset all, then step the running envs in lockstep."""
    for env in envs:
        env.reset()
    running = [True] * len(envs)
    while any(running):
        actions = rng.integers(envs[0].action_space.n, size=len(envs))
        for b, env in enumerate(envs):
            if running[b]:
                _, _, terminated, truncated, _ = env.step(int(actions[b]))
                running[b] = not (terminated or truncated)


def _worker(conn, overrides: list[str], agent_ids: list[int], rank: int, label: str) -> None:
    """One process of a layout: build the group, warm up, then run the measurements the parent asks for."""
    torch.set_num_threads(1)
    try:
        from lfcs.running.agents import AgentGroup

        group = AgentGroup(compose(overrides), agent_ids)
        rng = np.random.default_rng(ACTION_SEED + agent_ids[0])
        episode = {"env": lambda: env_only_episode(group.envs, rng), "train": group.run_episode}
        episode["train"]()  # warm-up, untimed; the first episode seeds each env's first reset, as in training
        episode["env"]()
        conn.send({"ready": True})
        while (job := conn.recv()) is not None:  # EOFError if the parent died: the worker ends with it
            kind, episodes, tag = job
            start = last = time.perf_counter()
            cpu_start = time.process_time()
            for i in range(episodes):
                episode[kind]()
                if rank == 0 and time.perf_counter() - last > PROGRESS_EVERY_S:
                    last = time.perf_counter()
                    say(f"{label}: {tag}: episode {i + 1}/{episodes}")
            seconds = time.perf_counter() - start
            peak = {"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
            cpu_seconds = time.process_time() - cpu_start  # excludes time the process waited for a core
            conn.send({"episodes": episodes * len(agent_ids), "seconds": seconds, "cpu_seconds": cpu_seconds, **peak})
    except EOFError:
        pass
    except Exception as exc:  # reported to the parent, which stops the bench
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
    os._exit(0)  # nothing left to flush; skips seconds of interpreter teardown per process


def _gather(pipes: list) -> list[dict]:
    results = []
    for rank, pipe in enumerate(pipes):
        try:
            reply = pipe.recv()
        except EOFError as exc:
            raise RuntimeError(f"bench worker {rank} died") from exc
        if "error" in reply:
            raise RuntimeError(f"bench worker {rank}: {reply['error']}")
        results.append(reply)
    return results


def rate(processes: list[dict]) -> float:
    """Episodes per second of processes that ran side by side: all their episodes over the slowest one's time."""
    return sum(p["episodes"] for p in processes) / max(p["seconds"] for p in processes)


def cpu_rate(processes: list[dict]) -> float:
    return sum(p["episodes"] for p in processes) / sum(p["cpu_seconds"] for p in processes)


def layout_stats(repeats: list[dict]) -> dict:
    """Medians and efficiencies of one layout, from its raw repeats (the test recomputes them the same way)."""
    env_raw, train_raw = [r["env"] for r in repeats], [r["train"] for r in repeats]
    env, train = list(map(rate, env_raw)), list(map(rate, train_raw))
    peaks = [max(r["train"][p]["peak_mib"] for r in repeats) for p in range(len(repeats[0]["train"]))]
    return {
        "env_only_episodes_per_s": statistics.median(env),
        "train_episodes_per_s": statistics.median(train),
        "efficiency": statistics.median(train) / statistics.median(env),
        "efficiency_paired_median": statistics.median(t / e for t, e in zip(train, env)),
        # Cross-check less sensitive to other load: the same ratio of episodes per CPU-second (time.process_time).
        "efficiency_cpu_time": statistics.median(map(cpu_rate, train_raw)) / statistics.median(map(cpu_rate, env_raw)),
        "peak_mib_per_process": max(peaks),
        "peak_mib_total": sum(peaks),
    }


def run_layout(label: str, groups: list[list[int]], episodes: int, repeats: int, overrides: list[str]) -> dict:
    """Start the layout's processes, alternate env-only and training measurements, stop the processes."""
    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    say(f"{label}: starting {len(groups)} process(es), warm-up")
    try:
        for rank, agent_ids in enumerate(groups):
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child_end, overrides, agent_ids, rank, label), daemon=True)
            proc.start()
            child_end.close()
            pipes.append(parent_end)
            procs.append(proc)
        _gather(pipes)  # all ready: the processes of a layout start each measurement together
        raw = []
        for r in range(repeats):
            row = {}
            for kind in ("env", "train"):
                tag = f"{kind} {r + 1}/{repeats}"
                for pipe in pipes:
                    pipe.send((kind, episodes, tag))
                row[kind] = _gather(pipes)
                say(f"{label}: {tag}: {rate(row[kind]):7.2f} episodes/s")
            raw.append(row)
    finally:
        for pipe in pipes:
            try:
                pipe.send(None)
            except OSError:  # that worker is gone already
                pass
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join()
    stats = layout_stats(raw)
    env, train = stats["env_only_episodes_per_s"], stats["train_episodes_per_s"]
    say(f"{label}: medians: env only {env:.2f}, training {train:.2f} episodes/s, efficiency {stats['efficiency']:.3f}")
    return {"agents": sum(map(len, groups)), "groups": groups, "episodes_per_agent": episodes, "repeats": raw, **stats}


def summary_line(layouts: dict, args: argparse.Namespace, num_neurons: int, cpu: dict) -> dict:
    single, ten, fig1c = layouts["single_agent"], layouts["ten_agents_one_process"], layouts["fig1c"]
    return {
        "env_only_episodes_per_s": round(fig1c["env_only_episodes_per_s"], 3),
        "train_episodes_per_s": round(fig1c["train_episodes_per_s"], 3),
        "efficiency": round(fig1c["efficiency"], 3),
        "efficiency_paired_median": round(fig1c["efficiency_paired_median"], 3),
        "single_agent_episodes_per_s": round(single["train_episodes_per_s"], 3),
        "single_agent_env_only_episodes_per_s": round(single["env_only_episodes_per_s"], 3),
        "single_agent_efficiency": round(single["efficiency"], 3),
        "single_agent_speedup_vs_authors": round(single["train_episodes_per_s"] / AUTHORS_EPISODES_PER_S, 2),
        "ten_agents_one_process_episodes_per_s": round(ten["train_episodes_per_s"], 3),
        "ten_agents_env_only_episodes_per_s": round(ten["env_only_episodes_per_s"], 3),
        "ten_agents_efficiency": round(ten["efficiency"], 3),
        "fig1c_minutes_estimate": round(FIG1C_EPISODES / fig1c["train_episodes_per_s"] / 60, 1),
        "peak_mib_10_agents_one_process": round(ten["peak_mib_per_process"], 1),
        "peak_mib_training_total": round(fig1c["peak_mib_total"], 1),
        "num_agents": args.agents,
        "workers": len(fig1c["groups"]),
        "num_neurons": num_neurons,
        "episodes": args.episodes,
        "repeats": args.repeats,
        "cpu": cpu["cpu_model"],
        "cores": cpu["cpu_count"],
    }


def notes(layouts: dict, args: argparse.Namespace, load_before: tuple, load_after: tuple) -> list[str]:
    found = [
        f"single_agent_speedup_vs_authors is the measured single-agent training rate over AUTHORS_EPISODES_PER_S = "
        f"{AUTHORS_EPISODES_PER_S}, a constant quoted in issue #4 (the authors' numpy code, one agent, one core); "
        "the authors' code was not run by this bench nor on this machine"
    ]
    if max(load_before[0], load_after[0]) > HIGH_LOAD:
        found.append(
            f"1-min load average {load_before[0]:.2f} before and {load_after[0]:.2f} after (> {HIGH_LOAD}): other "
            "processes shared the CPUs; absolute rates are low, compare ratios measured within this file"
        )
    if args.quick:
        found.append("--quick: 1 episode per measurement and 4 agents in the Fig. 1c layout; not for reporting")
    for name, layout in layouts.items():
        if layout["efficiency"] > 1:
            found.append(f"{name}: efficiency {layout['efficiency']:.3f} > 1: noise exceeds the cost of learning")
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(prog="bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=integer(1), default=20, help="agents of the Fig. 1c layout (2 x 10 seeds)")
    parser.add_argument("--workers", type=integer(1), default=2, help="processes of the Fig. 1c layout (2 cores here)")
    parser.add_argument("--episodes", type=integer(1), default=20, help="timed episodes per agent and measurement")
    parser.add_argument("--repeats", type=integer(1), default=3, help="env-only/training pairs per layout")
    parser.add_argument("--out", type=output_dir, default=None, help="write DIR/<timestamp>.json")
    parser.add_argument("--quick", action="store_true", help="tests: 1 episode per measurement, 4 agents over 2")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. network.num_neurons=500")
    args = parser.parse_args(argv)
    if args.quick:  # the Fig. 1c layout keeps its 2 workers, with 2 agents each: 4 process starts fit in a test
        args.episodes, args.agents = 1, 4
    if args.workers > args.agents:
        parser.error(f"argument --workers: {args.workers} is not allowed: at most --agents={args.agents}")
    from lfcs.running.cli import refuse_bad_overrides

    refuse_bad_overrides(parser, ["experiment=pong100_lfcs", "progress=false", *args.overrides], CONF_DIR)
    return args


def main() -> None:
    from lfcs.running.training import agent_groups

    args = parse_args()
    overrides = ["experiment=pong100_lfcs", "progress=false", *args.overrides]
    cfg = compose(overrides)
    started, load_before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), os.getloadavg()
    say(f"load average {load_before[0]:.2f}; {args.repeats} repeats of {args.episodes} episodes per agent")
    plan = {
        "single_agent": ([[0]], SINGLE_EPISODES_FACTOR * args.episodes),
        "ten_agents_one_process": ([list(range(10))], args.episodes),
        "fig1c": (agent_groups(args.agents, args.workers), args.episodes),
    }
    layouts = {name: run_layout(name, groups, eps, args.repeats, overrides) for name, (groups, eps) in plan.items()}
    load_after, cpu = os.getloadavg(), machine()
    summary = summary_line(layouts, args, int(cfg.network.num_neurons), cpu)
    say(f"full Fig. 1c ({FIG1C_EPISODES} episodes) estimate: {summary['fig1c_minutes_estimate']} min")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"{started.replace(':', '-')}.json"
        record = {
            "summary": summary,
            "notes": notes(layouts, args, load_before, load_after),
            "layouts": layouts,
            "machine": cpu,
            "git": git_state(ROOT),
            "date": started,
            "command": shlex.join([sys.executable, *sys.argv]),
            "overrides": overrides,
            "seeds": {
                "config_seed": int(cfg.seed),
                "agent_seed": "config_seed + agent id (weights, noise, first env reset)",
                "env_only_actions": f"numpy default_rng({ACTION_SEED} + first agent id of the process)",
            },
            "loadavg_before": list(load_before),
            "loadavg_after": list(load_after),
            "torch_threads_per_process": 1,
        }
        path.write_text(json.dumps(record, indent=1) + "\n")
        summary["file"] = str(path)
        say(f"wrote {path}")
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
