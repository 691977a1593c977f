"""Decoding probe of a saved agent: how well the env's hidden variables are read out of its network.

    python scripts/decode_probe.py PATH [--agent B ...] [--episodes 20] [--policy sample|greedy] [--out FILE]

PATH is a run directory (every agent of its checkpoints, unless --agent names some) or a checkpoint file. Each agent
plays --episodes held-out episodes with its pi_ref (the seeds of lfcs/export/evaluate.py; the input normaliser's
saved statistics, frozen) while its env's hidden variables are recorded (masked CartPole: x_dot and theta_dot);
the cross-validated ridge R^2 of each variable is then taken from the read-out traces r_t, the pre-reset
membranes v_t and the network input x_t alone (what a memoryless read-out of the input could get), pooled over the
episodes (lfcs.analysis.probes.decoding_r2). Writes JSON (default: <run dir>/decode_probe.json) with the command,
every agent's R^2 and the mean over agents; prints one line per agent.
"""

import json
import re
import sys
from pathlib import Path

import numpy as np
import torch

from lfcs import checkpoint
from lfcs.analysis.observe import decode_episodes
from lfcs.environments import episode_horizon, make_env_from_config
from lfcs.export.evaluate import HELDOUT_ENV_SEED_BASE, POLICY_MODES, SAMPLE_SEED_BASE
from lfcs.export.saved_agent import checkpoint_for_agent, load_agent
from lfcs.running.scripting import OneLineParser, guarded, integer, output_file

PROG = "decode_probe.py"
SOURCES = ("r", "v", "input")


def agents_of(path: Path) -> list[int]:
    """Every global agent id held by a checkpoint file or a run directory's checkpoints."""
    files = [path] if path.is_file() else sorted((path / "checkpoints").glob("agents_*.pt"))
    if not files:
        checkpoint_for_agent(path, None)  # raises the one-line error
    ids = []
    for file in files:
        match = re.fullmatch(r"agents_(\d+)-(\d+)\.pt", file.name)
        ids += list(range(int(match[1]), int(match[2]) + 1)) if match else list(checkpoint.load(file)["agents"])
    return sorted(int(a) for a in ids)


def probe_agent(path: Path, agent: int, episodes: int, policy: str) -> dict:
    saved = load_agent(path, agent)
    env = make_env_from_config(saved.cfg.env)
    try:
        env_seeds = [HELDOUT_ENV_SEED_BASE + i for i in range(episodes)]
        sample_seeds = [SAMPLE_SEED_BASE + i for i in range(episodes)]
        result = decode_episodes(saved.ref_policy, env, saved.encoder(env.observation_space), episode_horizon(env),
                                 saved.cfg.learner.gamma, env_seeds, sample_seeds, policy == "greedy")  # fmt: skip
    finally:
        env.close()
    return {"checkpoint": saved.path.name, "episode": saved.episode, **result}


def mean_over_agents(per_agent: dict[int, dict]) -> dict:
    names = next(iter(per_agent.values()))["r2"].keys()
    return {
        name: {source: float(np.mean([row["r2"][name][source] for row in per_agent.values()])) for source in SOURCES}
        for name in names
    }


def parse(argv: list[str]):
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="run directory or checkpoint file")
    parser.add_argument("--agent", type=integer(0), action="append", help="global agent id (repeat; default: all)")
    parser.add_argument("--episodes", type=integer(1), default=20)
    parser.add_argument("--policy", choices=POLICY_MODES, default="sample")
    parser.add_argument("--out", type=output_file(), default=None, help="default: <run dir>/decode_probe.json")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)

    def run() -> None:
        torch.set_num_threads(1)  # a 500-neuron step is small: more threads only wait for each other
        agents = args.agent or agents_of(args.path)
        per_agent = {agent: probe_agent(args.path, agent, args.episodes, args.policy) for agent in agents}
        if not any(row["r2"] for row in per_agent.values()):
            raise ValueError(f"{args.path}: its env declares no hidden variables (no hidden_state())")
        run_dir = args.path if args.path.is_dir() else load_agent(args.path, agents[0]).run_dir
        out = args.out or run_dir / "decode_probe.json"
        record = {
            "command": " ".join(["python", "scripts/decode_probe.py", *argv]),
            "episodes": args.episodes,
            "policy": args.policy,
            "seed_rule": f"episode i: env seed {HELDOUT_ENV_SEED_BASE} + i, generator seed {SAMPLE_SEED_BASE} + i",
            "agents": per_agent,
            "mean_over_agents": mean_over_agents(per_agent),
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        for agent, row in per_agent.items():
            cells = "  ".join(
                f"{name}: " + " ".join(f"{s} {row['r2'][name][s]:+.3f}" for s in SOURCES) for name in row["r2"]
            )
            print(f"agent {agent} ({row['steps']} steps, mean length {row['length_mean']:.1f}): {cells}")
        print(f"-> {out}")

    return guarded(PROG, run)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
