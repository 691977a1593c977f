"""The bench's process layouts (used by scripts/bench.py): worker processes that each build one ``AgentGroup`` and
time, on the parent's request, one kind of measurement at a time, alternated with another kind.

Kinds: ``env`` (the group's own envs, the exact protocol, random actions, no network), ``train``
(``AgentGroup.run_episode``: acting and learning) and ``floor`` (``lfcs.backends.floor.touch_words`` reading and
writing the bytes that the last ``train`` measurement's updates had to touch, once per replayed step: see
scripts/bench_net.py). A worker plays one untimed episode of each kind before the first measurement.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
ACTION_SEED = 12345  # env-only random actions: process p draws from default_rng(ACTION_SEED + its first agent id)
PROGRESS_EVERY_S = 5.0


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


class _Measured:
    """One worker's group and what its kinds of episode do; ``train`` also counts env steps and replayed steps."""

    def __init__(self, overrides: list[str], agent_ids: list[int]):
        from bench_net import update_bytes

        from lfcs.running.agents import AgentGroup

        self.group = AgentGroup(compose(overrides), agent_ids)
        self.rng = np.random.default_rng(ACTION_SEED + agent_ids[0])
        self.env_steps, self.replayed = 0, np.zeros(len(agent_ids), dtype=np.int64)
        obs_dim, num_actions = self.group.envs[0].observation_space.shape[0], int(self.group.envs[0].action_space.n)
        self.bytes_per_step = update_bytes(self.group.cfg, obs_dim, num_actions)["bytes"]
        self.words = None

    def env(self) -> None:
        env_only_episode(self.group.envs, self.rng)

    def train(self) -> None:
        from lfcs.rules.maths import replayed_steps

        rows = self.group.run_episode()
        learner = self.group.learner
        self.env_steps += sum(int(row["episode_length"]) for row in rows)
        for stored in learner.store.episodes:  # what this learning phase replayed, n_passes times
            self.replayed += learner.n_passes * replayed_steps(stored.buffer.lengths, learner.rule.pair_after).numpy()

    def floor(self, steps: np.ndarray) -> None:
        from lfcs.backends.floor import touch_words

        if self.words is None:  # each agent's own words, as its own arrays
            self.words = np.zeros((len(steps), -(-self.bytes_per_step // 8)), dtype=np.uint64)
        touch_words(self.words, steps)


def _worker(conn, overrides: list[str], agent_ids: list[int], rank: int, label: str, kinds: tuple) -> None:
    """One process of a layout: build the group, warm up, then run the measurements the parent asks for."""
    torch.set_num_threads(1)
    try:
        measured = _Measured(overrides, agent_ids)
        for kind in ("train", *(k for k in kinds if k != "train")):  # warm-up, untimed; seeds each env's first reset
            measured.floor(measured.replayed) if kind == "floor" else getattr(measured, kind)()
        conn.send({"ready": True})
        while (job := conn.recv()) is not None:  # EOFError if the parent died: the worker ends with it
            kind, episodes, tag = job
            last_steps, last_replayed = measured.env_steps, measured.replayed.copy()
            start = last = time.perf_counter()
            cpu_start = time.process_time()
            if kind == "floor":  # the bytes of the replayed steps of this process's last training measurement
                measured.floor(measured.last_replayed)
            for i in range(episodes if kind != "floor" else 0):
                getattr(measured, kind)()
                if rank == 0 and time.perf_counter() - last > PROGRESS_EVERY_S:
                    last = time.perf_counter()
                    say(f"{label}: {tag}: episode {i + 1}/{episodes}")
            seconds = time.perf_counter() - start
            cpu_seconds = time.process_time() - cpu_start  # excludes time the process waited for a core
            reply = {"episodes": episodes * len(agent_ids), "seconds": seconds, "cpu_seconds": cpu_seconds}
            if kind == "train":
                measured.last_replayed = measured.replayed - last_replayed
                measured.last_env_steps = measured.env_steps - last_steps
            if kind in ("train", "floor"):
                reply.update(env_steps=measured.last_env_steps, replayed_steps=measured.last_replayed.tolist(),
                             update_bytes_per_step=measured.bytes_per_step)  # fmt: skip
            reply["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            conn.send(reply)
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


def run_layout(label: str, groups: list[list[int]], episodes: int, repeats: int, overrides: list[str],
               kinds: tuple = ("env", "train")) -> list[dict]:  # fmt: skip
    """Start the layout's processes, alternate the kinds of measurement ``repeats`` times, stop the processes.

    Returns the raw repeats: one {kind: [one reply per process]} per repeat."""
    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    say(f"{label}: starting {len(groups)} process(es), warm-up")
    try:
        for rank, agent_ids in enumerate(groups):
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child_end, overrides, agent_ids, rank, label, kinds), daemon=True)
            proc.start()
            child_end.close()
            pipes.append(parent_end)
            procs.append(proc)
        _gather(pipes)  # all ready: the processes of a layout start each measurement together
        raw = []
        for r in range(repeats):
            row = {}
            for kind in kinds:
                tag = f"{kind} {r + 1}/{repeats}"
                for pipe in pipes:
                    pipe.send((kind, episodes, tag))
                row[kind] = _gather(pipes)
                if "floor" in kinds:  # network-bound layouts: env steps per second
                    steps = sum(p["env_steps"] for p in row[kind]) / max(p["seconds"] for p in row[kind])
                    say(f"{label}: {tag}: {steps:9.1f} env steps/s")
                else:
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
    return raw
