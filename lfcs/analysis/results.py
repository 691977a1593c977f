"""Reading finished (or running) lfcs runs back: seeds, conditions, METHOD.md §4 curves, summaries.

A *run* is a directory with ``config.yaml`` and ``metrics.csv``. Each agent of a run is one seed (``seed + b``).
Runs whose configurations agree on everything but the seed-like keys form one *condition*.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from lfcs.config import with_new_keys

WINDOW = 50  # METHOD.md §4: reward averaged over the last 50 episodes (metrics.csv's reward_mean50)
# Keys that do not change what is computed (or that index seeds): ignored when grouping runs into conditions.
NON_IDENTITY_KEYS = ("seed", "num_agents", "run_dir", "resume", "progress", "workers", "checkpoint_every", "iterations")
FINAL_WINDOWS = 5  # "final reward": mean of the last 5 windows (the last 250 episodes)
THRESHOLD = -0.5  # "episodes to reach -0.5"


@dataclass
class Condition:
    label: str
    curves: dict[int, dict[int, float]] = field(default_factory=dict)  # seed -> {episode: reward_mean50}
    steps: dict[int, dict[int, int]] = field(default_factory=dict)  # seed -> {episode: env_steps} at window ends
    wall_clock_s: list[float] = field(default_factory=list)  # summary.json: the last invocation of each run
    process_seconds: list[float] = field(default_factory=list)  # metrics.csv: every segment of each run
    config: dict = field(default_factory=dict)
    runs: list[Path] = field(default_factory=list)  # the run directories whose agents are these seeds

    def episodes(self) -> list[int]:
        return sorted({episode for curve in self.curves.values() for episode in curve})

    def stats(self, episode: int) -> tuple[float, float, int]:
        """mean, std (ddof 1, as METHOD.md reports it) and number of seeds at one window end."""
        values = [curve[episode] for curve in self.curves.values() if episode in curve]
        std = statistics.stdev(values) if len(values) > 1 else float("nan")
        return statistics.fmean(values), std, len(values)

    def final_per_seed(self, windows: int = FINAL_WINDOWS, budget: int | None = None) -> dict[int, float]:
        """Final reward of each seed: mean reward_mean50 of its last ``windows`` windows ending at or before ``budget``
        (every window when None)."""
        finals = {}
        for seed, curve in self.curves.items():
            tail = [curve[e] for e in sorted(curve) if budget is None or e <= budget][-windows:]
            finals[seed] = statistics.fmean(tail)
        return finals

    def last_episode_per_seed(self) -> dict[int, int]:
        """The last window end (episode) each seed reached."""
        return {seed: max(curve) for seed, curve in self.curves.items()}

    def first_reach_per_seed(self, threshold: float, budget: int | None = None) -> dict[int, int | None]:
        """Each seed's first window end (at or before ``budget``) whose reward_mean50 is >= threshold; None if none."""
        return {
            seed: next((e for e in sorted(curve) if (budget is None or e <= budget) and curve[e] >= threshold), None)
            for seed, curve in self.curves.items()
        }

    def env_steps_per_seed(self) -> dict[int, int]:
        """The env steps each seed had played at its last window end (0 where a run did not record them)."""
        return {seed: max(curve.items())[1] for seed, curve in self.steps.items() if curve}

    def episodes_to_reach(self, threshold: float = THRESHOLD) -> int | None:
        for episode in self.episodes():
            if self.stats(episode)[0] >= threshold:
                return episode
        return None


def find_runs(paths: list[Path]) -> list[Path]:
    runs = []
    for path in paths:
        candidates = [path] if (path / "metrics.csv").exists() else sorted(p.parent for p in path.rglob("metrics.csv"))
        runs += [p for p in candidates if (p / "config.yaml").exists()]
    return sorted(set(runs))


def _identity(cfg: dict) -> str:
    return json.dumps({k: v for k, v in cfg.items() if k not in NON_IDENTITY_KEYS}, sort_keys=True, default=str)


def _label(run: Path) -> str:
    """The override_dirname of a multirun job (its parent when the job dir is ``seed=N``), else the dir name."""
    name = run.parent.name if run.name.startswith("seed=") else run.name
    return name if name and name != "." else str(run)


def window_curves(metrics_csv: Path, column: str = "reward_mean50") -> dict[int, dict[int, float]]:
    """agent -> {episode: value of ``column``} at every 50th episode (reward_mean50: the METHOD.md §4 metric)."""
    curves: dict[int, dict[int, float]] = {}
    with open(metrics_csv) as handle:
        for row in csv.DictReader(handle):
            episode = int(float(row["episode"]))
            if episode % WINDOW == 0 and row.get(column) not in (None, ""):
                curves.setdefault(int(float(row["agent"])), {})[episode] = float(row[column])
    return curves


