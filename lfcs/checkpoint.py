"""Checkpoints: plain tensors and primitives only, written atomically, read with ``weights_only=True``.

Loading never executes code from the file (no pickle of objects): a crafted file is refused with an error.
"""

from __future__ import annotations

import io
import os
import pickle
import signal
import zipfile
from pathlib import Path
from typing import Any

import torch

from lfcs.errors import CheckpointError  # also importable from here, as before

FORMAT = "lfcs-checkpoint-v1"
# Fault injection for the crash tests: SIGKILL this process at the Nth checkpoint write, after the temporary file
# is complete and before the rename (the worst moment). Unset in normal use.
KILL_BEFORE_RENAME_ENV = "LFCS_FAULT_KILL_BEFORE_RENAME"
_writes = 0


def encode(obj: dict[str, Any]) -> bytes:
    """The bytes of a checkpoint file (what :func:`save_atomic` writes): a worker process hands these to its
    parent, which alone writes into the run directory (lfcs.running.workers)."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **obj}, buffer)
    return buffer.getvalue()


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    write_atomic(encode(obj), path)


def write_atomic(data: bytes, path: Path) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename: the old file stays until the new is whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    _maybe_inject_kill()
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _maybe_inject_kill() -> None:
    global _writes
    _writes += 1
    if os.environ.get(KILL_BEFORE_RENAME_ENV) == str(_writes):
        os.kill(os.getpid(), signal.SIGKILL)


def load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is damaged
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated (not a complete torch archive)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"refused to load {path}: it holds objects other than tensors and plain data (loading them could run code)"
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated ({type(exc).__name__})") from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an lfcs checkpoint (expected format {FORMAT})")
    return obj


def checkpoint_files(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "checkpoints").glob("agents_*.pt"))
