"""Every key of the schema at the edge of what it allows: the last allowed value passes the checks that run before
anything is written (lfcs.config.validate, and the env probe for env keys), the first refused one gets one line
naming the key and what is allowed. In-process; tests/test_errors.py runs the same checks through scripts/train.py.
"""

from __future__ import annotations

import math

import pytest
import torch
from omegaconf import OmegaConf

from lfcs.config import ConfigError, validate
from lfcs.running.agents import AgentGroup, probe_env
from tests.conftest import make_cfg

TINY = 5e-324  # the smallest positive float: "> 0" allows it
ABOVE_ONE = math.nextafter(1.0, 2.0)
BELOW_ZERO = -TINY
INF, NAN = math.inf, math.nan
BIG = 1.7976931348623157e308  # the largest float: "finite" allows it
SEED_MAX = 2**64 - 1
TAU_MIN = 0.0013420418985013614  # the smallest time constant whose decay exp(-1 / tau) is > 0 in float64
TAU_MAX = 1.8014398509481982e16  # the largest whose decay is < 1
TAU_MEM_MIN = 0.0014180825954279387  # the smallest tau_mem_steps with self_inhibition = 100 / a_m finite
TAU_MEM_MIN_FLOAT32 = 0.011888108806154062  # the same in float32

# (key, last allowed value, first refused value, other settings, words of the message)
BOUNDS = [
    ("seed", 0, -1, {}, "from 0"),
    ("seed", SEED_MAX, SEED_MAX + 1, {}, "2^64 - 1"),
    ("seed", SEED_MAX - 1, SEED_MAX, {"num_agents": 2}, "seed + b"),
    ("num_agents", 1, 0, {}, ">= 1"),
    ("iterations", 1, 0, {}, ">= 1"),
    ("workers", 1, 0, {}, ">= 1"),
    ("workers", 2, 3, {"num_agents": 2}, "at most num_agents=2"),
    ("checkpoint_every", 1, 0, {}, ">= 1"),
    ("objective_windows", 1, 0, {}, ">= 1"),
    ("eval_every", 0, -1, {}, ">= 0"),
    ("eval_episodes", 1, 0, {}, ">= 1"),
    ("log_images_every", 0, -1, {}, ">= 0"),
    ("probe_every", 0, -1, {}, ">= 0"),
    ("device", "cpu", "gpu", {}, "cpu, cuda or cuda:N"),
    ("device", "cpu", "cuda:x", {}, "cpu, cuda or cuda:N"),
    ("backend", "torch", "numba", {}, "auto, kernels"),
    ("dtype", "float32", "float16", {}, "float64 or float32"),
    ("env.id", "CartPole-v1", "NoSuchEnv-v0", {}, "doesn't exist"),
    ("env.id", "CartPole-v1", "Pendulum-v1", {}, "Discrete"),
    ("env.max_episode_steps", 2, 1, {}, ">= 2"),
    ("env.kwargs", {"repeat_action_probability": 0.0}, {"no_such_kwarg": 1}, {}, "no_such_kwarg"),
    ("env.obs_shift", -BIG, -INF, {}, "finite"),
    ("env.obs_shift", [0.0] * 4, [0.0] * 3, {"env.id": "CartPole-v1"}, "list of 4"),
    ("env.obs_scale", TINY, 0.0, {}, "> 0"),
    ("env.obs_scale", BIG, INF, {}, "finite"),
    ("env.obs_scale", 1.0, NAN, {}, "finite"),
    ("network.num_neurons", 1, 0, {}, ">= 1"),
    ("network.tau_mem_steps", TAU_MEM_MIN, math.nextafter(TAU_MEM_MIN, 0), {}, "self_inhibition / a_m"),
    (
        "network.tau_mem_steps",
        TAU_MEM_MIN_FLOAT32,
        math.nextafter(TAU_MEM_MIN_FLOAT32, 0),
        {"dtype": "float32"},
        "finite in float32",
    ),  # fmt: skip
    ("network.tau_mem_steps", TAU_MIN, math.nextafter(TAU_MIN, 0), {"network.self_inhibition": 0.0}, "decay"),
    ("network.tau_mem_steps", TAU_MAX, math.nextafter(TAU_MAX, INF), {}, "decay"),
    ("network.tau_syn_steps", TAU_MIN, math.nextafter(TAU_MIN, 0), {}, "decay"),
    ("network.tau_syn_steps", TAU_MAX, INF, {}, "decay"),
    ("network.tau_readout_steps", TAU_MIN, 0.0, {}, "> 0"),
    ("network.tau_readout_steps", TAU_MAX, math.nextafter(TAU_MAX, INF), {}, "< 1"),
    ("network.bias", -BIG, NAN, {}, "finite"),
    ("network.self_inhibition", 1e308, INF, {}, "finite"),
    ("network.v_episode_start", -BIG, -INF, {}, "finite"),
    ("network.readout_gain", BIG, INF, {}, "finite"),
    ("network.input_std", 0.0, BELOW_ZERO, {}, ">= 0"),
    ("network.rec_std", BIG, INF, {}, "finite"),
    ("network.out_std", 0.0, NAN, {}, ">= 0"),
    ("network.spike_noise_width", TINY, 0.0, {}, "> 0"),
    ("network.spike_noise_width", BIG, INF, {}, "finite"),
    ("learner.timescale", "slow", "medium", {}, "fast or slow"),
    ("learner.n_passes", 1, 0, {}, ">= 1"),
    ("learner.eps", TINY, 0.0, {}, "> 0"),
    ("learner.eps", INF, NAN, {}, "> 0"),
    ("learner.lr", TINY, 0.0, {}, "> 0"),
    ("learner.lr", BIG, INF, {}, "finite"),
    ("learner.betas", [0.0, 0.0], [BELOW_ZERO, 0.0], {}, "[0, 1)"),
    ("learner.betas", [0.9, math.nextafter(1.0, 0)], [0.9, 1.0], {}, "[0, 1)"),
    ("learner.betas", [0.9, 0.999], [0.9], {}, "two numbers"),
    ("learner.adam_eps", TINY, 0.0, {}, "> 0"),
    ("learner.adam_eps", BIG, INF, {}, "finite"),
    ("learner.gamma", 1.0, ABOVE_ONE, {}, "(0, 1]"),
    ("learner.gamma", TINY, 0.0, {}, "(0, 1]"),
    ("learner.ref_update_every", 1, 0, {}, ">= 1"),
    ("learner.rec_lr", TINY, 0.0, {"learner.learn_rec": True}, "> 0"),
    ("learner.rec_lr", BIG, INF, {"learner.learn_rec": True}, "finite"),
    ("learner.rec_lr", None, 1e-4, {}, "null while learner.learn_rec=false"),
    ("learner.clip", "none", "soft", {}, "mask (the paper), ppo or none"),
    ("learner.replay_episodes", 1, 0, {}, ">= 1"),
    ("learner.critic", "td", "mc", {}, "none (the paper) or td"),
    ("learner.critic_lr", TINY, 0.0, {}, "> 0"),
    ("learner.critic_lr", BIG, INF, {}, "finite"),
]
POP, BPTT, REC = {"env.encoding": "population"}, {"learner": "bptt"}, {"learner.learn_rec": True}
PER_PASS = {**REC, "learner.rec_update": "per_pass"}
BOUNDS += [  # keys added by the encodings, alif, offpolicy and bptt branches
    ("env.encoding", "normalize_population", "bogus", {}, "one of none"),
    ("env.encoding_gain", TINY, 0.0, {"env.encoding": "normalize"}, "> 0"),
    ("env.encoding_gain", BIG, INF, {"env.encoding": "normalize"}, "finite"),
    ("env.encoding_gain", 1.0, 2.0, {}, "1 with env.encoding=none"),
    ("env.population_size", 2, 1, POP, ">= 2"),
    ("env.population_size", 16, 17, {}, "its default unless env.encoding is population"),
    ("env.population_range", [-BIG, BIG], [-INF, 0.0], POP, "finite"),
    ("env.population_range", [0.0, TINY], [0.0, 0.0], POP, "lo < hi"),
    ("env.population_width", TINY, 0.0, POP, "> 0"),
    ("env.population_width", BIG, INF, POP, "finite"),
    ("network.tau_mem_steps", [TAU_MEM_MIN, TAU_MAX], [TAU_MEM_MIN, INF], {}, "[min, max]"),
    ("network.tau_mem_steps", [1.0, 1.0], [2.0, 1.0], {}, "0 < min <= max"),
    ("network.tau_mem_steps", [TAU_MEM_MIN, 6.0], [math.nextafter(TAU_MEM_MIN, 0), 6.0], {}, "self_inhibition / a_m"),
    ("network.neuron", "alif", "lif", {}, "lif_box (the paper) or alif"),
    ("network.tau_adapt_steps", TAU_MIN, math.nextafter(TAU_MIN, 0), {}, "decay"),
    ("network.tau_adapt_steps", TAU_MAX, INF, {}, "decay"),
    ("network.adapt_beta", 0.0, BELOW_ZERO, {}, ">= 0"),
    ("network.adapt_beta", BIG, INF, {}, "finite"),
    ("network.adapt_fraction", 1.0, ABOVE_ONE, {}, "[0, 1]"),
    ("network.adapt_fraction", 0.0, BELOW_ZERO, {}, "[0, 1]"),
    ("learner.off_policy", "decoupled", "vtrace", {}, "vtrace only with learner.critic=td"),
    ("learner.off_policy", "vtrace", "retrace", {"learner.critic": "td"}, "none (the paper), decoupled or vtrace"),
    ("learner.behaviour_cbar", TINY, 0.0, {}, "> 0"),
    ("learner.behaviour_cbar", INF, NAN, {}, "> 0"),
    ("learner.vtrace_rho", TINY, 0.0, {}, "> 0"),
    ("learner.vtrace_c", 0.0, BELOW_ZERO, {}, ">= 0"),
    ("learner.vtrace_c", INF, NAN, {}, ">= 0"),
    ("learner.lr_scale", "per_episode", "per_step", {}, "none or per_episode"),
    ("learner.in_lr", TINY, 0.0, {"learner.learn_in": True}, "> 0"),
    ("learner.in_lr", BIG, INF, {"learner.learn_in": True}, "finite"),
    ("learner.in_lr", None, 1e-4, {}, "null while learner.learn_in=false"),
    ("learner.feedback", "random", "transpose", REC, "symmetric (W_out^T) or random"),
    ("learner.feedback", "symmetric", "random", {}, "symmetric while learner.learn_rec"),
    ("learner.rec_update", "per_pass", "per_episode", {}, "per_step or per_pass"),
    ("learner.rate_reg", BIG, INF, PER_PASS, "finite"),
    ("learner.rate_reg", 0.0, BELOW_ZERO, PER_PASS, ">= 0"),
    ("learner.rate_reg", 0.0, TINY, {}, "0 while learner.learn_rec"),
    ("learner.rate_reg", 0.0, TINY, REC, "0 unless W_rec / W_in learn once per pass"),
    ("learner.rate_target", 1.0, ABOVE_ONE, {}, "[0, 1]"),
    ("learner.rate_target", 0.0, BELOW_ZERO, {}, "[0, 1]"),
    ("learner.name", "bptt", "ppo", {"learner.clip": "ppo"}, "one of lfcs, bptt"),
    ("learner.epochs", 4, 5, {}, "(its default) with learner.name=lfcs"),
    ("learner.n_passes", 2, 3, BPTT, "(its default) with learner.name=bptt"),
    ("learner.clip", "none", "mask", BPTT, "ppo (the clipped objective) or none with learner.name=bptt"),
    ("learner.batch_episodes", 1, 0, BPTT, ">= 1"),
    ("learner.epochs", 1, 0, BPTT, ">= 1"),
    ("learner.minibatch", 1, 0, BPTT, ">= 1"),
    ("learner.minibatch", 3, 4, {**BPTT, "learner.batch_episodes": 6}, "a divisor of learner.batch_episodes=6"),
    ("learner.gae_lambda", 1.0, ABOVE_ONE, BPTT, "[0, 1]"),
    ("learner.gae_lambda", 0.0, BELOW_ZERO, BPTT, "[0, 1]"),
    ("learner.value_coef", 0.0, BELOW_ZERO, BPTT, ">= 0"),
    ("learner.value_coef", BIG, INF, BPTT, "finite"),
    ("learner.entropy_coef", 0.0, BELOW_ZERO, BPTT, ">= 0"),
    ("learner.entropy_coef", BIG, INF, BPTT, "finite"),
    ("learner.surrogate_slope", TINY, 0.0, BPTT, "> 0"),
    ("learner.surrogate_slope", BIG, INF, BPTT, "finite"),
    ("learner.max_grad_norm", TINY, 0.0, BPTT, "> 0"),
    ("learner.max_grad_norm", INF, NAN, BPTT, "> 0"),
]
if not torch.cuda.is_available():
    BOUNDS.append(("device", "cpu", "cuda", {}, "no CUDA device"))

