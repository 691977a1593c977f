"""Wall-clock of one learning phase (learner.learn + the episode end) against K, at a fixed episode length.

For each experiment (its learner, network and env sizes) and each K, one agent's learner is given full-length
synthetic episodes (uniform inputs, random actions, Dirichlet probabilities; the replay's cost does not depend on the
values) until its store is full, then `--phases` phases are timed; the K values alternate within each of `--repeats`
rounds, so that a changing machine load falls on all of them alike. Medians per phase, and the ratio to K = 1.

    python results/offpolicy/cost.py --out results/offpolicy/cost.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from lfcs.config import register_schema
from lfcs.rules.episodes import EpisodeBuffer, advantages_from_rewards
from lfcs.running.agents import AgentGroup

ROOT = Path(__file__).resolve().parents[2]
# experiment -> (episode length T, number of actions O) of a full episode
EXPERIMENTS = {"cartpole_lfcs_replay": (500, 2), "pong100_lfcs_replay": (100, 3)}


def make_cfg(*overrides: str):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def episode(gen: torch.Generator, horizon: int, num_actions: int, num_inputs: int) -> EpisodeBuffer:
    probs = torch.distributions.Dirichlet(torch.ones(num_actions, dtype=torch.float64)).sample((horizon, 1))
    rewards = torch.randint(-1, 2, (horizon, 1), generator=gen).to(torch.float64)
    return EpisodeBuffer(
        obs=torch.rand(horizon, 1, num_inputs, generator=gen, dtype=torch.float64),
        actions=torch.randint(0, num_actions, (horizon, 1), generator=gen),
        ref_probs=probs,
        rewards=rewards,
        advantages=advantages_from_rewards(rewards, 0.99),
        lengths=torch.tensor([horizon]),
        terminated=torch.tensor([False]),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--phases", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    register_schema()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    result = {"command": " ".join(sys.argv), "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "load_before": os.getloadavg(), "torch": torch.__version__,
              "commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                       text=True).stdout.strip(), "experiments": {}}  # fmt: skip
    for name, (horizon, num_actions) in EXPERIMENTS.items():
        groups = {}
        for k in args.ks:
            group = AgentGroup(make_cfg(f"experiment={name}", f"learner.replay_episodes={k}", "progress=false"), [0])
            num_inputs = group.new_policy.w_in.shape[-1]
            for _ in range(k):  # fill the store (and compile the kernels)
                group.learner.learn(episode(gen, horizon, num_actions, num_inputs))
            groups[k] = (group, num_inputs)
        times = {k: [] for k in args.ks}
        for _ in range(args.repeats):
            for k, (group, num_inputs) in groups.items():
                buffers = [episode(gen, horizon, num_actions, num_inputs) for _ in range(args.phases)]
                for i, buf in enumerate(buffers):
                    begin = time.perf_counter()
                    group.learner.learn(buf)
                    group.learner.end_episode(i + 1)
                    times[k].append(time.perf_counter() - begin)
        medians = {k: statistics.median(v) for k, v in times.items()}
        result["experiments"][name] = {
            "episode_length": horizon,
            "median_s_per_phase": medians,
            "ratio_to_k1": {k: medians[k] / medians[args.ks[0]] for k in args.ks},
            "all_s": times,
        }
        print(name, {k: f"{1e3 * m:.1f} ms ({medians[k] / medians[args.ks[0]]:.2f}x)" for k, m in medians.items()})
    result["load_after"] = os.getloadavg()
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
