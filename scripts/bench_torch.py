"""``backend=torch`` on the CPU in the bench (used by scripts/bench.py): its scaling with the agent count, and its
cost per step with and without arithmetic.

Scaling: CartPole-v1 with the paper's lf-cs (``env=cartpole``: N = 500, fast, 2 passes) with ``backend=torch`` and
B = 1, 10, 100, 1,000 agents in one process (one torch thread); the rate is agent env steps per second of training (all
agents' steps over the process's seconds; the agents play in lockstep, so an episode lasts as long as its longest
agent's). The same at B = 1 and 10 with the compiled kernels, for scale. Dispatch: the same single-agent training at
N = 1 (no arithmetic to speak of: what remains is the per-step cost of calling torch) and N = 500, in ms per env step.
"""

from __future__ import annotations

import statistics

from bench_layouts import run_layout

EXPERIMENT = "env=cartpole"
AGENTS = (1, 10, 100, 1000)
KERNEL_AGENTS = (1, 10)
LONE_REPEAT_FROM = 1000  # agents from which one measurement is taken
STEPS_PER_MEASUREMENT = 400  # env steps per agent, about: CartPole episodes under a learning lf-cs agent last ~20-40


def _steps_rate(processes: list[dict]) -> float:
    return sum(p["env_steps"] for p in processes) / max(p["seconds"] for p in processes)


def measure(label: str, agents: int, overrides: list[str], repeats: int, quick: bool) -> dict:
    """One process with ``agents`` agents; ``repeats`` training measurements (one from B = 1,000 on: an episode of
    1,000 agents in lockstep takes ~40 CPU-seconds here); median agent env steps per second."""
    episodes = 1 if quick else max(1, STEPS_PER_MEASUREMENT // (25 * agents))
    repeats = repeats if agents < LONE_REPEAT_FROM else 1
    raw = run_layout(label, [list(range(agents))], episodes, repeats, [EXPERIMENT, *overrides], kinds=("train",))
    rates = [_steps_rate(r["train"]) for r in raw]
    return {"agents": agents, "episodes_per_agent": episodes, "overrides": overrides, "repeats": raw,
            "agent_steps_per_s": statistics.median(rates)}  # fmt: skip


def run(repeats: int, quick: bool) -> dict:
    """Every torch measurement of the bench: scaling with B, the kernels beside it, N = 1 against N = 500."""
    small = ["network.num_neurons=20"] if quick else []
    agents = (1, 2) if quick else AGENTS
    found: dict = {"scaling": {}, "kernels": {}, "dispatch": {}}
    for b in agents:
        found["scaling"][b] = measure(f"torch_b{b}", b, ["backend=torch", *small], repeats, quick)
    for b in (1,) if quick else KERNEL_AGENTS:
        found["kernels"][b] = measure(f"kernels_b{b}", b, ["backend=kernels", *small], repeats, quick)
    found["dispatch"][1] = measure("torch_n1", 1, ["backend=torch", "network.num_neurons=1"], repeats, quick)
    found["dispatch"][20 if quick else 500] = found["scaling"][1]  # the same run: B = 1 at the bench's N
    return found


def summary_keys(found: dict) -> dict:
    """torch_cpu_b<B>_agent_steps_per_s, kernels_cpu_b<B>_agent_steps_per_s, torch_cpu_ms_per_env_step_n<N>."""
    keys = {}
    for b, m in found["scaling"].items():
        keys[f"torch_cpu_b{b}_agent_steps_per_s"] = round(m["agent_steps_per_s"], 1)
    for b, m in found["kernels"].items():
        keys[f"kernels_cpu_b{b}_agent_steps_per_s"] = round(m["agent_steps_per_s"], 1)
    for n, m in found["dispatch"].items():
        keys[f"torch_cpu_ms_per_env_step_n{n}"] = round(1000.0 / m["agent_steps_per_s"], 3)
    return keys
