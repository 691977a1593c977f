"""Train lf-cs agents: python scripts/train.py [overrides], e.g. experiment=pong100_lfcs num_agents=10."""

import hydra
from omegaconf import DictConfig

from lfcs import train
from lfcs.config import register_schema

register_schema()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return train(cfg)["objective"]


if __name__ == "__main__":
    main()
