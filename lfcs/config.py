"""The typed configuration schema (Hydra structured configs) and the value checks run before anything starts.

Types and unknown keys are checked by Hydra/OmegaConf against these dataclasses; ranges and cross-field rules by
:func:`validate`, which raises :class:`ConfigError` with one line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import torch
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lfcs.backends import BACKENDS
from lfcs.backends import check as check_backend
from lfcs.errors import ConfigError  # also importable from here, as before


@dataclass
class EnvConfig:
    id: str = "lfcs/Pong100-v0"
    max_episode_steps: int | None = None  # T; None keeps the env's registered limit
    kwargs: dict[str, Any] = field(default_factory=dict)
    # The agent sees (x - obs_shift) / obs_scale, never clipped (envs/wrappers.py). Each: null (shift 0, scale 1),
    # one number for every observation dimension, or a list with one number per dimension; scales finite and > 0.
    obs_shift: Any = None
    obs_scale: Any = None


@dataclass
class NetworkConfig:
    num_neurons: int = 500
    tau_mem_steps: float = 6.0
    tau_syn_steps: float = 4.0
    tau_readout_steps: float = 1.0
    bias: float = -8.0
    self_inhibition: float = 100.0
    v_episode_start: float = -4.0
    readout_gain: float = 2.5
    input_std: float = 10.0
    rec_std: float = 0.0
    out_std: float = 1.0
    stochastic_spikes: bool = False
    spike_noise_width: float = 0.05


@dataclass
class LearnerConfig:
    timescale: str = "fast"
    n_passes: int = 2
    eps: float = 0.2
    lr: float = 1.5e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    adam_eps: float = 1e-5
    gamma: float = 0.99
    trailing_zero_step: bool = True
    ref_update_every: int = 1
    learn_rec: bool = False
    rec_lr: float | None = None
    clip: str = "mask"
    replay_episodes: int = 1
    terminal_credit: bool = False
    critic: str = "none"
    critic_lr: float = 1e-3


@dataclass
class Config:
    seed: int = 0
    num_agents: int = 1
    iterations: int = 2500
    device: str = "cpu"
    backend: str = "auto"
    dtype: str = "float64"
    workers: int = 1
    checkpoint_every: int = 100
    resume: str | None = None
    run_dir: str | None = None
    progress: bool = True
    objective_windows: int = 5
    eval_every: int = 0
    eval_episodes: int = 10
    log_images_every: int = 250
    probe_every: int = 0
    env: EnvConfig = field(default_factory=EnvConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)


def register_schema() -> None:
    ConfigStore.instance().store(name="lfcs_schema", node=Config)


def _fail(key: str, value: Any, allowed: str) -> None:
    raise ConfigError(f"{key}={value!r} is not allowed: {allowed}")


def _obs_numbers_ok(value: Any, positive: bool) -> bool:
    """env.obs_shift / env.obs_scale: null, a number, or a non-empty list of numbers; finite (and > 0 if positive).
    The list's length is checked against the env's observation size where the env is built (lfcs.learning.acting)."""
    if value is None:
        return True
    values = list(value) if OmegaConf.is_list(value) else [value]
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not values or len(numbers) != len(values):
        return False
    return all(math.isfinite(v) and (v > 0 or not positive) for v in numbers)


DECAY_RANGE = "whose decay exp(-1 / tau) is > 0 and < 1 in float64 (about 0.00134 to 1.8e16)"
MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed's largest seed; agent b uses seed + b


def _finite(value: Any, low: float = -math.inf, low_allowed: bool = True) -> bool:
    """A finite number above ``low`` (or equal to it where ``low_allowed``)."""
    return math.isfinite(value) and (value > low or (low_allowed and value == low))


def validate(cfg: DictConfig) -> None:
    """Range and cross-field checks; raises ConfigError on the first bad key."""
    last_seed = f"{MAX_SEED - max(cfg.num_agents - 1, 0)} (agent b uses seed + b, at most 2^64 - 1)"
    checks: list[tuple[str, bool, str]] = [
        ("seed", 0 <= cfg.seed and cfg.seed + cfg.num_agents - 1 <= MAX_SEED, f"an integer from 0 to {last_seed}"),
        ("num_agents", cfg.num_agents >= 1, "an integer >= 1"),
        ("iterations", cfg.iterations >= 1, "an integer >= 1"),
        ("workers", cfg.workers >= 1, "an integer >= 1"),
        (
            "workers",
            cfg.workers <= max(cfg.num_agents, 1),
            f"at most num_agents={cfg.num_agents} (each worker process trains at least one agent)",
        ),
        ("checkpoint_every", cfg.checkpoint_every >= 1, "an integer >= 1"),
        ("objective_windows", cfg.objective_windows >= 1, "an integer >= 1"),
        ("eval_every", cfg.eval_every >= 0, "an integer >= 0 (0 = no evaluation during training)"),
        ("eval_episodes", cfg.eval_episodes >= 1, "an integer >= 1"),
        ("log_images_every", cfg.log_images_every >= 0, "an integer >= 0 (0 = no images or histograms)"),
        ("probe_every", cfg.probe_every >= 0, "an integer >= 0 (0 = no representation probes)"),
        (
            "device",
            re.fullmatch(r"cpu|cuda(:\d+)?", str(cfg.device)) is not None,
            "cpu, cuda or cuda:N",
        ),
        ("dtype", cfg.dtype in ("float64", "float32"), "float64 or float32"),
        ("backend", cfg.backend in BACKENDS, "auto, kernels (compiled, CPU) or torch"),
        ("network.num_neurons", cfg.network.num_neurons >= 1, "an integer >= 1"),
        ("network.spike_noise_width", _finite(cfg.network.spike_noise_width, 0, False), "a finite number > 0"),
        ("learner.timescale", cfg.learner.timescale in ("fast", "slow"), "fast or slow"),
        ("learner.n_passes", cfg.learner.n_passes >= 1, "an integer >= 1"),
        ("learner.eps", cfg.learner.eps > 0, "a number > 0 (inf switches the ratio mask off)"),
        ("learner.lr", cfg.learner.lr > 0 and math.isfinite(cfg.learner.lr), "a finite number > 0"),
        ("learner.gamma", 0 < cfg.learner.gamma <= 1, "a number in (0, 1]"),
        ("learner.adam_eps", _finite(cfg.learner.adam_eps, 0, False), "a finite number > 0"),
        (
            "learner.betas",
            len(cfg.learner.betas) == 2 and all(0 <= b < 1 for b in cfg.learner.betas),
            "two numbers in [0, 1)",
        ),
        ("learner.ref_update_every", cfg.learner.ref_update_every >= 1, "an integer >= 1"),
        (
            "learner.rec_lr",
            cfg.learner.rec_lr is None or (cfg.learner.rec_lr > 0 and math.isfinite(cfg.learner.rec_lr)),
            "null (= learner.lr) or a finite number > 0",
        ),
        (
            "learner.rec_lr",
            cfg.learner.rec_lr is None or cfg.learner.learn_rec,
            "null while learner.learn_rec=false (W_rec is not learned)",
        ),
        ("learner.clip", cfg.learner.clip in ("mask", "ppo", "none"), "mask (the paper), ppo or none"),
        ("learner.replay_episodes", cfg.learner.replay_episodes >= 1, "an integer >= 1 (1 = the paper)"),
        ("learner.critic", cfg.learner.critic in ("none", "td"), "none (the paper) or td"),
        (
            "learner.critic_lr",
            cfg.learner.critic_lr > 0 and math.isfinite(cfg.learner.critic_lr),
            "a finite number > 0",
        ),
    ]
    for name in ("tau_mem_steps", "tau_syn_steps", "tau_readout_steps"):
        decay_ok = _finite(cfg.network[name], 0, False) and 0 < math.exp(-1 / cfg.network[name]) < 1
        checks.append((f"network.{name}", decay_ok, f"a time constant > 0 (steps) {DECAY_RANGE}"))
    for name in ("bias", "self_inhibition", "v_episode_start", "readout_gain"):
        checks.append((f"network.{name}", _finite(cfg.network[name]), "a finite number"))
    for name in ("input_std", "rec_std", "out_std"):
        checks.append((f"network.{name}", _finite(cfg.network[name], 0), "a finite number >= 0"))
    if cfg.env.max_episode_steps is not None:
        checks.append(("env.max_episode_steps", cfg.env.max_episode_steps >= 2, "null or an integer >= 2"))
    for key, positive in (("env.obs_shift", False), ("env.obs_scale", True)):
        each = "finite and > 0" if positive else "finite"
        allowed = f"null, one number or a list of numbers (one per observation dimension), each {each}"
        checks.append((key, _obs_numbers_ok(OmegaConf.select(cfg, key), positive), allowed))
    for key, ok, allowed in checks:
        if not ok:
            _fail(key, OmegaConf.select(cfg, key), allowed)
    if str(cfg.device).startswith("cuda") and not torch.cuda.is_available():
        _fail("device", cfg.device, "cpu (no CUDA device is visible on this machine)")
    if str(cfg.device).startswith("cuda:") and int(cfg.device[5:]) >= torch.cuda.device_count():
        _fail("device", cfg.device, f"cpu, cuda or cuda:N with N < {torch.cuda.device_count()} (the visible devices)")
    # The spike reset subtracts self_inhibition / a_m (METHOD.md §2): it must be a number in the run's dtype.
    w_res = cfg.network.self_inhibition
    if abs(w_res / math.exp(-1 / cfg.network.tau_mem_steps)) > torch.finfo(getattr(torch, cfg.dtype)).max:
        allowed = f"a time constant whose decay a_m keeps the spike reset self_inhibition / a_m = {w_res} / a_m"
        _fail("network.tau_mem_steps", cfg.network.tau_mem_steps, f"{allowed} finite in {cfg.dtype}")
    backend_allowed = check_backend(cfg.backend, cfg.device)
    if backend_allowed is not None:
        _fail("backend", cfg.backend, backend_allowed)


def with_new_keys(stored: DictConfig) -> DictConfig:
    """A stored configuration with the keys added to lfcs after it was written, at their defaults.

    Every key lfcs adds defaults to the behaviour from before it existed (the golden parity and the before/after
    training comparisons pin that), so a run directory of an earlier version continues unchanged and reads like a run of
    this version (lfcs.analysis.results); a stored key that this version no longer has leaves the configuration as
    stored (and the comparison then names it). An explicit ``resume=DIR`` compares only the keys typed on the command
    line, as before: values that come from an ``experiment=`` file are taken from the stored run.
    """
    try:
        return OmegaConf.merge(OmegaConf.structured(Config), stored)
    except OmegaConfBaseException:
        return stored
