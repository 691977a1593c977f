"""Throughput of lfcs on this machine: python scripts/bench.py [--episodes 20] [--repeats 3] [--out results/bench]

Pong-100, where the Atari emulator is the floor: three process layouts, one agent in one process, 10 agents in one
process, and Fig. 1c's set-up (``--agents 20`` over ``--workers 2`` processes, split by
``lfcs.running.training.agent_groups``, one torch thread per process). Each layout's processes start once and build one
``AgentGroup`` each (training's own env construction and code path), play one untimed warm-up episode of each kind,
then alternate env only / training ``--repeats`` times:
  env only: the group's own envs, the exact Pong-100 protocol (reset, 1 + 20 NOOPs, 100 steps in lockstep),
            random actions, no network;
  training: ``AgentGroup.run_episode`` (lf-cs fast, 2 passes, N = 500), acting and learning.
Each measurement is ``--episodes`` E episodes per agent (2E for the single agent, so that it lasts long enough to
time); its rate is all processes' episodes over the slowest process's seconds (they run side by side).
A layout's efficiency is its median training rate over its median env-only rate; ``*_paired_median`` is the
median of the per-repeat ratios.

Where the network is the cost (scripts/bench_net.py): masked CartPole with learned W_rec, float64 and float32, one
agent and 10 agents in one process, training alternated with the memory-traffic floor of its update (the bytes that
the update must read and write per replayed step, derived from N, dtype, the learned weights and the timescale as
bench_net.py's docstring says): keys ``net_<layout>_steps_per_s`` (env steps per second of training),
``net_<layout>_floor_steps_per_s`` and ``net_<layout>_over_floor`` (training's time over the floor's).
``backend=torch`` on the CPU (scripts/bench_torch.py): agent env steps per second with B = 1, 10, 100, 1,000 agents
in one process, and ms per env step at N = 1 and N = 500. ``--only`` runs a subset (pong, net, torch).
Progress goes to stderr; the last stdout line is one JSON object, and ``--out DIR`` writes it with every repeat's raw
numbers, the machine, the commit and the load average to DIR/<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import bench_net
import bench_torch
from bench_layouts import ACTION_SEED, CONF_DIR, compose, layout_stats, run_layout, say  # scripts/, beside this file
from bench_record import git_state, machine

from lfcs.running.scripting import OneLineParser, integer, output_dir

ROOT = Path(__file__).resolve().parents[1]
# The authors' numpy code, one agent, one core, as quoted in issue #4: a constant, not measured by this script.
AUTHORS_EPISODES_PER_S = 2.3
FIG1C_EPISODES = 2 * 10 * 2500  # two curves x 10 seeds x 2500 episodes
HIGH_LOAD = 3.0
SINGLE_EPISODES_FACTOR = 2  # one agent plays 2E episodes per measurement, so that it lasts long enough to time


def summary_line(layouts: dict, args: argparse.Namespace, num_neurons: int, cpu: dict) -> dict:
    found = {}
    if "fig1c" in layouts:
        single, ten, fig1c = layouts["single_agent"], layouts["ten_agents_one_process"], layouts["fig1c"]
        found = {
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
        }
    found.update(bench_net.summary_keys(layouts.get("net", {})))
    if "torch" in layouts:
        found.update(bench_torch.summary_keys(layouts["torch"]))
    return {**found, "repeats": args.repeats, "cpu": cpu["cpu_model"], "cores": cpu["cpu_count"]}


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
        found.append("--quick: 1 episode per measurement, 4 agents in the Fig. 1c layout, 3 network-bound layouts "
                     "(bench_net.QUICK), N = 20 in the network-bound and torch parts; not for reporting")  # fmt: skip
    if "net" in layouts:
        found.append("net_*_floor_steps_per_s: env steps per second if training cost nothing but reading and writing "
                     "its update's bytes once per replayed step (scripts/bench_net.py); measured in the same process, "
                     "alternated with training, so that the load of the moment slows both")  # fmt: skip
    for name, layout in layouts.items():
        if "efficiency" in layout and layout["efficiency"] > 1:
            found.append(f"{name}: efficiency {layout['efficiency']:.3f} > 1: noise exceeds the cost of learning")
    return found


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(prog="bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=integer(1), default=20, help="agents of the Fig. 1c layout (2 x 10 seeds)")
    parser.add_argument("--workers", type=integer(1), default=2, help="processes of the Fig. 1c layout (2 cores here)")
    parser.add_argument("--episodes", type=integer(1), default=20, help="timed episodes per agent and measurement")
    parser.add_argument("--repeats", type=integer(1), default=3, help="env-only/training pairs per layout")
    parser.add_argument("--out", type=output_dir, default=None, help="write DIR/<timestamp>.json")
    parser.add_argument("--net-episodes", type=integer(1), default=30, help="network-bound layouts: episodes per agent")
    parser.add_argument("--only", default="pong,net,torch", help="comma-separated parts: pong, net, torch")
    parser.add_argument("--quick", action="store_true", help="tests: 1 episode per measurement, 4 agents over 2")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. network.num_neurons=500")
    args = parser.parse_args(argv)
    if args.quick:  # the Fig. 1c layout keeps its 2 workers, with 2 agents each: 4 process starts fit in a test
        args.episodes, args.agents, args.net_episodes = 1, 4, 1
    if args.workers > args.agents:
        parser.error(f"argument --workers: {args.workers} is not allowed: at most --agents={args.agents}")
    args.parts = args.only.split(",")
    if not args.parts or set(args.parts) - {"pong", "net", "torch"}:
        parser.error(f"argument --only: {args.only} is not allowed: a comma-separated subset of pong, net, torch")
    from lfcs.config import register_schema
    from lfcs.running.cli import refuse_bad_overrides

    register_schema()  # the overrides are composed against the schema, as scripts/train.py does
    refuse_bad_overrides(parser, ["experiment=pong100_lfcs", "progress=false", *args.overrides], CONF_DIR)
    return args


def run_net(args: argparse.Namespace) -> dict:
    """The network-bound layouts (scripts/bench_net.py): training alternated with its floor, one process each."""
    found = {}
    for name, (extra, agents) in bench_net.LAYOUTS.items():
        if args.quick and name not in bench_net.QUICK:
            continue
        small = ["network.num_neurons=20"] if args.quick else []
        overrides = [bench_net.EXPERIMENT, "progress=false", *extra, *small]
        raw = run_layout(f"net_{name}", [list(range(agents))], args.net_episodes, args.repeats, overrides,
                         kinds=("train", "floor"))  # fmt: skip
        found[name] = {"agents": agents, "overrides": overrides, "episodes_per_agent": args.net_episodes,
                       "repeats": raw, **bench_net.net_stats(raw)}  # fmt: skip
        say(f"net_{name}: training {found[name]['steps_per_s']:.1f} env steps/s, floor "
            f"{found[name]['floor_steps_per_s']:.1f}: {found[name]['over_floor']:.3f}x the floor's time")  # fmt: skip
    return found


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
    layouts = {}
    for name, (groups, eps) in plan.items() if "pong" in args.parts else ():
        layouts[name] = layout = {"agents": sum(map(len, groups)), "groups": groups, "episodes_per_agent": eps}
        layout["repeats"] = run_layout(name, groups, eps, args.repeats, overrides)
        layout.update(layout_stats(layout["repeats"]))
        say(f"{name}: medians: env only {layout['env_only_episodes_per_s']:.2f}, training "
            f"{layout['train_episodes_per_s']:.2f} episodes/s, efficiency {layout['efficiency']:.3f}")  # fmt: skip
    if "net" in args.parts:
        layouts["net"] = run_net(args)
    if "torch" in args.parts:
        layouts["torch"] = bench_torch.run(args.repeats, args.quick)
    load_after, cpu = os.getloadavg(), machine()
    summary = summary_line(layouts, args, int(cfg.network.num_neurons), cpu)
    if "fig1c_minutes_estimate" in summary:
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
