"""Train lf-cs agents: python scripts/train.py [overrides], e.g. experiment=pong100_lfcs num_agents=10."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from lfcs import train
from lfcs.cli import precheck, prepare_sweep_storage, run_guarded
from lfcs.config import register_schema

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
register_schema()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return run_guarded(lambda: train(cfg)["objective"])


if __name__ == "__main__":
    precheck(sys.argv[1:], CONF_DIR)
    prepare_sweep_storage(sys.argv[1:], CONF_DIR)
    main()
