"""The typed configuration schema (Hydra structured configs): every key, its type and its default.

Types and unknown keys are checked by Hydra/OmegaConf against these dataclasses; ranges and cross-field rules by
``lfcs.config.validate``. ``with_new_keys`` reads a configuration stored by an earlier version with the keys added
since at their defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


@dataclass
class EnvConfig:
    id: str = "lfcs/Pong100-v0"
    max_episode_steps: int | None = None  # T; None keeps the env's registered limit
    kwargs: dict[str, Any] = field(default_factory=dict)
    # The agent sees (x - obs_shift) / obs_scale, never clipped (envs/wrappers.py). Each: null (shift 0, scale 1),
    # one number for every observation dimension, or a list with one number per dimension; scales finite and > 0.
    obs_shift: Any = None
    obs_scale: Any = None
    # Input encoding after the scaling (lfcs/network/encoding.py; Discrete / MultiDiscrete are one-hot first):
    # none | normalize (running mean and variance of earlier episodes, times encoding_gain) | population (Gaussian
    # receptive fields over population_range) | normalize_population (the population code of the normalised value).
    encoding: str = "none"
    encoding_gain: float = 1.0  # multiplies the encoder's output (not allowed to differ from 1 with encoding none)
    population_size: int = 16  # inputs per observation dimension
    population_range: list[float] = field(default_factory=lambda: [-2.0, 2.0])  # [lo, hi] of the centres
    population_width: float | None = None  # the Gaussians' std; null = the centre spacing (hi - lo) / (size - 1)


@dataclass
class NetworkConfig:
    num_neurons: int = 500
    tau_mem_steps: Any = 6.0  # one number, or [min, max]: log-uniform per neuron and agent
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
    neuron: str = "lif_box"  # lif_box (the paper) | alif (adaptive threshold on the first adapt_fraction N neurons)
    tau_adapt_steps: float = 100.0
    adapt_beta: float = 0.4
    adapt_fraction: float = 0.5


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
    off_policy: str = "none"
    behaviour_cbar: float = 1.0
    vtrace_rho: float = 1.0
    vtrace_c: float = 1.0
    lr_scale: str = "none"
    learn_in: bool = False
    in_lr: float | None = None
    feedback: str = "symmetric"
    rec_update: str = "per_step"
    rate_reg: float = 0.0
    rate_target: float = 0.01
    # Which learner trains the network: lfcs (METHOD.md §3; learner=eprop is its slow one-pass setting) | bptt (PPO
    # by backpropagation through time, lfcs.learning.bptt). The keys below are read by learner=bptt alone.
    name: str = "lfcs"
    batch_episodes: int = 1  # episodes each agent plays with pi_ref between two updates
    epochs: int = 4  # passes over those episodes per update
    minibatch: int = 1  # episodes per gradient step (divides batch_episodes)
    gae_lambda: float = 0.95
    value_coef: float = 0.5
    entropy_coef: float = 0.0
    normalize_advantages: bool = True  # per minibatch, over its steps
    surrogate_slope: float = 1.0  # dz/dv = 1 - tanh(slope v)^2 (norse's HeaviTanh surrogate)
    max_grad_norm: float = 0.5  # per agent and gradient step; inf: no clipping


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


# learner.name -> the keys only that learner reads. The other learner refuses a value other than the default: it
# would be ignored without a word. The remaining keys (eps, clip, lr, betas, adam_eps, gamma, learn_rec, rec_lr,
# critic_lr: w_V's Adam lr, the TD critic's or the bptt value head's) are read by both.
LEARNERS: dict[str, tuple[str, ...]] = {
    "lfcs": ("timescale", "n_passes", "trailing_zero_step", "ref_update_every", "replay_episodes", "terminal_credit",
             "critic", "off_policy", "behaviour_cbar", "vtrace_rho", "vtrace_c", "lr_scale", "in_lr", "feedback",
             "rec_update", "rate_reg", "rate_target"),
    "bptt": ("batch_episodes", "epochs", "minibatch", "gae_lambda", "value_coef", "entropy_coef",
             "normalize_advantages", "surrogate_slope", "max_grad_norm"),
}  # fmt: skip


def learner_arguments(learner: DictConfig) -> dict[str, Any]:
    """The constructor keywords of the learner that ``learner.name`` picks: its own keys and the shared ones."""
    others = {key for name, keys in LEARNERS.items() if name != learner.name for key in keys}
    values = OmegaConf.to_container(learner)
    return {key: value for key, value in values.items() if key != "name" and key not in others}


def register_schema() -> None:
    ConfigStore.instance().store(name="lfcs_schema", node=Config)


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
