"""Every config group composes against the schema, and every composition builds its objects."""

from __future__ import annotations

import itertools

import pytest
from omegaconf import OmegaConf

from lfcs.agents import AgentGroup
from lfcs.config import validate
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
    assert group.learner.fast == (cfg.learner.timescale == "fast")


@pytest.mark.parametrize("network", options("network"))
def test_network_options_compose(network):
    validate(make_cfg(f"network={network}"))


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiments_compose(experiment):
    cfg = make_cfg(f"experiment={experiment}")
    validate(cfg)
    assert cfg.iterations >= 1


@pytest.mark.parametrize("launcher", options("launcher"))
def test_launchers_compose(launcher):
    with_hydra = OmegaConf.to_container(make_cfg(f"launcher={launcher}"))
    assert "learner" in with_hydra


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
    validate(cfg)
