"""The errors a user sees: one line (``error: ...``) and an exit code, never a traceback.

One family in one place, importing nothing, so that the CLI can catch them without loading the runner. The old
import paths (``lfcs.config.ConfigError``, ``lfcs.checkpoint.CheckpointError``, ``lfcs.running.agents.NonFiniteError``)
re-export these classes.
"""

from __future__ import annotations

EXIT_USAGE = 2  # bad input: configuration, run directory, checkpoint
EXIT_NON_FINITE = 3  # a NaN or inf in the run's numbers


class UserError(Exception):
    """An error whose message is one line for the user; ``exit_code`` is the process's exit status."""

    exit_code = EXIT_USAGE


class ConfigError(UserError, ValueError):
    """A configuration value that is not allowed; the message names the key, the value and what is allowed."""


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that is missing, unreadable, not ours, or does not fit the run."""


class NonFiniteError(UserError, FloatingPointError):
    """A NaN or inf in the run's numbers; the message names the quantity, the agent and the episode."""

    exit_code = EXIT_NON_FINITE


class ResultsError(UserError, ValueError):
    """Finished runs that cannot be summarised as asked: none found, seeds short of the budget, an unknown label."""


USER_ERRORS: dict[str, type[UserError]] = {cls.__name__: cls for cls in (ConfigError, CheckpointError, NonFiniteError)}
