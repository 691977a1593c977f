"""Per-step cost of e-prop's hidden-weight traces in the compiled replay: python scripts/eprop_cost.py [--out FILE]

One agent, N = 500 neurons, I = 2 inputs and O = 2 actions (masked CartPole's sizes), a synthetic 200-step episode
(inputs uniform in [0, 1], W_in ~ N(0, 10^2) as in training, W_rec ~ N(0, 0.5^2)). For each condition it times one
lf-cs replay pass (fast timescale) of ``backend=kernels`` and one acting episode (``Backend.actor``), after an untimed
warm-up that compiles the kernels; medians of ``--repeats``, in microseconds per replayed (acted) step. The load
average before and after is recorded: the machine is shared, so compare conditions within one file.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from bench_record import git_state, machine  # scripts/bench_record.py, beside this file

from lfcs import backends
from lfcs.learning.learner import LfcsLearner
from lfcs.network.policy import build_policy
from lfcs.rules.episodes import EpisodeBuffer, advantages_from_rewards
from lfcs.running.scripting import OneLineParser, integer, output_file

ROOT = Path(__file__).resolve().parents[1]
N, INPUTS, ACTIONS, STEPS = 500, 2, 2, 200
NETWORK = dict(num_neurons=N, tau_syn_steps=4.0, tau_readout_steps=1.0, bias=-8.0, self_inhibition=100.0,
               v_episode_start=-4.0, readout_gain=2.5, input_std=10.0, rec_std=0.5, out_std=1.0)  # fmt: skip
CONDITIONS = {
    "lif_box, W_out only (the paper)": ({}, {}),
    "lif_box, W_rec learned (masked_cartpole_rec)": ({}, {"learn_rec": True}),
    "alif, W_rec learned": ({"neuron": "alif"}, {"learn_rec": True}),
    "alif, W_rec + W_in learned, random feedback": (
        {"neuron": "alif", "feedback": "random"},
        {"learn_rec": True, "learn_in": True, "feedback": "random"},
    ),
    "alif, per-neuron tau_m, W_rec + W_in, per_pass, rate_reg": (
        {"neuron": "alif", "tau_mem_steps": [3.0, 30.0]},
        {"learn_rec": True, "learn_in": True, "rec_update": "per_pass", "rate_reg": 1.0},
    ),
}


def episode(rng: np.random.Generator) -> EpisodeBuffer:
    t64 = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
    probs = rng.dirichlet(np.ones(ACTIONS), (STEPS, 1))
    rewards = t64(np.ones((STEPS, 1)))
    return EpisodeBuffer(
        obs=t64(rng.uniform(0, 1, (STEPS, 1, INPUTS))),
        actions=torch.as_tensor(rng.integers(0, ACTIONS, (STEPS, 1))),
        ref_probs=t64(probs),
        rewards=rewards,
        advantages=advantages_from_rewards(rewards, 0.99),
        lengths=torch.tensor([STEPS]),
    )


def time_condition(net_knobs: dict, learn_knobs: dict, repeats: int) -> dict:
    policy = build_policy([torch.Generator().manual_seed(0)], INPUTS, ACTIONS, **{"tau_mem_steps": 6.0, **NETWORK,
                          **net_knobs})  # fmt: skip
    backend = backends.select("kernels", "cpu")
    learner = LfcsLearner(policy, policy.clone(), backend, n_passes=1, eps=float("inf"), **learn_knobs)
    buf = episode(np.random.default_rng(0))
    replay, act = [], []
    for _ in range(repeats + 1):  # the first round compiles
        begin = time.perf_counter()
        learner.learn(buf)
        replay.append(time.perf_counter() - begin)
        probs, actions = torch.zeros(STEPS, 1, ACTIONS, dtype=torch.float64), torch.zeros(STEPS, 1, dtype=torch.long)
        actor = backend.actor(policy, buf.obs, None, torch.rand(STEPS, 1, dtype=torch.float64), probs, actions,
                              np.zeros(1))  # fmt: skip
        running = np.ones(1, dtype=bool)
        begin = time.perf_counter()
        for t in range(STEPS):
            actor.step(t, running)
        act.append(time.perf_counter() - begin)
    return {
        "replay_us_per_step": 1e6 * statistics.median(replay[1:]) / (STEPS - 1),
        "act_us_per_step": 1e6 * statistics.median(act[1:]) / STEPS,
        "replay_s_each": replay[1:],
    }


def parse(argv: list[str] | None = None):
    parser = OneLineParser(prog="eprop_cost.py", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=integer(1), default=5, help="timed rounds, after one warm-up round")
    parser.add_argument("--out", type=output_file(".json"), default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    results = {name: time_condition(*knobs, args.repeats) for name, knobs in CONDITIONS.items()}
    base = results["lif_box, W_rec learned (masked_cartpole_rec)"]["replay_us_per_step"]
    for name, row in results.items():
        row["replay_vs_lif_rec"] = row["replay_us_per_step"] / base
        print(f"{name:60s} replay {row['replay_us_per_step']:8.1f} us/step ({row['replay_vs_lif_rec']:.2f}x)  "
              f"act {row['act_us_per_step']:6.1f} us/step")  # fmt: skip
    record = {
        "command": "python scripts/eprop_cost.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "sizes": {"N": N, "I": INPUTS, "O": ACTIONS, "replayed_steps": STEPS - 1, "agents": 1},
        "repeats": args.repeats,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "machine": machine(),
        "git": git_state(ROOT),
        "conditions": results,
    }
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    main()
