"""The dependency picture: leaf modules load no training stack; user-facing errors are one family in one place."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

# Not tensorboard: norse's own __init__ imports torch.utils.tensorboard, so every `import norse...` loads it.
HEAVY = ("lfcs.running.training", "lfcs.running.agents", "lfcs.running.logger", "hydra", "gymnasium")


def loaded_after(statement: str, names=HEAVY) -> list[str]:
    """Which of ``names`` a fresh interpreter has in sys.modules after running ``statement``."""
    code = f"import sys\n{statement}\nprint(' '.join(n for n in {names!r} if n in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_a_leaf_module_does_not_import_the_training_stack():
    assert loaded_after("import lfcs.network.neurons, lfcs.errors") == []


def test_the_cli_catches_user_errors_without_importing_the_runner():
    assert (
        loaded_after(
            "import lfcs.running.cli",
            ("lfcs.running.training", "lfcs.running.agents", "lfcs.learning.learner", "gymnasium"),
        )
        == []
    )


def test_from_lfcs_import_train_is_still_the_train_function():
    assert loaded_after("from lfcs import train\nassert callable(train) and train.__name__ == 'train'", ()) == []


def test_train_stays_the_function_after_the_runner_module_is_imported():
    """A test module that imports the runner first (``from lfcs.running.training import ...``) must not turn
    ``from lfcs import train`` into a module for the test modules collected after it."""
    code = "import lfcs.running.training\nfrom lfcs import train\nassert callable(train) and train.__name__ == 'train'"
    assert loaded_after(code, ()) == []


def test_user_errors_are_one_family_with_their_exit_codes():
    from lfcs import checkpoint, config, errors
    from lfcs.running import agents

    assert config.ConfigError is errors.ConfigError
    assert checkpoint.CheckpointError is errors.CheckpointError
    assert agents.NonFiniteError is errors.NonFiniteError
    for cls in (errors.ConfigError, errors.CheckpointError, errors.NonFiniteError):
        assert issubclass(cls, errors.UserError)
    assert errors.ConfigError.exit_code == errors.CheckpointError.exit_code == errors.EXIT_USAGE == 2
    assert errors.NonFiniteError.exit_code == errors.EXIT_NON_FINITE == 3


# -- the architecture (issue 19): one backend seam, folders by role, imports running downwards ---------------------
LFCS = ROOT / "lfcs"
# Each folder (or top-level module) with its layer: a module may import only from lower layers, or from its own folder
# without a cycle. ``lfcs/__init__.py`` is the entry point: its lazy ``from lfcs.running.training import train`` is the
# one import allowed to run upwards.
LAYERS = {
    "errors": 0,
    "checkpoint": 1,
    "environments": 1,
    "network": 2,
    "rules": 3,
    "backends": 4,
    "schema": 5,
    "config": 6,
    "learning": 7,
    "analysis": 8,
    "export": 9,
    "running": 10,
}
BACKEND_ONLY = ("numba", "lfcs.backends.kernels", "lfcs.backends.critic_kernels", "lfcs.backends.compiled",
                "lfcs.backends.torch_ops")  # fmt: skip


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(LFCS.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path, modules: dict | None = None) -> set[str]:
    """Every module an ``import`` statement in the file names (at any depth: function-level imports count); for
    ``from pkg import sub`` where ``pkg.sub`` is one of ``modules``, the submodule and not the package."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            subs = {f"{node.module}.{alias.name}" for alias in node.names}
            found = subs & set(modules or ())
            names.update(found)
            if len(found) < len(subs):
                names.add(node.module)
    return names


def _room(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def test_every_lfcs_module_sits_in_a_layer_and_imports_only_downwards():
    modules = _modules()
    edges = {}
    for name, path in modules.items():
        if name == "lfcs":
            continue
        room = _room(name)
        assert room in LAYERS, f"{name} is in no layer of LAYERS: place it by who uses it"
        targets = {m for m in _imports(path, modules) if m in modules and m != "lfcs"}
        edges[name] = {t for t in targets if _room(t) == room}
        for target in targets - edges[name]:
            assert LAYERS[_room(target)] < LAYERS[room], f"{name} imports {target}: upwards ({_room(target)} >= {room})"
    # within a folder: no cycle
    state = {}

    def visit(node, trail):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", f"import cycle: {' -> '.join([*trail, node])}"
        state[node] = "open"
        for nxt in edges.get(node, ()):
            visit(nxt, [*trail, node])
        state[node] = "done"

    for node in edges:
        visit(node, [])


def test_only_the_backends_folder_touches_numba_or_a_backend_implementation():
    for name, path in _modules().items():
        if _room(name) == "backends":
            continue
        bad = sorted(m for m in _imports(path, _modules()) if m.startswith(BACKEND_ONLY))
        assert not bad, f"{name} imports {bad}: only lfcs.backends may"
        assert "use_kernels" not in path.read_text(), f"{name} asks which backend runs"


def test_the_package_shows_its_architecture():
    top = sorted(p.name for p in LFCS.glob("*.py"))
    folders = sorted(p.name for p in LFCS.iterdir() if (p / "__init__.py").exists())
    assert len(top) <= 8, top
    assert len(folders) >= 4, folders


def test_no_python_file_of_the_repository_is_over_300_lines():
    for folder in ("lfcs", "scripts", "tests", "envs"):
        for path in (ROOT / folder).rglob("*.py"):
            assert len(path.read_text().splitlines()) <= 300, f"{path.relative_to(ROOT)} is over 300 lines"
