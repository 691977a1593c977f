"""Every config group composes against the schema, and every composition builds its objects."""

from __future__ import annotations

import itertools

import pytest
from omegaconf import OmegaConf

from lfcs.config import validate
from lfcs.running.agents import AgentGroup
from lfcs.running.logger import flatten_hparams
from tests.conftest import ROOT, SMALL, make_cfg


def options(group):
    return sorted(p.stem for p in (ROOT / "conf" / group).glob("*.yaml"))


def test_groups_exist():
    assert {"lfcs", "eprop"} <= set(options("learner"))
    assert {"pong100_lfcs", "pong100_eprop"} <= set(options("experiment"))
    assert {"local", "joblib", "submitit_local", "submitit_slurm"} <= set(options("launcher"))


@pytest.mark.parametrize("env,learner", itertools.product(options("env"), options("learner")))
def test_env_and_learner_compose_and_build(env, learner):
    cfg = make_cfg(*SMALL, f"env={env}", f"learner={learner}")
    validate(cfg)
    group = AgentGroup(cfg, [0])
    assert group.new_policy.num_neurons == 40
    if cfg.learner.name == "lfcs":
        assert group.learner.rule.fast == (cfg.learner.timescale == "fast")


@pytest.mark.parametrize("network", options("network"))
def test_network_options_compose(network):
    validate(make_cfg(f"network={network}"))


def parent_experiment(experiment):
    """The experiment a file builds on (its first plain defaults entry), or None for one built on the defaults."""
    defaults = OmegaConf.load(ROOT / "conf" / "experiment" / f"{experiment}.yaml").get("defaults", [])
    return next((entry for entry in defaults if isinstance(entry, str) and entry != "_self_"), None)


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiments_compose_change_something_and_validate(experiment):
    cfg = make_cfg(f"experiment={experiment}")
    validate(cfg)
    parent = parent_experiment(experiment)
    if parent is None and experiment == "pong100_lfcs":
        assert cfg == make_cfg()  # the defaults are the paper's lf-cs run (conf/config.yaml)
    else:
        base = make_cfg(f"experiment={parent}") if parent else make_cfg()
        assert cfg != base, f"experiment={experiment} changes nothing against {parent or 'the defaults'}"


LAUNCHER_TARGETS = {
    "local": "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
    "joblib": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
    "submitit_local": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher",
    "submitit_slurm": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
}


@pytest.mark.parametrize("launcher", options("launcher"))
def test_launchers_select_their_hydra_launcher(launcher):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"launcher={launcher}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_ == LAUNCHER_TARGETS[launcher]
    own = OmegaConf.load(ROOT / "conf" / "launcher" / f"{launcher}.yaml").get("hydra", {}).get("launcher", {})
    for key, value in own.items():  # the file's settings reach Hydra
        assert cfg.hydra.launcher[key] == value, key


def test_paper_experiments_are_the_papers_runs():
    lfcs, eprop = make_cfg("experiment=pong100_lfcs"), make_cfg("experiment=pong100_eprop")
    assert (lfcs.learner.timescale, lfcs.learner.n_passes) == ("fast", 2)
    assert (eprop.learner.timescale, eprop.learner.n_passes) == ("slow", 1)
    for cfg in (lfcs, eprop):
        assert cfg.iterations == 2500 and cfg.network.num_neurons == 500 and cfg.env.id == "lfcs/Pong100-v0"
        assert cfg.learner.trailing_zero_step and cfg.learner.ref_update_every == 1


@pytest.mark.parametrize("search", options("hparams_search"))
def test_hparams_searches_compose_with_a_resumable_study(search):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"hparams_search={search}"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper.storage.startswith("sqlite:///") and sweeper.storage.endswith("/optuna.db")
    assert sweeper.study_name and sweeper.direction == "maximize"
    assert {"learner.lr", "learner.eps", "learner.n_passes", "learner.gamma", "network.readout_gain"} <= set(
        sweeper.params
    )
    assert cfg.num_agents > 1  # seeds are averaged inside a trial
    assert sweeper._target_.endswith("OptunaSweeper") and "TPESampler" in sweeper.sampler._target_
    assert cfg.hydra.mode.name == "MULTIRUN"
    subdir = OmegaConf.to_container(cfg.hydra.sweep)["subdir"]  # unresolved: job.num exists only in a job
    assert subdir.startswith("trial=${lfcs_trial:${hydra:job.num},") and subdir.endswith("/seed=${seed}")
    validate(cfg)


