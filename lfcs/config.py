"""The value checks run before anything starts, over the schema of ``lfcs.schema`` (re-exported here).

Ranges and cross-field rules: :func:`validate` raises :class:`ConfigError` with one line naming the key, the value
and what is allowed.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from lfcs.backends import BACKENDS
from lfcs.backends import check as check_backend
from lfcs.errors import ConfigError  # also importable from here, as before
from lfcs.network.encoding import ENCODINGS
from lfcs.schema import (  # noqa: F401  (the schema's names, importable from here as before)
    LEARNERS,
    Config,
    EnvConfig,
    LearnerConfig,
    NetworkConfig,
    learner_arguments,
    register_schema,
    with_new_keys,
)


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
MAX = {"float64": torch.finfo(torch.float64).max, "float32": torch.finfo(torch.float32).max}


def _finite(value: Any, low: float = -math.inf, low_allowed: bool = True) -> bool:
    """A finite number above ``low`` (or equal to it where ``low_allowed``)."""
    return math.isfinite(value) and (value > low or (low_allowed and value == low))


def _decay_ok(tau: float) -> bool:
    """A time constant whose decay per step exp(-1 / tau) is a number strictly between 0 and 1."""
    return _finite(tau, 0, False) and 0 < math.exp(-1 / tau) < 1


def _off_policy_checks(learner: DictConfig) -> list[tuple[str, bool, str]]:
    """learner.off_policy and the constants of its corrections, learner.lr_scale."""
    mode = learner.off_policy
    return [
        ("learner.off_policy", mode in ("none", "decoupled", "vtrace"), "none (the paper), decoupled or vtrace"),
        ("learner.off_policy", mode != "vtrace" or learner.critic == "td", "vtrace only with learner.critic=td"),
        ("learner.behaviour_cbar", learner.behaviour_cbar > 0, "a number > 0 (inf: the behaviour weight untruncated)"),
        ("learner.vtrace_rho", learner.vtrace_rho > 0, "a number > 0 (inf: no truncation)"),
        ("learner.vtrace_c", learner.vtrace_c >= 0, "a number >= 0 (0: one-step targets; inf: no truncation)"),
        ("learner.lr_scale", learner.lr_scale in ("none", "per_episode"), "none or per_episode (lr / replay_episodes)"),
    ]


def _tau_mem_ok(value: Any) -> bool:
    """network.tau_mem_steps: a number > 0, or [min, max] with 0 < min <= max, all finite."""
    values = list(value) if OmegaConf.is_list(value) else [value]
    if len(values) not in (1, 2) or (len(values) == 1 and OmegaConf.is_list(value)):
        return False
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and _decay_ok(v) for v in values):
        return False
    return 0 < values[0] <= values[-1] and all(0 < math.exp(-1 / v) < 1 for v in values)


def _hidden_checks(cfg: DictConfig) -> list[tuple[str, bool, str]]:
    """The neuron model's keys and e-prop's hidden-weight learning (network.neuron, learner.learn_in, ...)."""
    net, learner = cfg.network, cfg.learner
    hidden = learner.learn_rec or learner.learn_in
    per_pass = learner.rec_update == "per_pass" or learner.timescale == "slow"
    finite = lambda x: isinstance(x, (int, float)) and math.isfinite(x)  # noqa: E731
    return [
        (
            "network.tau_mem_steps",
            _tau_mem_ok(net.tau_mem_steps),
            f"a time constant > 0 (steps), or [min, max] with 0 < min <= max (log-uniform per neuron and agent), each "
            f"{DECAY_RANGE}",
        ),
        ("network.neuron", net.neuron in ("lif_box", "alif"), "lif_box (the paper) or alif (adaptive threshold)"),
        ("network.adapt_beta", finite(net.adapt_beta) and net.adapt_beta >= 0, "a finite number >= 0"),
        ("network.adapt_fraction", 0 <= net.adapt_fraction <= 1, "a number in [0, 1]"),
        ("learner.feedback", learner.feedback in ("symmetric", "random"), "symmetric (W_out^T) or random"),
        (
            "learner.feedback",
            learner.feedback == "symmetric" or hidden,
            "symmetric while learner.learn_rec and learner.learn_in are false (it only carries their learning signal)",
        ),
        (
            "learner.in_lr",
            learner.in_lr is None or (finite(learner.in_lr) and learner.in_lr > 0),
            "null (= learner.lr) or a finite number > 0",
        ),
        ("learner.in_lr", learner.in_lr is None or learner.learn_in, "null while learner.learn_in=false"),
        ("learner.rec_update", learner.rec_update in ("per_step", "per_pass"), "per_step or per_pass"),
        ("learner.rate_reg", finite(learner.rate_reg) and learner.rate_reg >= 0, "a finite number >= 0 (0 = off)"),
        (
            "learner.rate_reg",
            learner.rate_reg == 0 or hidden,
            "0 while learner.learn_rec and learner.learn_in are false (it acts on W_rec and W_in)",
        ),
        (
            "learner.rate_reg",
            learner.rate_reg == 0 or per_pass,
            "0 unless W_rec / W_in learn once per pass (learner.rec_update=per_pass or learner.timescale=slow): it "
            "needs the pass's firing rates",
        ),
        ("learner.rate_target", 0 <= learner.rate_target <= 1, "a number in [0, 1] (spikes per neuron and step)"),
    ]


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
        *_off_policy_checks(cfg.learner),
    ]
    checks += _learner_checks(cfg.learner)
    checks.append(
        (
            "learner.name",
            cfg.learner.name != "bptt" or cfg.network.neuron == "lif_box",
            "lfcs with network.neuron=alif (learner=bptt unrolls the lif_box neuron only)",
        )
    )
    for name in ("tau_syn_steps", "tau_readout_steps", "tau_adapt_steps"):
        checks.append((f"network.{name}", _decay_ok(cfg.network[name]), f"a time constant > 0 (steps) {DECAY_RANGE}"))
    for name in ("bias", "self_inhibition", "v_episode_start", "readout_gain"):
        checks.append((f"network.{name}", _finite(cfg.network[name]), "a finite number"))
    for name in ("input_std", "rec_std", "out_std"):
        checks.append((f"network.{name}", _finite(cfg.network[name], 0), "a finite number >= 0"))
    checks.extend(_hidden_checks(cfg))
    if cfg.env.max_episode_steps is not None:
        checks.append(("env.max_episode_steps", cfg.env.max_episode_steps >= 2, "null or an integer >= 2"))
    for key, positive in (("env.obs_shift", False), ("env.obs_scale", True)):
        each = "finite and > 0" if positive else "finite"
        allowed = f"null, one number or a list of numbers (one per observation dimension), each {each}"
        checks.append((key, _obs_numbers_ok(OmegaConf.select(cfg, key), positive), allowed))
    checks += _encoding_checks(cfg.env)
    for key, ok, allowed in checks:
        if not ok:
            _fail(key, OmegaConf.select(cfg, key), allowed)
    if str(cfg.device).startswith("cuda") and not torch.cuda.is_available():
        _fail("device", cfg.device, "cpu (no CUDA device is visible on this machine)")
    if str(cfg.device).startswith("cuda:") and int(cfg.device[5:]) >= torch.cuda.device_count():
        _fail("device", cfg.device, f"cpu, cuda or cuda:N with N < {torch.cuda.device_count()} (the visible devices)")
    # The spike reset subtracts self_inhibition / a_m (METHOD.md §2): it must be a number in the run's dtype.
    w_res, tau_mem = cfg.network.self_inhibition, cfg.network.tau_mem_steps
    if abs(w_res / math.exp(-1 / min(tau_mem if OmegaConf.is_list(tau_mem) else [tau_mem]))) > MAX[cfg.dtype]:
        allowed = f"time constants whose decay a_m keeps the spike reset self_inhibition / a_m = {w_res} / a_m"
        _fail("network.tau_mem_steps", tau_mem, f"{allowed} finite in {cfg.dtype}")
    backend_allowed = check_backend(cfg.backend, cfg.device)
    if backend_allowed is not None:
        _fail("backend", cfg.backend, backend_allowed)


def _encoding_checks(env: DictConfig) -> list[tuple[str, bool, str]]:
    """env.encoding and its keys; a key that the chosen encoding would ignore must keep its default."""
    population = env.encoding in ("population", "normalize_population")
    span = list(env.population_range)
    numbers = all(isinstance(v, (int, float)) and math.isfinite(v) for v in span)
    width = env.population_width
    defaults = EnvConfig()
    checks = [
        ("env.encoding", env.encoding in ENCODINGS, "one of " + ", ".join(ENCODINGS)),
        ("env.encoding_gain", math.isfinite(env.encoding_gain) and env.encoding_gain > 0, "a finite number > 0"),
        (
            "env.encoding_gain",
            env.encoding != "none" or env.encoding_gain == 1,
            "1 with env.encoding=none (scale a raw input with env.obs_scale)",
        ),
        ("env.population_size", env.population_size >= 2, "an integer >= 2"),
        ("env.population_range", len(span) == 2 and numbers and span[0] < span[1], "[lo, hi], finite, lo < hi"),
        ("env.population_width", width is None or (math.isfinite(width) and width > 0), "null or a finite number > 0"),
    ]
    if not population:
        for key in ("population_size", "population_range", "population_width"):
            unchanged = env[key] == getattr(defaults, key)
            checks.append(
                (f"env.{key}", unchanged, "its default unless env.encoding is population or normalize_population")
            )
    return checks


def _learner_checks(learner: DictConfig) -> list[tuple[str, bool, str]]:
    """learner.name, the keys of learner=bptt, and no non-default value for a key the chosen learner does not read."""
    if learner.name not in LEARNERS:
        return [("learner.name", False, f"one of {', '.join(LEARNERS)} (or choose the group: learner=bptt)")]
    defaults = LearnerConfig()
    checks = [
        (f"learner.{key}", learner[key] == getattr(defaults, key),
         f"{getattr(defaults, key)!r} (its default) with learner.name={learner.name}, which does not read it")
        for name, keys in LEARNERS.items() if name != learner.name for key in keys
    ]  # fmt: skip
    if learner.name != "bptt":
        return checks
    finite = math.isfinite
    return checks + [
        ("learner.clip", learner.clip in ("ppo", "none"), "ppo (the clipped objective) or none with learner.name=bptt"),
        ("learner.batch_episodes", learner.batch_episodes >= 1, "an integer >= 1"),
        ("learner.epochs", learner.epochs >= 1, "an integer >= 1"),
        ("learner.minibatch", learner.minibatch >= 1, "an integer >= 1"),
        ("learner.minibatch", learner.batch_episodes % max(learner.minibatch, 1) == 0,
         f"a divisor of learner.batch_episodes={learner.batch_episodes}"),
        ("learner.gae_lambda", 0 <= learner.gae_lambda <= 1, "a number in [0, 1]"),
        ("learner.value_coef", learner.value_coef >= 0 and finite(learner.value_coef), "a finite number >= 0"),
        ("learner.entropy_coef", learner.entropy_coef >= 0 and finite(learner.entropy_coef), "a finite number >= 0"),
        ("learner.surrogate_slope", learner.surrogate_slope > 0 and finite(learner.surrogate_slope),
         "a finite number > 0"),
        ("learner.max_grad_norm", learner.max_grad_norm > 0, "a number > 0 (inf: no clipping)"),
    ]  # fmt: skip
