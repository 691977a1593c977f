"""Optuna studies that continue: a re-run of the same command adds new trials, each in its own folder.

The study lives in sqlite under a fixed name, so a re-run loads it. Before Hydra starts, :func:`continue_study`
counts the trials already stored (``first_trial``) and returns two overrides: the sampler's seed becomes
``seed + first_trial`` (a continuation samples new points, while the same commands from scratch give the same
trials), and ``hydra.job.env_set.LFCS_FIRST_TRIAL`` carries the offset that turns Hydra's job number (from 0 on
every invocation) into the study's trial number in the job folder, ``trial=<number>/...``.
"""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lfcs.config import ConfigError

FIRST_TRIAL_KEY = "hydra.job.env_set.LFCS_FIRST_TRIAL"
SAMPLER_SEED_KEY = "hydra.sweeper.sampler.seed"

# trial=${lfcs_trial:${hydra:job.num},${hydra.job.env_set.LFCS_FIRST_TRIAL}} in conf/hparams_search/*.yaml.
# Registered on import: every process that runs a job imports lfcs (the task function lives there).
OmegaConf.register_new_resolver("lfcs_trial", lambda job_num, first: int(job_num) + int(first), replace=True)


def stored_trials(storage: str | None, study_name: str | None) -> int:
    """How many trials (of any state) the study already holds; 0 when there is no database or study yet."""
    if not (isinstance(storage, str) and storage.startswith("sqlite:///") and study_name):
        return 0
    if not Path(storage.removeprefix("sqlite:///")).exists():
        return 0  # opening a missing sqlite file would create it
    import optuna

    try:
        return len(optuna.load_study(study_name=study_name, storage=storage).trials)
    except KeyError:  # the database exists but holds no such study yet
        return 0


def continue_study(argv: list[str], conf_dir: Path) -> list[str]:
    """Create the sqlite storage's folder and return the overrides that continue the study; [] for no study.

    The folder must exist before Hydra starts the sweeper: it opens the database before the launcher creates
    the sweep directory.
    """
    if not any(arg.startswith("hparams_search=") for arg in argv):
        return []
    overrides = [arg for arg in argv if "=" in arg and not arg.startswith("-")]  # not flags, nor their values
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    storage = OmegaConf.select(sweeper, "storage", default=None)
    if isinstance(storage, str) and storage.startswith("sqlite:///"):
        Path(storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    first_trial = stored_trials(storage, OmegaConf.select(sweeper, "study_name", default=None))
    extra = [f"{FIRST_TRIAL_KEY}={first_trial}"]
    seed = OmegaConf.select(cfg, SAMPLER_SEED_KEY, default=None)
    if seed is not None:
        extra.append(f"{SAMPLER_SEED_KEY}={int(seed) + first_trial}")
    return extra


def refuse_finished_trial_folder() -> None:
    """Inside an Optuna trial: refuse a job folder that already holds a finished run.

    Training there would train 0 episodes and report the earlier run's objective as this trial's.
    """
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    if "optuna" not in str(OmegaConf.select(hydra_cfg, "sweeper._target_", default="")).lower():
        return
    folder = Path(hydra_cfg.runtime.output_dir)
    if (folder / "summary.json").exists():
        raise ConfigError(
            f"hydra.sweep.subdir={hydra_cfg.sweep.subdir!r} is not allowed: {folder} already holds a finished run; "
            "each trial needs its own folder (keep trial=${lfcs_trial:...} in the subdir)"
        )