BASES = {name: make_cfg("network.num_neurons=20", "progress=false", f"learner={name}") for name in ("lfcs", "bptt")}


def configured(settings: dict):
    cfg = BASES[settings.get("learner", "lfcs")].copy()
    for key, value in settings.items():
        if key != "learner":
            OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def start_checks(cfg, env: bool = True) -> None:
    """What scripts/train.py and train() check before anything is written (the run directory aside); the env
    probe (it builds the env) only where the env's keys change."""
    validate(cfg)
    if env:
        probe_env(cfg)


@pytest.mark.parametrize("key, allowed, refused, others, words", BOUNDS, ids=[f"{b[0]}={b[2]}" for b in BOUNDS])
def test_the_last_allowed_value_passes_and_the_first_refused_one_is_one_line(key, allowed, refused, others, words):
    check_bound(key, allowed, refused, others, words)


def check_bound(key, allowed, refused, others, words) -> None:
    """``allowed`` passes the start checks; ``refused`` is one ConfigError line naming the key and ``words``."""
    env = key.startswith("env.")
    if env and key != "env.kwargs":  # CartPole builds in a millisecond, the Pong ROM in a few hundred
        others = {"env.id": "CartPole-v1", **others}
    start_checks(configured({**others, key: allowed}), env)
    with pytest.raises(ConfigError) as refusal:
        start_checks(configured({**others, key: refused}), env)
    message = str(refusal.value)
    assert "\n" not in message and message.startswith(f"{key}=") and " is not allowed: " in message, message
    assert words in message, message


