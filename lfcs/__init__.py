"""lfcs: reinforcement learning in recurrent spiking networks with local learning rules (lf-cs on norse)."""

from lfcs.train import train

__all__ = ["train"]
