"""Run directories: where a run writes, and how a re-run or ``resume=`` continues it without overwriting.

A directory that already holds a run is continued only with the same configuration (keys in ``RESUMABLE_KEYS``
may change, e.g. more ``iterations``); anything else is refused and nothing is written. :func:`inspect_run_dir`
makes every check and reads only, so that ``scripts/train.py`` runs it before Hydra creates any folder;
:func:`prepare_run_dir` checks again and writes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from lfcs import checkpoint
from lfcs.checkpoint import checkpoint_files
from lfcs.config import ConfigError, with_new_keys
from lfcs.running.logger import CSV_COLUMNS, upgrade_history

# Keys a resume may change: they do not change what the agents learn (observation only).
RESUMABLE_KEYS = (
    "iterations",
    "checkpoint_every",
    "progress",
    "resume",
    "run_dir",
    "eval_every",
    "eval_episodes",
    "log_images_every",
    "probe_every",
)
INT_COLUMNS = ("agent", "episode", "env_steps")
# What AgentGroup.load reads from a checkpoint (lfcs.running.agents.AgentGroup.state_dict).
TRAINING_STATE = ("agents", "episode", "new_policy", "ref_policy", "adam", "generators", "env_states", "history")


def resume_target(cfg: DictConfig) -> Path | bool:
    value = cfg.resume
    if value is None or str(value).lower() in ("false", "none", ""):
        return False
    if str(value).lower() == "true":
        return True
    return Path(str(value))


def _output_dir(cfg: DictConfig, hydra_dir: Path | None) -> Path:
    if cfg.run_dir is not None:
        return Path(cfg.run_dir)
    if hydra_dir is not None:
        return hydra_dir
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    raise ConfigError("run_dir=None is not allowed outside a Hydra app: set run_dir to a directory")


def check_usable_dir(key: str, path: Path) -> None:
    """ConfigError unless ``path`` is a directory, or a folder that can be created there."""
    allowed = "a directory (an existing one, or a new one under a writable directory)"
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{key}={str(path)!r} is not allowed: it is a file; {allowed}")
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"{key}={str(path)!r} is not allowed: {ancestor} is a file; {allowed}")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}={str(path)!r} is not allowed: {ancestor} is not writable; {allowed}")


def _first_difference(stored: dict, requested: dict, prefix: str = "") -> tuple[str, object, object] | None:
    for key in sorted(set(stored) | set(requested)):
        name = prefix + key
        if name in RESUMABLE_KEYS:
            continue
        a, b = stored.get(key, "<absent>"), requested.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            found = _first_difference(a, b, name + ".")
            if found:
                return found
        elif a != b:
            return name, a, b
    return None


def inspect_run_dir(
    cfg: DictConfig, command_line: list[str] | None = None, hydra_dir: Path | None = None
) -> tuple[Path, DictConfig, dict[int, list[dict]]]:
    """Pick the run directory, check it against the config, and return the metric rows already checkpointed.

    Reads only; ConfigError or CheckpointError on anything that would stop the run. command_line: the overrides the
    user typed (Hydra app), so that an explicit resume can refuse the ones that contradict the stored run; None
    compares the whole configuration instead. hydra_dir: Hydra's run directory, before Hydra exists.
    """
    target = resume_target(cfg)
    run_dir = target if isinstance(target, Path) else _output_dir(cfg, hydra_dir)
    key = "resume" if isinstance(target, Path) else "run_dir" if cfg.run_dir is not None else "hydra.run.dir"
    check_usable_dir(key, run_dir)
    if target and not run_dir.is_dir():
        raise ConfigError(f"resume={cfg.resume!r} is not allowed: directory {run_dir} does not exist")
    files = checkpoint_files(run_dir)
    if target and not files:
        raise ConfigError(f"resume={cfg.resume!r} is not allowed: {run_dir} holds no checkpoint")
    stored_path = run_dir / "config.yaml"
    if not stored_path.exists() and any((run_dir / name).exists() for name in ("metrics.csv", "tb", "checkpoints")):
        raise ConfigError(
            f"run_dir={str(run_dir)!r} is not allowed: it holds files of something that is not an lfcs run"
        )
    if stored_path.exists():
        stored = with_new_keys(OmegaConf.load(stored_path))
        requested = cfg
        if target and command_line is not None:
            # An explicit resume continues the stored run. Keys typed on the command line must agree with it
            # (RESUMABLE_KEYS may change); every other key comes from the stored configuration.
            resumed = OmegaConf.merge(stored, {key: cfg[key] for key in RESUMABLE_KEYS})
            requested = resumed.copy()
            for override in command_line:
                key = override.lstrip("+~").split("=", 1)[0]
                value = OmegaConf.select(cfg, key, default=None)
                if "=" in override and key.split(".")[0] not in RESUMABLE_KEYS and value is not None:
                    OmegaConf.update(requested, key, value, merge=False, force_add=True)
            cfg = resumed
        diff = _first_difference(
            OmegaConf.to_container(stored, resolve=True), OmegaConf.to_container(requested, resolve=True)
        )
        if diff:
            key, old, new = diff
            raise ConfigError(
                f"{key}={new!r} is not allowed here: {run_dir} already holds a run with {key}={old!r} "
                f"(choose another hydra.run.dir, or resume it unchanged)"
            )
    history: dict[int, list[dict]] = {}
    for path in files:
        state = checkpoint.load(path)
        missing = [key for key in TRAINING_STATE if key not in state]
        if missing:
            raise checkpoint.CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}: not a training checkpoint")
        named = re.fullmatch(r"agents_(\d+)-(\d+)\.pt", path.name)
        if named is None or list(state["agents"]) != list(range(int(named[1]), int(named[2]) + 1)):
            held = f"agents {list(state['agents'])}"
            raise checkpoint.CheckpointError(f"checkpoint {path} holds {held}: it must be named agents_<a>-<b>.pt")
        try:
            table = upgrade_history(state["history"])  # (episodes, agents in the file, columns)
        except ValueError as exc:
            raise checkpoint.CheckpointError(
                f"checkpoint {path} {exc} ({', '.join(CSV_COLUMNS)}): it was written by another version; start a "
                f"new run directory"
            ) from exc
        for i, agent in enumerate(state["agents"]):
            rows = [dict(zip(CSV_COLUMNS, values)) for values in table[:, i].tolist()]
            for row in rows:
                for key in INT_COLUMNS:
                    row[key] = int(row[key])
            history[int(agent)] = rows
    return run_dir, cfg, history


def prepare_run_dir(
    cfg: DictConfig, command_line: list[str] | None = None
) -> tuple[Path, DictConfig, dict[int, list[dict]]]:
    """:func:`inspect_run_dir`, then create the directory and store the configuration."""
    run_dir, cfg, history = inspect_run_dir(cfg, command_line)
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / "config.yaml.tmp"
    tmp.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    tmp.replace(run_dir / "config.yaml")
    return run_dir, cfg, history
