"""Command-line plumbing of ``scripts/train.py``: one clear line for every bad input, never a traceback.

Hydra reports composition errors (wrong type, unknown key, unknown group option) over several lines and creates
the output folder before the task runs; before Hydra starts, :func:`precheck` composes the same overrides itself
(every combination of a ``-m`` sweep's lists), refuses keys outside the schema (``+key=...`` included), checks
ranges and the env, and turns the first error into one line that names the key, the value and what is allowed.
Errors found later (checkpoints, non-finite numbers) are raised as :class:`~lfcs.errors.UserError` (``ConfigError``
and friends) and printed the same way by :func:`run_guarded`.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from lfcs.config import Config, register_schema, validate
from lfcs.errors import EXIT_USAGE, ConfigError, UserError

HELP_FLAGS = ("-h", "--help", "--hydra-help", "--version")  # Hydra prints and exits: nothing is checked or written
SCRIPTS_DIR = Path(__file__).resolve().parents[2] / "scripts"  # where scripts/train.py's @hydra.main lives
MAX_COMBINATIONS = 64  # beyond this, each value of each swept key is checked with the other keys at their first


def _flags(argv: list[str], conf_dir: Path) -> tuple[argparse.Namespace, Path] | None:
    """Hydra's own flags, checked with Hydra's parser (a bad one is one line), and the config folder they name.

    None where Hydra only prints (``--help``, ``--cfg``, ``--info``, ...: no folder is written) or composes from a
    folder this check does not see (``--config-dir``); the values are then checked where the run starts.
    """
    if any(arg.split("=", 1)[0] in HELP_FLAGS for arg in argv):
        return None
    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()
    parser.error = fail  # one line instead of the usage block
    args = parser.parse_args(argv)
    if args.cfg or args.info or args.shell_completion:
        return None
    if args.config_dir is not None:
        if not Path(args.config_dir).is_dir():
            fail(f"--config-dir={args.config_dir} is not allowed: no such directory")
        return None
    if args.config_path is not None:
        conf_dir = SCRIPTS_DIR / args.config_path  # Hydra: absolute, or relative to scripts/train.py
        if not conf_dir.is_dir():
            fail(f"--config-path={args.config_path} is not allowed: no such directory ({conf_dir})")
    names = sorted(path.stem for path in conf_dir.glob("*.yaml"))
    if (args.config_name or "config") not in names:
        fail(f"--config-name={args.config_name} is not allowed: the configs in {conf_dir} are {', '.join(names)}")
    return args, conf_dir


def _combinations(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The plain override lists of the jobs of a sweep (one list for a plain run).

    Comma lists and ``range()`` are expanded; ``interval()`` and globs (searched by a sweeper) are left to the
    config's defaults. Past MAX_COMBINATIONS jobs, each swept value is checked once instead of every product.
    """
    if not multirun:
        return [overrides]
    parser = OverridesParser.create()
    choices: list[list[str]] = []
    for text in overrides:
        override = parser.parse_override(text)
        if not override.is_sweep_override():
            choices.append([text])
        elif override.is_discrete_sweep() and override.value_type.name != "GLOB_CHOICE_SWEEP":
            key = override.get_key_element()
            choices.append([f"{key}={value}" for value in override.sweep_string_iterator()])
    if math.prod(len(c) for c in choices) <= MAX_COMBINATIONS:
        return [list(combo) for combo in itertools.product(*choices)]
    firsts = [c[0] for c in choices]
    return [firsts[:i] + [value] + firsts[i + 1 :] for i, c in enumerate(choices) for value in c]


def _outside_schema(cfg: DictConfig, schema: DictConfig, prefix: str = "") -> tuple[str, str] | None:
    """(key, allowed keys beside it) for the first key of ``cfg`` that the schema lacks, else None."""
    for key in cfg.keys():
        if key not in schema:
            return prefix + str(key), ", ".join(str(k) for k in schema.keys())
        node = schema._get_node(key)
        if OmegaConf.is_dict(node) and dataclasses.is_dataclass(OmegaConf.get_type(node)):
            found = _outside_schema(cfg[key], node, f"{prefix}{key}.")
            if found:
                return found
    return None


def check_schema_keys(cfg: DictConfig, overrides: list[str]) -> None:
    """Refuse keys that ``+key=``/``++key=`` added: struct mode lets those through. (``~key`` on a schema key is
    refused by OmegaConf itself.)"""
    found = _outside_schema(cfg, OmegaConf.structured(Config))
    if found is None:
        return
    key, allowed = found
    values = dict(o.lstrip("+~").split("=", 1) for o in overrides if "=" in o)
    raise ConfigError(f"{key}={values.get(key, '?')} is not allowed: no such key; allowed keys here: {allowed}")


def _allowed_keys(conf_dir: Path, key: str) -> str:
    parent = key.rsplit(".", 1)[0] if "." in key else ""
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        base = compose("config")
    node = OmegaConf.select(base, parent) if parent else base
    keys = [k for k in node.keys()] if node is not None and OmegaConf.is_dict(node) else []
    return ", ".join(keys)


