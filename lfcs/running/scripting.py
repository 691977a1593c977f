"""Plumbing shared by the small command-line scripts: one clear line for every bad input, exit 2, no traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from lfcs.checkpoint import CheckpointError
from lfcs.config import ConfigError

EXIT_USAGE = 2
USER_ERRORS = (CheckpointError, ConfigError, ValueError)


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (no usage block) and exits 2."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def guarded(prog: str, command: Callable[[], None]) -> int:
    """Run ``command``; a user error becomes one line on stderr and exit status 2."""
    try:
        command()
    except USER_ERRORS as exc:
        print(f"{prog}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_USAGE
    return 0
