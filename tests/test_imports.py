"""The dependency picture: leaf modules load no training stack; user-facing errors are one family in one place."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

# Not tensorboard: norse's own __init__ imports torch.utils.tensorboard, so every `import norse...` loads it.
HEAVY = ("lfcs.training", "lfcs.agents", "lfcs.logger", "hydra", "gymnasium")


def loaded_after(statement: str, names=HEAVY) -> list[str]:
    """Which of ``names`` a fresh interpreter has in sys.modules after running ``statement``."""
    code = f"import sys\n{statement}\nprint(' '.join(n for n in {names!r} if n in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_a_leaf_module_does_not_import_the_training_stack():
    assert loaded_after("import lfcs.neurons, lfcs.errors") == []


def test_the_cli_catches_user_errors_without_importing_the_runner():
    assert loaded_after("import lfcs.cli", ("lfcs.training", "lfcs.agents", "lfcs.learner", "gymnasium")) == []


def test_from_lfcs_import_train_is_still_the_train_function():
    assert loaded_after("from lfcs import train\nassert callable(train) and train.__name__ == 'train'", ()) == []


def test_train_stays_the_function_after_the_runner_module_is_imported():
    """A test module that imports the runner first (``from lfcs.training import ...``) must not turn
    ``from lfcs import train`` into a module for the test modules collected after it."""
    code = "import lfcs.training\nfrom lfcs import train\nassert callable(train) and train.__name__ == 'train'"
    assert loaded_after(code, ()) == []


def test_user_errors_are_one_family_with_their_exit_codes():
    from lfcs import agents, checkpoint, config, errors

    assert config.ConfigError is errors.ConfigError
    assert checkpoint.CheckpointError is errors.CheckpointError
    assert agents.NonFiniteError is errors.NonFiniteError
    for cls in (errors.ConfigError, errors.CheckpointError, errors.NonFiniteError):
        assert issubclass(cls, errors.UserError)
    assert errors.ConfigError.exit_code == errors.CheckpointError.exit_code == errors.EXIT_USAGE == 2
    assert errors.NonFiniteError.exit_code == errors.EXIT_NON_FINITE == 3
