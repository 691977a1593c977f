"""Backends: the code that computes acting, replay and the critic, behind one interface (``base.Backend``).

``select(backend, device)`` is the one place where a backend is chosen, once per agent group, from the config keys
``backend`` (``auto`` | ``kernels`` | ``torch``) and ``device``: ``auto`` takes the compiled CPU kernels
(``compiled``, numba) on the CPU when numba imports, torch ops (``torch_ops``) elsewhere. Nothing outside this
package imports numba or a kernel module, or asks which backend runs.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # the interface loads the network (norse); the config check above it must stay light
    from lfcs.backends.base import Backend

__all__ = ["BACKENDS", "check", "select"]

BACKENDS = ("auto", "kernels", "torch")


def _compiled_available() -> bool:
    return importlib.util.find_spec("numba") is not None


def check(backend: str, device: torch.device | str) -> str | None:
    """None if ``backend`` can run on ``device``, else what is allowed (for the one-line config error)."""
    if backend not in BACKENDS:
        return f"one of {', '.join(BACKENDS)}"
    if backend == "kernels" and torch.device(device).type != "cpu":
        return "auto or torch with device=cuda (the compiled kernels run on the CPU)"
    if backend == "kernels" and not _compiled_available():
        return "auto or torch (the compiled kernels need numba, which is not installed)"
    return None


def select(backend: str, device: torch.device | str) -> Backend:
    """The backend that runs an agent group's network on ``device``."""
    allowed = check(backend, device)
    if allowed is not None:
        raise ValueError(f"backend={backend!r} is not allowed with device={torch.device(device).type}: {allowed}")
    compiled = backend == "kernels" or (
        backend == "auto" and torch.device(device).type == "cpu" and _compiled_available()
    )
    if compiled:
        from lfcs.backends.compiled import CompiledBackend  # loads numba only when it runs

        return CompiledBackend()
    from lfcs.backends.torch_ops import TorchBackend

    return TorchBackend()
