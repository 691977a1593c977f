"""Where a network-bound training step's time goes, part by part (issue 23's diagnosis beside the bench's floor).

python scripts/net_profile.py [--episodes 40] [--warmup 3] [--out results/bench] [--layouts rec_f64_1agent,...]

For the bench's network-bound layouts (``scripts/bench_net.py``, one agent each), trains ``--warmup`` untimed
episodes, then ``--episodes`` timed ones, timing each part around its call (one process, one thread):
  act_kernel:  ``CompiledBackend.actor``'s step, acting's compiled call (network, policy, action), per env step;
  acting:      ``play_episode`` as a whole: act_kernel plus the env and the Python loop around both;
  replay:      ``CompiledBackend.replay_pass``: every replay pass (the sweep, the forward pass, W_out);
  zero_step:   the end-of-episode Adam step with a zero gradient (``adam_zero_step``);
  other:       the rest of ``run_episode`` (the learner's and the episode's bookkeeping).
Each as µs per replayed step and per env step, and the fraction of neurons acting's product read (those that had
spiked in the episode, ``kernels.act_step``), per episode. Writes OUT/net_profile.json with the machine and commit.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from bench_net import LAYOUTS  # scripts/, beside this file
from bench_record import git_state, machine

from lfcs.running.scripting import OneLineParser, integer, output_dir

ROOT = Path(__file__).resolve().parents[1]
PARTS = {"act_kernel": ("KernelActor", "step"), "replay": ("CompiledBackend", "replay_pass"),
         "zero_step": ("CompiledBackend", "adam_zero_step")}  # fmt: skip
ONE_AGENT = [name for name, (_, agents) in LAYOUTS.items() if agents == 1]  # the parts share one clock


def profile(layout: str, episodes: int, warmup: int, extra: list[str]) -> dict:
    """Train one agent of the layout, timing each part of its episodes (module docstring)."""
    from bench_layouts import _Measured

    import lfcs.running.agents as agents
    from lfcs.backends import compiled

    overrides, _ = LAYOUTS[layout]
    seconds: dict[str, float] = {}
    active: list[float] = []
    restore = []

    def timed(owner, name: str, part: str, after=None) -> None:
        function = getattr(owner, name)

        def run(*args, **kwargs):
            start = time.perf_counter()
            out = function(*args, **kwargs)
            seconds[part] = seconds.get(part, 0.0) + time.perf_counter() - start
            if after is not None:
                after(*args)
            return out

        restore.append((owner, name, function))
        setattr(owner, name, run)

    def spiked(actor, *_) -> None:  # s_hat or z nonzero: the rows of W_rec's transpose acting reads
        state = actor.args[3]
        active.append(float(((state[2] != 0) | (state[1] != 0)).mean()))

    try:
        for part, (cls, name) in PARTS.items():
            timed(getattr(compiled, cls), name, part, spiked if part == "act_kernel" else None)
        timed(agents, "play_episode", "acting")
        measured = _Measured(["experiment=masked_cartpole_rec", "progress=false", *overrides, *extra], [0])
        per_episode = []
        for i in range(warmup + episodes):
            if i == warmup:
                seconds.clear()
                steps0, replayed0, begin = measured.env_steps, int(measured.replayed.sum()), time.perf_counter()
            active.clear()
            measured.train()
            if i >= warmup:
                per_episode.append(statistics.mean(active))
        total = time.perf_counter() - begin
    finally:
        for owner, name, function in restore:
            setattr(owner, name, function)
    env_steps, replayed = measured.env_steps - steps0, int(measured.replayed.sum()) - replayed0
    seconds["other"] = total - sum(seconds[p] for p in ("acting", "replay", "zero_step"))
    parts = {part: {"us_per_replayed_step": round(s / replayed * 1e6, 2), "us_per_env_step": round(s / env_steps * 1e6,
             2)} for part, s in seconds.items()}  # fmt: skip
    return {"overrides": overrides + extra, "episodes": episodes, "env_steps": env_steps, "replayed_steps": replayed,
            "us_per_replayed_step": round(total / replayed * 1e6, 2), "env_steps_per_s": round(env_steps / total, 1),
            "parts": parts, "active_fraction_per_episode": [round(a, 4) for a in per_episode]}  # fmt: skip


def layouts(text: str) -> list[str]:
    names = text.split(",")
    if not all(name in ONE_AGENT for name in names):
        raise argparse.ArgumentTypeError(f"{text} is not allowed: comma-separated names of {', '.join(ONE_AGENT)}")
    return names


def parse(argv: list[str]) -> argparse.Namespace:
    parser = OneLineParser(prog="net_profile.py", description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=integer(1), default=40, help="timed episodes per layout")
    parser.add_argument("--warmup", type=integer(0), default=3, help="untimed episodes first (numba compiles)")
    parser.add_argument("--layouts", type=layouts, default=ONE_AGENT, help=f"comma-separated, of {','.join(ONE_AGENT)}")
    parser.add_argument("--out", type=output_dir, default=None, help="writes OUT/net_profile.json")
    parser.add_argument("overrides", nargs="*", help="config overrides after the layout's (tests: network.num_neurons)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse(argv)
    torch.set_num_threads(1)
    found = {}
    for name in args.layouts:
        found[name] = profile(name, args.episodes, args.warmup, list(args.overrides))
        print(f"net_profile: {name}: {found[name]['us_per_replayed_step']} µs per replayed step", file=sys.stderr,
              flush=True)  # fmt: skip
    record = {"layouts": found, "machine": machine(), "code": git_state(ROOT),
              "command": " ".join(["python scripts/net_profile.py", *argv])}  # fmt: skip
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "net_profile.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({name: layout["us_per_replayed_step"] for name, layout in found.items()}))


if __name__ == "__main__":
    main(sys.argv[1:])
