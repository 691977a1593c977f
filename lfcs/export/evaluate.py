"""Evaluation of a trained pi_ref on held-out env seeds: per-episode returns, statistics, ``eval.json``, video.

Seeds (fixed, so that an evaluation is a pure function of the checkpoint and the options):
- evaluation episode i resets its env with seed ``HELDOUT_ENV_SEED_BASE + i`` (1_000_000 + i). Training seeds only
  an agent's first reset, with ``seed + b`` (small numbers), so no training episode starts from these seeds;
- its actions (``--policy sample``) and, with stochastic spikes, its spike noise come from a torch.Generator seeded
  ``SAMPLE_SEED_BASE + i`` (10_000 + i); ``greedy`` plays the most probable action;
- the bootstrap CI draws from ``numpy.random.default_rng(BOOTSTRAP_SEED)``.
Each episode is independent of the others (own reset seed, own generator), so the first k episodes of a longer
evaluation are those of a k-episode one. The env is the run's own (sticky actions as in training).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from tqdm import tqdm

from lfcs import backends
from lfcs.backends.base import Backend
from lfcs.environments import episode_horizon, make_env_from_config
from lfcs.export.saved_agent import SavedAgent
from lfcs.learning.acting import play_episode
from lfcs.network.encoding import ObservationEncoder
from lfcs.network.policy import SpikingPolicy

HELDOUT_ENV_SEED_BASE = 1_000_000
SAMPLE_SEED_BASE = 10_000
BOOTSTRAP_SEED = 0
BOOTSTRAP_RESAMPLES = 10_000
CI_LEVEL = 0.95
DECIMALS = 10  # floats in eval.json are rounded to this many decimals: one fixed text for one result
POLICY_MODES = ("greedy", "sample")


def interquartile_mean(values: np.ndarray) -> float:
    """Mean of the middle 50 %: drop the floor(n / 4) lowest and highest values (scipy's trim_mean(x, 0.25))."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    cut = len(ordered) // 4
    return float(ordered[cut : len(ordered) - cut].mean())


def bootstrap_ci(values: np.ndarray, level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean, BOOTSTRAP_RESAMPLES resamples from a fixed-seed generator."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    picks = rng.integers(0, len(values), size=(BOOTSTRAP_RESAMPLES, len(values)))
    means = values[picks].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def summarize(returns: list[float]) -> dict:
    values = np.asarray(returns, dtype=np.float64)
    return {
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if len(values) > 1 else None,
        "iqm": interquartile_mean(values),
        "ci95": list(bootstrap_ci(values)),
    }


def _rounded(value):
    if isinstance(value, float):
        return round(value, DECIMALS) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


def to_json(result: dict) -> str:
    """The text of eval.json: sorted keys, rounded floats, no wall-clock: byte-identical for one result."""
    return json.dumps(_rounded(result), sort_keys=True, indent=2) + "\n"


def evaluate(
    saved: SavedAgent,
    episodes: int = 100,
    policy: str = "greedy",
    video: Path | None = None,
    video_episodes: int = 3,
    progress: bool = True,
) -> dict:
    """Play ``episodes`` held-out episodes with the agent's pi_ref; the eval.json content (and the video)."""
    if policy not in POLICY_MODES:
        raise ValueError(f"--policy {policy} is not allowed: one of {', '.join(POLICY_MODES)}")
    if episodes < 1:
        raise ValueError(f"--episodes {episodes} is not allowed: at least 1")
    if video is not None and video_episodes < 1:
        raise ValueError(f"--video-episodes {video_episodes} is not allowed with --video: at least 1")
    cfg = saved.cfg
    env = make_env_from_config(cfg.env, **({} if video is None else {"render_mode": "rgb_array"}))
    recorder = None
    if video is not None:
        from lfcs.export.video import FrameRecorder

        env = recorder = FrameRecorder(env)
    horizon, backend = episode_horizon(env), backends.select("auto", "cpu")  # a saved agent runs on the CPU
    encoder = saved.encoder(env.observation_space)  # the checkpoint's statistics, frozen
    env_seeds = [HELDOUT_ENV_SEED_BASE + i for i in range(episodes)]
    sample_seeds = [SAMPLE_SEED_BASE + i for i in range(episodes)]
    returns, lengths, clips = [], [], []
    for i in tqdm(range(episodes), desc="evaluate", unit="episode", file=sys.stderr, disable=not progress):
        if recorder is not None:
            recorder.recording = i < video_episodes
        generator, greedy = torch.Generator().manual_seed(sample_seeds[i]), policy == "greedy"
        buffer, stats = play_episode(
            [env],
            saved.ref_policy,
            [generator],
            horizon,
            cfg.learner.gamma,
            [env_seeds[i]],
            backend,
            greedy,
            encoder=encoder,
        )
        returns.append(float(stats["episodic_return"][0]))
        lengths.append(int(stats["episode_length"][0]))
        if recorder is not None and recorder.recording:
            clips.append((recorder.frames, buffer.ref_probs[:, 0].numpy(), buffer.actions[:, 0].numpy(), lengths[-1]))
    if video is not None:
        _write_clips(video, clips, env, saved.ref_policy.w_out.shape[1])
    env.close()
    return {
        "checkpoint": {"file": saved.path.name, "sha256": saved.sha256(), "episode": saved.episode},
        "agent": saved.agent,
        "env": _env_record(cfg.env, horizon),
        "policy": policy,
        "episodes": episodes,
        "env_seeds": env_seeds,
        "sample_seeds": sample_seeds,
        "seed_rule": f"episode i: env reset seed {HELDOUT_ENV_SEED_BASE} + i, generator seed {SAMPLE_SEED_BASE} + i",
        "bootstrap": {"resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED, "level": CI_LEVEL},
        "returns": returns,
        "lengths": lengths,
        **summarize(returns),
    }


def heldout_returns(
    policy: SpikingPolicy,
    backend: Backend,
    env_list: list,
    horizon: int,
    gamma: float,
    episodes: int,
    greedy: bool = True,
    encoder: ObservationEncoder | None = None,
) -> np.ndarray:
    """Returns (episodes, B) of B agents' policy on the held-out episodes of :func:`evaluate` (same seeds).

    Agent b plays in ``env_list[b]``, an env of its own that training does not use; episode i resets it with
    ``HELDOUT_ENV_SEED_BASE + i`` and draws from a fresh generator seeded ``SAMPLE_SEED_BASE + i``, so agent b's
    returns are those ``evaluate`` gives for its checkpoint, and no training generator or env is touched.
    ``encoder``: the agents' ``env.encoding``, read and never updated (the normaliser is frozen in evaluation)."""
    returns = []
    for i in range(episodes):
        generators = [torch.Generator().manual_seed(SAMPLE_SEED_BASE + i) for _ in env_list]
        seeds = [HELDOUT_ENV_SEED_BASE + i] * len(env_list)
        _, stats = play_episode(env_list, policy, generators, horizon, gamma, seeds, backend, greedy, encoder=encoder)
        returns.append(stats["episodic_return"].numpy())
    return np.stack(returns)


def _env_record(env_cfg, horizon: int) -> dict:
    """The env as eval.json names it; the observation scaling only where the run set one (older files unchanged)."""
    record = {"id": env_cfg.id, "kwargs": dict(env_cfg.kwargs or {}), "max_episode_steps": horizon}
    for key in ("obs_shift", "obs_scale"):
        value = env_cfg.get(key)
        if value is not None:
            record[key] = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    return record


def _write_clips(path: Path, clips: list, env, num_actions: int) -> None:
    from lfcs.export.video import action_names, compose_frame, write_video

    names = action_names(env, num_actions)
    frames = []
    for episode, (screens, probs, actions, length) in enumerate(clips):
        for t in range(length):  # screen t is what the agent saw when it chose action t
            caption = f"episode {episode}  step {t}"
            frames.append(compose_frame(screens[t], probs[t], int(actions[t]), names, caption))
    fps = env.metadata.get("render_fps") or 15
    write_video(path, frames, fps)


def default_out(saved: SavedAgent, cwd: Path) -> Path:
    """Where eval.json goes without --out: the run directory of a run's checkpoint; for a checkpoint file outside a
    run directory (a zoo file, which sits beside the source tree's own eval.json files), ``<cwd>/<name>.eval.json``."""
    if saved.path.parent.name == "checkpoints":
        return saved.run_dir / "eval.json"
    return cwd / f"{saved.path.stem}.eval.json"


def write_json(result: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(to_json(result))
    tmp.replace(path)
