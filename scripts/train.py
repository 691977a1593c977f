"""Train lf-cs agents: python scripts/train.py [overrides], e.g. experiment=pong100_lfcs num_agents=10."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from lfcs import train
from lfcs.config import register_schema
from lfcs.running.cli import precheck, run_guarded
from lfcs.running.sweeps import continue_study, refuse_finished_trial_folder

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
register_schema()


def _train(cfg: DictConfig) -> float:
    refuse_finished_trial_folder()
    return train(cfg)["objective"]


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    return run_guarded(lambda: _train(cfg))


if __name__ == "__main__":
    precheck(sys.argv[1:], CONF_DIR)
    overrides_end = max((i + 1 for i, arg in enumerate(sys.argv) if "=" in arg and not arg.startswith("-")), default=1)
    sys.argv[overrides_end:overrides_end] = continue_study(sys.argv[1:], CONF_DIR)  # after the user's overrides
    main()
