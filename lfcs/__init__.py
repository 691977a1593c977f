"""lfcs: reinforcement learning in recurrent spiking networks with local learning rules (lf-cs on norse).

``from lfcs import train`` loads the runner on first use only, so that importing a leaf module (``lfcs.neurons``)
does not load the training stack (Hydra, gymnasium, TensorBoard).
"""

from __future__ import annotations

__all__ = ["train"]


def __getattr__(name: str):
    if name == "train":
        from lfcs.train import train

        # Importing the submodule lfcs.train bound the *module* to this package's attribute ``train``; bind the
        # function instead, as the eager import used to.
        globals()["train"] = train
        return train
    raise AttributeError(f"module 'lfcs' has no attribute {name!r}")
