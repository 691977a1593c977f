"""Plumbing shared by the small command-line scripts: one clear line for every bad input, exit 2, no traceback.

Each flag's value is checked as it is parsed (the ``type=`` functions below: a number's range, a path that must
exist, a file or folder that must be writable), so a bad value stops a script before it reads or writes anything;
checks that need the data (an agent that a checkpoint does not hold, a budget that the runs did not reach) raise a
:class:`~lfcs.errors.UserError` or ``ValueError`` inside :func:`guarded`, still before anything is written. This
module imports no torch: a script that parses first answers a bad flag at once.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from lfcs.errors import EXIT_USAGE, UserError

USER_ERRORS = (UserError, ValueError)
NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|infinity|nan)$", flags=re.I)


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (no usage block) and exits 2.

    A value refused by a ``type=`` function below reads ``--episodes 0 is not allowed: an integer >= 1``. A value
    such as ``-1e-3`` or ``-inf`` is a value, not an option (argparse < 3.14 knows only ``-1`` and ``-.5``).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_NUMBER

    def error(self, message: str):
        refused = re.fullmatch(r"argument ([^:/\s]+)(?:/\S+)?: (.* is not allowed: .*)", message, flags=re.S)
        fail(self.prog, message if refused is None else f"{refused[1]} {refused[2]}")


def fail(prog: str, message: str) -> None:
    print(f"{prog}: error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def guarded(prog: str, command: Callable[[], None]) -> int:
    """Run ``command``; a user error becomes one line on stderr and exit status 2."""
    try:
        command()
    except USER_ERRORS as exc:
        print(f"{prog}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def _refuse(text: str, allowed: str) -> None:
    raise argparse.ArgumentTypeError(f"{text} is not allowed: {allowed}")


def integer(low: int) -> Callable[[str], int]:
    """argparse type: an integer >= low."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            _refuse(text, f"an integer >= {low}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def number(low: float = -math.inf) -> Callable[[str], float]:
    """argparse type: a finite number >= low."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value >= low):
            _refuse(text, "a finite number" + ("" if low == -math.inf else f" >= {low:g}"))
        return value

    parse.__name__ = "number"
    return parse


def existing_dir(text: str) -> Path:
    if not Path(text).is_dir():
        _refuse(text, "an existing directory (no such directory)")
    return Path(text)


def existing_file(text: str) -> Path:
    if not Path(text).is_file():
        _refuse(text, "an existing file (no such file)")
    return Path(text)


def _creatable(path: Path) -> str | None:
    """Why a file or folder cannot be made at ``path`` (None if it can): an ancestor is a file or read-only."""
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"{ancestor} is a file"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"{ancestor} is not writable"
    return None


def output_dir(text: str) -> Path:
    """argparse type: a directory to write into, existing or new."""
    path = Path(text)
    why = "it is a file" if path.exists() and not path.is_dir() else None if path.exists() else _creatable(path)
    if why:
        _refuse(text, f"a directory to write into ({why})")
    return path


def output_file(suffix: str | None = None) -> Callable[[str], Path]:
    """argparse type: a file to write (new or replaced), not a directory; named ``*<suffix>`` if given."""

    def parse(text: str) -> Path:
        path, allowed = Path(text), "a file to write" + (f", named *{suffix}" if suffix else "")
        if suffix and path.suffix.lower() != suffix:
            _refuse(text, allowed)
        why = "it is a directory" if path.is_dir() else _creatable(path)
        if why:
            _refuse(text, f"{allowed} ({why})")
        return path

    parse.__name__ = "file"
    return parse
