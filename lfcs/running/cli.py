"""Command-line plumbing of ``scripts/train.py``: one clear line for every bad input, never a traceback.

Hydra reports composition errors (wrong type, unknown key, unknown group option) over several lines and creates
the output folder before the task runs; before Hydra starts, :func:`precheck` composes the same overrides itself
(every combination of a ``-m`` sweep's lists), refuses keys outside the schema (``+key=...`` included), checks
ranges and the env, and turns the first error into one line that names the key, the value and what is allowed.
Errors found later (checkpoints, non-finite numbers) are raised as :class:`~lfcs.errors.UserError` (``ConfigError``
and friends) and printed the same way by :func:`run_guarded`.
"""

from __future__ import annotations

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

from lfcs.config import Config, validate
from lfcs.errors import EXIT_USAGE, ConfigError, UserError

MULTIRUN_FLAGS = ("-m", "--multirun")
MAX_COMBINATIONS = 64  # beyond this, each value of each swept key is checked with the other keys at their first


def _user_overrides(argv: list[str]) -> list[str] | None:
    """The overrides a run would apply, or None when Hydra must see the arguments itself."""
    if any(arg.startswith("-") and arg not in MULTIRUN_FLAGS for arg in argv):
        return None  # --cfg, --help, --config-name, ...: nothing is written, Hydra reports
    return [arg for arg in argv if not arg.startswith("-") and not arg.lstrip("+~").startswith("hydra")]


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
    fail(f"{key}={values.get(key, '?')} is not allowed: no such key; allowed keys here: {allowed}")


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
    """Check every job's configuration before Hydra creates any folder; the first error exits with one line."""
    from lfcs.running.agents import probe_env

    overrides = _user_overrides(argv)
    if overrides is None:
        return
    multirun = any(arg in MULTIRUN_FLAGS for arg in argv) or any(o.startswith("hparams_search=") for o in overrides)
    try:
        jobs = _combinations(overrides, multirun)
    except Exception as exc:  # the override grammar's own error types
        fail(explain(exc, overrides, conf_dir))
    probed: set[str] = set()
    for job in jobs:
        try:
            with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
                cfg = compose("config", overrides=job)
        except Exception as exc:  # Hydra raises several exception types here; all are user input errors
            fail(explain(exc, job, conf_dir))
        check_schema_keys(cfg, job)
        try:
            validate(cfg)
            env = OmegaConf.to_yaml(cfg.env)
            if env not in probed:
                probe_env(cfg)
                probed.add(env)
        except ConfigError as exc:
            fail(" ".join(str(exc).split()))


def fail(message: str, code: int = EXIT_USAGE) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def run_guarded(fn: Callable[[], float]) -> float:
    try:
        return fn()
    except UserError as exc:
        fail(" ".join(str(exc).split()), exc.exit_code)
    raise AssertionError("unreachable")