def process_seconds(metrics_csv: Path) -> float:
    """Seconds that a run's processes spent in its episodes, over every segment of a resumed run: each row's env
    steps since the agent's previous row over ``sps_total`` (its process's steps per second over that time), summed.
    In one process and one episode the agents' shares add up to the episode's wall-clock; a run on W worker
    processes counts each process's time. A row without new env steps adds nothing (a peer's envs can end two
    episodes in one step); NaN where a row with new steps has no positive ``sps_total``."""
    total, before = 0.0, {}
    with open(metrics_csv) as handle:
        for row in csv.DictReader(handle):
            if not row.get("env_steps"):
                return math.nan
            agent, steps = row["agent"], float(row["env_steps"])
            new, before[agent] = steps - before.get(agent, 0.0), steps
            rate = float(row.get("sps_total") or "nan")
            if new and not rate > 0:
                return math.nan
            total += new / rate if new else 0.0
    return total


def load_conditions(paths: list[Path]) -> list[Condition]:
    groups: dict[str, Condition] = {}
    for run in find_runs(paths):
        cfg = OmegaConf.to_container(with_new_keys(OmegaConf.load(run / "config.yaml")), resolve=True)
        key = _identity(cfg)
        cond = groups.setdefault(key, Condition(_label(run), config=cfg))
        cond.runs.append(run)
        for agent, curve in window_curves(run / "metrics.csv").items():
            cond.curves[int(cfg["seed"]) + agent] = curve
        for agent, curve in window_curves(run / "metrics.csv", "env_steps").items():
            cond.steps[int(cfg["seed"]) + agent] = {episode: int(value) for episode, value in curve.items()}
        cond.process_seconds.append(process_seconds(run / "metrics.csv"))
        summary = run / "summary.json"
        if summary.exists():
            cond.wall_clock_s.append(float(json.loads(summary.read_text()).get("wall_clock_s", math.nan)))
    # Two conditions can end up with the same label (e.g. plain runs named alike): make labels unique.
    seen: dict[str, int] = {}
    for cond in groups.values():
        seen[cond.label] = seen.get(cond.label, 0) + 1
        if seen[cond.label] > 1:
            cond.label = f"{cond.label}#{seen[cond.label]}"
    return list(groups.values())


def _flat(cfg: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in cfg.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_differences(conds: list[Condition]) -> dict[str, dict[str, object]]:
    """label -> {dotted key: value} for the configuration keys (seed-like keys aside) on which the conditions differ."""
    flats = {
        c.label: {k: v for k, v in _flat(c.config).items() if k.split(".")[0] not in NON_IDENTITY_KEYS} for c in conds
    }
    keys = sorted({k for flat in flats.values() for k in flat})
    differing = [k for k in keys if len({json.dumps(f.get(k), default=str) for f in flats.values()}) > 1]
    return {label: {k: flat.get(k) for k in differing} for label, flat in flats.items()}


def load_reference(path: Path) -> list[Condition]:
    """The authors' curves (columns method, seed, episode, reward_mean50) as conditions ``official_<method>``."""
    conds: dict[str, Condition] = {}
    with open(path) as handle:
        for row in csv.DictReader(handle):
            cond = conds.setdefault(row["method"], Condition(f"official_{row['method']}"))
            cond.curves.setdefault(int(row["seed"]), {})[int(row["episode"])] = float(row["reward_mean50"])
    return list(conds.values())


def within_seed_noise(a: Condition, b: Condition, episode: int) -> tuple[float, float, bool]:
    """Difference of the two means and 2 x their combined standard error; True if |difference| <= that."""
    mean_a, std_a, n_a = a.stats(episode)
    mean_b, std_b, n_b = b.stats(episode)
    bound = 2.0 * math.sqrt(std_a**2 / n_a + std_b**2 / n_b)
    return mean_a - mean_b, bound, abs(mean_a - mean_b) <= bound


def fisher_exact_two_sided(k1: int, n1: int, k2: int, n2: int) -> float:
    """p-value of Fisher's exact test that k1/n1 and k2/n2 share one success probability."""
    total, successes = n1 + n2, k1 + k2

    def prob(k: int) -> float:
        return math.comb(successes, k) * math.comb(total - successes, n1 - k) / math.comb(total, n1)

    observed = prob(k1)
    support = range(max(0, successes - n2), min(successes, n1) + 1)
    return min(1.0, sum(p for p in (prob(k) for k in support) if p <= observed * (1 + 1e-9)))