def explain(exc: BaseException, overrides: list[str], conf_dir: Path) -> str:
    """One line for a Hydra/OmegaConf composition error."""
    text = str(exc)
    if "override_grammar" in text or "mismatched input" in text:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parser = OverridesParser.create()
        for override in overrides:
            try:
                parser.parse_override(override)
            except Exception as bad:  # the grammar's own error types
                return f"{override} is not allowed: cannot parse it ({str(bad).splitlines()[0]})"
    cause = exc.__cause__ or exc.__context__
    cause_text = str(cause) if cause is not None else ""
    values = dict(o.lstrip("+~").split("=", 1) for o in overrides if "=" in o)
    match = re.search(r"full_key: ([\w.\[\]]+)", cause_text) or re.search(r"override '?([\w.]+)", text)
    group = re.search(r"Could not find '([\w/]+)/([\w.-]+)'", text)
    if group:
        options = re.findall(r"^\t(\S+)$", text, flags=re.M)
        return f"{group.group(1)}={group.group(2)!r} is not allowed: available options are {', '.join(options)}"
    if match:
        key = match.group(1)
        value = values.get(key, "?")
        first = cause_text.splitlines()[0] if cause_text else text.splitlines()[0]
        if "not in struct" in cause_text or "Could not override" in text:
            return f"{key}={value} is not allowed: no such key; allowed keys here: {_allowed_keys(conf_dir, key)}"
        first = re.sub(r" of type '\w+'", "", first)
        return f"{key}={value} is not allowed: {first}"
    return " ".join(text.split())


def precheck(argv: list[str], conf_dir: Path) -> None:
    """Check every job's configuration before Hydra creates any folder; the first error exits with one line.

    A single run's directory is checked too where it is known before Hydra starts (``run_dir``, ``resume=DIR``,
    ``hydra.run.dir``): a run that it holds and the configuration must agree, its checkpoints must load.
    """
    flags = _flags(argv, conf_dir)
    if flags is None:
        return
    args, conf_dir = flags
    config_name = args.config_name or "config"
    overrides = [arg for arg in args.overrides if not arg.lstrip("+~").startswith("hydra")]
    hydra_values = dict(arg.split("=", 1) for arg in args.overrides if arg.startswith("hydra.") and "=" in arg)
    multirun = args.multirun or any(o.startswith("hparams_search=") for o in overrides)
    try:
        jobs = _combinations(overrides, multirun)
    except Exception as exc:  # the override grammar's own error types
        fail(explain(exc, overrides, conf_dir))
    probed: set[str] = set()
    for job in jobs:
        try:
            cfg = checked_config(job, conf_dir, config_name, probed)
            _check_directories(cfg, job, hydra_values, multirun)
        except UserError as exc:
            fail(" ".join(str(exc).split()), exc.exit_code)


def checked_config(
    overrides: list[str], conf_dir: Path, config_name: str = "config", probed: set[str] | None = None
) -> DictConfig:
    """The composed configuration of ``overrides``, with every check of a run's start (schema, values, env);
    ConfigError (one line) on the first bad value. ``probed``: the env configs already built and checked."""
    from lfcs.running.agents import probe_env

    register_schema()  # the config's defaults name it; scripts other than train.py may not have stored it yet
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            cfg = compose(config_name, overrides=overrides)
    except Exception as exc:  # Hydra raises several exception types here; all are user input errors
        raise ConfigError(explain(exc, overrides, conf_dir)) from exc
    check_schema_keys(cfg, overrides)
    validate(cfg)
    env = OmegaConf.to_yaml(cfg.env)
    if probed is None or env not in probed:
        probe_env(cfg)
        if probed is not None:
            probed.add(env)
    return cfg


def refuse_bad_overrides(parser: argparse.ArgumentParser, overrides: list[str], conf_dir: Path) -> None:
    """A script's configuration overrides, checked as scripts/train.py checks them: a bad one is the parser's error."""
    try:
        checked_config(overrides, conf_dir)
    except UserError as exc:
        parser.error(f"overrides: {exc}")


def _check_directories(cfg: DictConfig, job: list[str], hydra_values: dict[str, str], multirun: bool) -> None:
    """The folders a job would write into, before Hydra creates any (ConfigError / CheckpointError)."""
    from lfcs.running.rundir import check_usable_dir, inspect_run_dir, resume_target

    known = {key: value for key, value in hydra_values.items() if "${" not in value}  # interpolations: Hydra's
    for key in ("hydra.run.dir", "hydra.sweep.dir"):
        if key in known:
            check_usable_dir(key, Path(known[key]))
    target = resume_target(cfg)
    hydra_dir = None if multirun or "hydra.run.dir" not in known else Path(known["hydra.run.dir"])
    if cfg.run_dir is not None or isinstance(target, Path) or hydra_dir is not None:
        inspect_run_dir(cfg, job, hydra_dir)
    elif target and not multirun:  # a sweep's jobs resume in their own folders, known only to the launcher
        raise ConfigError(
            f"resume={cfg.resume!r} is not allowed without the run's directory: a new output folder holds no run; "
            "give resume=DIR, or resume=true with run_dir=DIR or hydra.run.dir=DIR"
        )


def fail(message: str, code: int = EXIT_USAGE) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def run_guarded(fn: Callable[[], float]) -> float:
    try:
        return fn()
    except UserError as exc:
        fail(" ".join(str(exc).split()), exc.exit_code)
    raise AssertionError("unreachable")