# What each experiment file of the sticky-actions figure gap (METHOD.md §4) and the CartPole drafts sets.
EXPERIMENT_VALUES = {
    "pong100_lfcs_nosticky": {"learner.timescale": "fast", "learner.n_passes": 2, "network.out_std": 1.0},
    "pong100_eprop_nosticky": {"learner.timescale": "slow", "learner.n_passes": 1, "network.out_std": 1.0},
    "pong100_eprop_nosticky_out_std_0.001": {"learner.timescale": "slow", "network.out_std": 0.001},
    "cartpole_lfcs": {
        "env.id": "CartPole-v1",
        "learner.timescale": "slow",
        "learner.n_passes": 8,
        "learner.critic": "td",
        "learner.clip": "ppo",
        "learner.terminal_credit": True,
    },
    "cartpole_eprop": {
        "env.id": "CartPole-v1",
        "learner.timescale": "slow",
        "learner.n_passes": 1,
        "learner.critic": "td",
        "learner.terminal_credit": True,
    },
    "masked_cartpole_rec": {"network.rec_std": 0.5, "learner.learn_rec": True},
    "masked_cartpole_fixed": {"network.rec_std": 0.5, "learner.learn_rec": False},
    "masked_cartpole_norec": {"network.rec_std": 0.0, "learner.learn_rec": False},
}


@pytest.mark.parametrize("experiment", list(EXPERIMENT_VALUES))
def test_env_experiments_set_their_values(experiment):
    cfg = make_cfg(f"experiment={experiment}")
    validate(cfg)
    for key, value in EXPERIMENT_VALUES[experiment].items():
        assert OmegaConf.select(cfg, key) == value, key
    assert cfg.network.num_neurons == 500
    if experiment.startswith("pong100"):
        assert cfg.iterations == 2500 and cfg.env.id == "lfcs/Pong100-v0" and cfg.env.max_episode_steps == 100
        assert cfg.env.kwargs == {"repeat_action_probability": 0.0}  # sticky actions off (gym's v4 ids)
    else:
        assert cfg.iterations == 1000 and cfg.env.max_episode_steps == 500
        assert cfg.env.obs_scale is not None  # inputs x / c
    if experiment.startswith("masked"):
        assert cfg.env.id == "lfcs/MaskedCartPole-v0" and len(cfg.env.obs_scale) == 2
        assert cfg.learner.timescale == "fast"


def flat_cfg(*overrides: str) -> dict:
    return flatten_hparams(OmegaConf.to_container(make_cfg(*overrides), resolve=True))


def changed_keys(a: dict, b: dict) -> set[str]:
    return {key for key in a.keys() | b.keys() if a.get(key) != b.get(key)}


def test_masked_cartpole_conditions_share_one_network():
    """fixed and norec differ from rec only in the keys they name: the same seeds draw the same W_in and W_out
    (and for fixed the same random W_rec)."""
    rec = flat_cfg("experiment=masked_cartpole_rec")
    fixed, norec = flat_cfg("experiment=masked_cartpole_fixed"), flat_cfg("experiment=masked_cartpole_norec")
    same_lr = flat_cfg("experiment=masked_cartpole_rec_same_lr")
    assert changed_keys(rec, fixed) == {"learner.learn_rec", "learner.rec_lr"}  # rec_lr: null, W_rec is not learned
    assert changed_keys(rec, norec) == {"learner.learn_rec", "learner.rec_lr", "network.rec_std"}
    assert changed_keys(rec, same_lr) == {"learner.rec_lr"} and same_lr["learner.rec_lr"] == "None"


def test_nosticky_experiments_differ_from_the_paper_runs_only_in_sticky_actions():
    for learner in ("lfcs", "eprop"):
        paper, nosticky = flat_cfg(f"experiment=pong100_{learner}"), flat_cfg(f"experiment=pong100_{learner}_nosticky")
        assert changed_keys(paper, nosticky) == {"env.kwargs.repeat_action_probability"}, learner
        assert nosticky["env.kwargs.repeat_action_probability"] == 0.0