@pytest.mark.parametrize("backend", ["kernels", "torch"])
def test_every_last_allowed_value_at_once_trains_without_a_non_finite_number(backend):
    """Allowed means it runs: the edges of the network, rule and observation keys together (neurons that fire)."""
    edges = {
        "seed": SEED_MAX,
        "backend": backend,
        "env.max_episode_steps": 2,
        "network.num_neurons": 1,
        "network.tau_mem_steps": TAU_MEM_MIN,
        "network.tau_syn_steps": TAU_MIN,
        "network.tau_readout_steps": TAU_MAX,
        "network.bias": 100.0,
        "network.input_std": 0.0,
        "network.stochastic_spikes": True,
        "network.spike_noise_width": TINY,
        "learner.n_passes": 1,
        "learner.eps": TINY,
        "learner.lr": TINY,
        "learner.betas": [0.0, 0.0],
        "learner.adam_eps": TINY,
        "learner.gamma": TINY,
        "learner.learn_rec": True,
        "learner.rec_lr": TINY,
        "learner.critic": "td",
        "learner.critic_lr": TINY,
        "eval_every": 1,
        "eval_episodes": 1,
        "log_images_every": 0,
        "probe_every": 0,
    }
    cfg = configured(edges)
    start_checks(cfg)
    group = AgentGroup(cfg, [0])
    rows = [group.run_episode()[0] for _ in range(3)]  # NonFiniteError on any NaN or inf
    assert rows[-1]["episode"] == 3 and rows[-1]["firing_rate"] > 0
