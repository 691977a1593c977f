"""Command-line plumbing of ``scripts/train.py``: one clear line for every bad input, never a traceback.

Hydra reports composition errors (wrong type, unknown key, unknown group option) over several lines; before
Hydra starts, :func:`precheck` composes the same overrides itself and turns the first error into one line that
names the key, the value and what is allowed. Errors found later (ranges, env, checkpoints) are raised as
:class:`~lfcs.errors.UserError` (``ConfigError`` and friends) and printed the same way by :func:`run_guarded`.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lfcs.errors import EXIT_USAGE, UserError


def _user_overrides(argv: list[str]) -> list[str] | None:
    """The overrides a plain run would apply, or None when Hydra must see the arguments itself."""
    if any(arg.startswith("-") for arg in argv):
        return None  # --multirun, --cfg, --help, ...: Hydra reports per job
    return [arg for arg in argv if not arg.lstrip("+~").startswith("hydra")]


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
    overrides = _user_overrides(argv)
    if overrides is None:
        return
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            compose("config", overrides=overrides)
    except Exception as exc:  # Hydra raises several exception types here; all are user input errors
        fail(explain(exc, overrides, conf_dir))


def prepare_sweep_storage(argv: list[str], conf_dir: Path) -> None:
    """Create the folder of an Optuna sqlite storage before Hydra starts the sweeper (it opens the database
    before the launcher creates the sweep directory)."""
    if not any(arg.startswith("hparams_search=") for arg in argv):
        return
    overrides = [arg for arg in argv if not arg.startswith("-")]
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    storage = OmegaConf.select(cfg, "hydra.sweeper.storage", default=None)
    if isinstance(storage, str) and storage.startswith("sqlite:///"):
        Path(storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def fail(message: str, code: int = EXIT_USAGE) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def run_guarded(fn: Callable[[], float]) -> float:
    try:
        return fn()
    except UserError as exc:
        fail(" ".join(str(exc).split()), exc.exit_code)
    raise AssertionError("unreachable")
