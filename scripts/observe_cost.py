"""Cost of the observation options against training: python scripts/observe_cost.py [--out results/observe_cost.json]

For B agents in one process (1, and 10 as in the Fig. 1c layout of scripts/bench.py), with the default config
(Pong-100, N = 500, lf-cs fast, 2 passes), it times:
  training: ``AgentGroup.run_episode`` with every observation option off (seconds per episode of the group);
  images:   what a ``log_images_every`` episode adds: ``Observer.observe`` (torch replay of pi_ref, three figures,
            three histograms) and the logging of its payloads (``RunLogger._log_extra``);
  probes:   what a ``probe_every`` episode adds (torch replays of pi_ref and pi_new, TwoNN, CKA);
  eval:     what an ``eval_every`` episode adds (``eval_episodes`` held-out episodes per agent).
The cost of option X at period k is (its seconds) / (k x training seconds per episode); the smallest period in
PERIODS that keeps it <= 5 % is reported, for the worse of the two layouts. Medians over ``--repeats``. The machine's
load average is recorded: with other work running, all numbers are slower, but they are ratios of one run.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench import compose  # scripts/bench.py, beside this file
from bench_record import git_state, machine
from torch.utils.tensorboard import SummaryWriter

from lfcs.analysis.observe import Observer
from lfcs.learning.acting import play_episode
from lfcs.running.agents import AgentGroup
from lfcs.running.cli import refuse_bad_overrides
from lfcs.running.logger import RunLogger
from lfcs.running.scripting import OneLineParser, integer, output_file

ROOT = Path(__file__).resolve().parents[1]
BUDGET = 0.05  # observation may cost at most 5 % of training throughput
PERIODS = (10, 25, 50, 100, 250, 500, 1000)


def _seconds(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(num_agents: int, episodes: int, repeats: int, overrides: list[str]) -> dict:
    off = ["log_images_every=0", "probe_every=0", "eval_every=0"]
    cfg = compose([f"num_agents={num_agents}", *off, *overrides])
    group = AgentGroup(cfg, list(range(num_agents)))
    group.run_episode()  # warm-up: compiles the kernels
    train_s = _seconds(lambda: [group.run_episode() for _ in range(episodes)], repeats) / episodes
    seeds = [None] * num_agents
    buffer, _ = play_episode(group.envs, group.ref_policy, group.generators, group.horizon, 0.99, seeds, group.backend)
    _, record = group.learner.learn(buffer)  # the group is used up for training from here on: no matter
    ref, new = group.ref_policy, group.new_policy
    with tempfile.TemporaryDirectory() as tmp:
        writer = SummaryWriter(tmp)

        def observe(observer: Observer) -> None:
            for payload in observer.observe(1, buffer, ref, new, record.new_probs):
                for key, value in payload.items():
                    RunLogger._log_extra(writer, key, value, 0)

        observe(Observer(1, 1))  # warm-up: imports matplotlib and scikit-dimension
        images_s = _seconds(lambda: observe(Observer(1, 0)), repeats)
        probes_s = _seconds(lambda: observe(Observer(0, 1)), repeats)
        group._evaluate()  # warm-up: builds the evaluation envs
        eval_s = _seconds(group._evaluate, repeats)
        writer.close()
    result = {"agents": num_agents, "train_episode_s": train_s}
    for name, seconds in (("images", images_s), ("probes", probes_s), ("eval", eval_s)):
        result[f"{name}_s"] = seconds
        result[f"{name}_per_train_episode"] = seconds / train_s
    return result


def smallest_period(layouts: list[dict], name: str) -> int | None:
    worst = max(layout[f"{name}_per_train_episode"] for layout in layouts)
    return next((k for k in PERIODS if worst / k <= BUDGET), None)


def parse(argv: list[str] | None = None):
    parser = OneLineParser(prog="observe_cost.py", description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=integer(1), nargs="+", default=[1, 10])
    parser.add_argument("--episodes", type=integer(1), default=5, help="timed training episodes per repeat")
    parser.add_argument("--repeats", type=integer(1), default=3)
    parser.add_argument("--out", type=output_file(".json"), default=None)
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. network.num_neurons=500")
    args = parser.parse_args(argv)
    refuse_bad_overrides(parser, args.overrides, ROOT / "conf")
    return args


def main() -> None:
    args = parse()
    torch.set_num_threads(1)  # as one training process
    load_before = os.getloadavg()
    layouts = []
    for agents in args.agents:
        layouts.append(measure(agents, args.episodes, args.repeats, args.overrides))
        print(f"observe_cost: {json.dumps(layouts[-1])}", file=sys.stderr, flush=True)
    options = ("images", "probes", "eval")
    result = {
        "layouts": layouts,
        "budget": BUDGET,
        "smallest_period_within_budget": {name: smallest_period(layouts, name) for name in options},
        "overrides": args.overrides,
        "episodes": args.episodes,
        "repeats": args.repeats,
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "machine": machine(),
        "git": git_state(ROOT),
        "command": "python scripts/observe_cost.py " + " ".join(sys.argv[1:]),
    }
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
