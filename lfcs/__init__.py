"""lfcs: reinforcement learning in recurrent spiking networks with local learning rules (lf-cs on norse).

``from lfcs import train`` loads the runner (``lfcs.running.training``) on first use only, so that importing a leaf
module (``lfcs.network.neurons``) does not load the training stack (Hydra, gymnasium). The runner module is not named
``lfcs.train``: importing a submodule binds it to the package attribute of its name, which would then shadow the
``train`` function for every later ``from lfcs import train``.
"""

from __future__ import annotations

__all__ = ["train"]


def __getattr__(name: str):
    if name == "train":
        from lfcs.running.training import train

        globals()["train"] = train  # later lookups skip this function
        return train
    raise AttributeError(f"module 'lfcs' has no attribute {name!r}")
