"""The keys added on 2026-12-06 (off-policy replay, ALIF and e-prop, encodings, learner=bptt) at the edge of what
they allow, as tests/test_config_bounds.py does for the earlier keys: the last allowed value passes the checks that
run before anything is written, the first refused one is one line naming the key and what is allowed."""

from __future__ import annotations

import math

import pytest

from tests.test_config_bounds import TAU_MIN, TINY, check_bound

BIG, INF = 1e300, math.inf
ABOVE_ONE = math.nextafter(1.0, 2.0)
TD = {"learner.critic": "td"}
HIDDEN = {"learner.learn_rec": True, "network.rec_std": 0.1}
POPULATION = {"env.encoding": "population"}
BPTT = {"learner.name": "bptt", "learner.clip": "ppo"}
# (key, last allowed value, first refused value, other settings, words of the message)
NEW_BOUNDS = [
    ("learner.off_policy", "vtrace", "gae", TD, "none (the paper), decoupled or vtrace"),
    ("learner.off_policy", "decoupled", "vtrace", {}, "vtrace only with learner.critic=td"),
    ("learner.behaviour_cbar", TINY, 0.0, {}, "> 0"),
    ("learner.vtrace_rho", TINY, 0.0, TD, "> 0"),
    ("learner.vtrace_c", 0.0, -TINY, TD, ">= 0"),
    ("learner.lr_scale", "per_episode", "per_step", {}, "none or per_episode"),
    ("network.neuron", "alif", "izhikevich", {}, "lif_box"),
    ("network.adapt_beta", 0.0, -TINY, {}, ">= 0"),
    ("network.adapt_beta", BIG, INF, {}, "finite"),
    ("network.adapt_fraction", 1.0, ABOVE_ONE, {}, "[0, 1]"),
    ("network.adapt_fraction", 0.0, -TINY, {}, "[0, 1]"),
    ("network.tau_adapt_steps", TAU_MIN, math.nextafter(TAU_MIN, 0), {}, "decay"),
    ("learner.feedback", "random", "transposed", HIDDEN, "symmetric"),
    ("learner.feedback", "symmetric", "random", {}, "learn_rec"),
    ("learner.in_lr", TINY, 0.0, {"learner.learn_in": True}, "> 0"),
    ("learner.rec_update", "per_pass", "per_episode", {}, "per_step or per_pass"),
    ("learner.rate_reg", 0.0, -TINY, {}, ">= 0"),
    ("learner.rate_target", 1.0, ABOVE_ONE, {}, "[0, 1]"),
    ("env.encoding", "population", "spikes", {}, "one of"),
    ("env.encoding_gain", TINY, 0.0, {"env.encoding": "normalize"}, "> 0"),
    ("env.population_size", 2, 1, POPULATION, ">= 2"),
    ("env.population_width", TINY, 0.0, POPULATION, "> 0"),
    ("learner.name", "bptt", "sgd", {"learner.clip": "ppo"}, "one of"),
    ("learner.batch_episodes", 1, 0, BPTT, ">= 1"),
    ("learner.epochs", 1, 0, BPTT, ">= 1"),
    ("learner.minibatch", 1, 0, BPTT, ">= 1"),
    ("learner.gae_lambda", 1.0, ABOVE_ONE, BPTT, "[0, 1]"),
    ("learner.value_coef", 0.0, -TINY, BPTT, ">= 0"),
    ("learner.entropy_coef", 0.0, -TINY, BPTT, ">= 0"),
    ("learner.surrogate_slope", TINY, 0.0, BPTT, "> 0"),
    ("learner.max_grad_norm", TINY, 0.0, BPTT, "> 0"),
]


@pytest.mark.parametrize("key, allowed, refused, others, words", NEW_BOUNDS, ids=[f"{b[0]}={b[2]}" for b in NEW_BOUNDS])
def test_the_last_allowed_value_passes_and_the_first_refused_one_is_one_line(key, allowed, refused, others, words):
    check_bound(key, allowed, refused, others, words)
