"""Input encodings: the map from an env observation to the network input x_t, applied before x_t enters W_in.

Every encoding is a function of the current observation alone (and, for ``normalize``, of slow statistics that do
not change within an episode), so nothing outside the spiking network combines observations of different steps.
With o_t the observation after ``env.obs_shift`` / ``env.obs_scale``:

1. Flattening (always): a 1-D ``Box`` passes as it is; a ``Discrete(n, start)`` value k becomes the one-hot
   vector e_{k - start} in {0, 1}^n; a 1-D ``MultiDiscrete(nvec)`` the concatenation of one one-hot vector per
   entry (sum(nvec) inputs). Call the result u_t (D numbers).
2. ``env.encoding`` (g = ``env.encoding_gain``):

   - ``none`` (default): x_t = u_t, bit for bit the input of lfcs before encodings existed.
   - ``normalize``: x_t = g (u_t - mu) / sqrt(var + 1e-8) per dimension, with mu and var the mean and (population)
     variance of every u an agent observed in its *earlier* training episodes, merged at each episode's end (Chan et
     al.'s parallel form of Welford's algorithm, exact in count, not an EMA). Before the first merge mu = 0 and
     var = 1. The statistics stay fixed within an episode, are part of the checkpoint, and are frozen (never
     updated) in evaluation.
   - ``population``: each dimension d is read by P = ``env.population_size`` inputs with Gaussian receptive fields,
     x_{t,(d,k)} = g exp(-(u_{t,d} - c_k)^2 / (2 w^2)), centres c_k = lo + k (hi - lo) / (P - 1), k = 0 .. P-1,
     [lo, hi] = ``env.population_range`` in the units of u (after obs_shift / obs_scale), width w =
     ``env.population_width`` (null: the centre spacing (hi - lo) / (P - 1)). D P inputs, dimension-major.
   - ``normalize_population``: the population code of the normalised value z_t = (u_t - mu) / sqrt(var + 1e-8),
     so [lo, hi] and w are in standard deviations.
"""

from __future__ import annotations

import numpy as np
import torch

ENCODINGS = ("none", "normalize", "population", "normalize_population")
VARIANCE_EPS = 1e-8  # added to the variance before the square root (a dimension that never changed maps to 0)


def flat_size(space) -> int:
    """D, the length of an observation of ``space`` after one-hot flattening; ValueError for other spaces."""
    from gymnasium import spaces

    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        return int(space.shape[0])
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.MultiDiscrete) and space.nvec.ndim == 1:
        return int(space.nvec.sum())
    raise ValueError(f"its observation space is {space}; lfcs needs a 1-D Box, a Discrete or a 1-D MultiDiscrete")


class ObservationEncoder:
    """``env.encoding`` for B agents: :meth:`encode` maps one agent's observation to its network input (float64).

    Per-agent state: the normaliser's count, mean and sum of squared deviations (only the normalising encodings have
    any), changed only by :meth:`update` at the end of a training episode.
    """

    def __init__(
        self,
        space,
        num_agents: int,
        encoding: str = "none",
        gain: float = 1.0,
        population_size: int = 16,
        population_range: tuple[float, float] = (-2.0, 2.0),
        population_width: float | None = None,
    ):
        if encoding not in ENCODINGS:
            raise ValueError(f"env.encoding={encoding!r} is not allowed: one of {', '.join(ENCODINGS)}")
        self.encoding, self.gain = encoding, float(gain)
        self.in_size = flat_size(space)
        self._offsets = None  # one-hot: first input of each discrete entry, and its start value
        from gymnasium import spaces

        if isinstance(space, spaces.Discrete):
            self._offsets, self._starts = np.zeros(1, dtype=np.int64), np.array([int(space.start)])
        elif isinstance(space, spaces.MultiDiscrete):
            self._offsets = np.concatenate([[0], np.cumsum(space.nvec)[:-1]]).astype(np.int64)
            self._starts = np.asarray(getattr(space, "start", np.zeros_like(space.nvec)), dtype=np.int64).ravel()
        self.normalizes = encoding in ("normalize", "normalize_population")
        self.population = encoding in ("population", "normalize_population")
        self.identity = encoding == "none" and self._offsets is None  # a Box seen as it is
        lo, hi = (float(v) for v in population_range)
        size = int(population_size)
        self.centres = lo + np.arange(size) * (hi - lo) / (size - 1) if size > 1 else np.array([lo])
        spacing = (hi - lo) / (size - 1) if size > 1 else hi - lo
        self.width = float(spacing if population_width is None else population_width)
        self.out_size = self.in_size * (size if self.population else 1)
        self.count = np.zeros(num_agents, dtype=np.int64)  # observations merged so far, per agent
        self.mean = np.zeros((num_agents, self.in_size))  # mu
        self.m2 = np.zeros((num_agents, self.in_size))  # sum of squared deviations from mu

    @classmethod
    def from_config(cls, env_cfg, space, num_agents: int) -> ObservationEncoder:
        """The encoder of config group ``env`` (a stored config without the encoding keys: ``none``)."""
        width = env_cfg.get("population_width")
        return cls(
            space,
            num_agents,
            encoding=env_cfg.get("encoding", "none"),
            gain=env_cfg.get("encoding_gain", 1.0),
            population_size=env_cfg.get("population_size", 16),
            population_range=tuple(env_cfg.get("population_range", (-2.0, 2.0))),
            population_width=None if width is None else float(width),
        )

    def flatten(self, obs) -> np.ndarray:
        """u_t: the observation as float64 (D,), discrete entries one-hot."""
        if self._offsets is None:
            return np.asarray(obs, dtype=np.float64)
        out = np.zeros(self.in_size)
        out[self._offsets + np.asarray(obs, dtype=np.int64).ravel() - self._starts] = 1.0
        return out

    def variance(self, agent: int) -> np.ndarray:
        """var of ``agent``'s earlier observations (1 before any)."""
        if self.count[agent] == 0:
            return np.ones(self.in_size)
        return self.m2[agent] / self.count[agent]

    def encode(self, agent: int, obs) -> np.ndarray:
        """x_t of ``agent`` for ``obs`` (float64, ``out_size``); reads the statistics, never changes them."""
        u = self.flatten(obs)
        if self.normalizes:
            u = (u - self.mean[agent]) / np.sqrt(self.variance(agent) + VARIANCE_EPS)
        if self.population:
            u = np.exp(-((u[:, None] - self.centres[None, :]) ** 2) / (2.0 * self.width**2)).ravel()  # (D * P,)
        return u if self.encoding == "none" else self.gain * u

    def update(self, agent: int, observations: np.ndarray) -> None:
        """Merge one episode's flattened observations u (L, D) into ``agent``'s statistics (Chan et al. 1979)."""
        if not self.normalizes or len(observations) == 0:
            return
        batch = np.asarray(observations, dtype=np.float64)
        n_b, mean_b = len(batch), batch.mean(axis=0)
        m2_b = ((batch - mean_b) ** 2).sum(axis=0)
        n_a = int(self.count[agent])
        total = n_a + n_b
        delta = mean_b - self.mean[agent]
        self.mean[agent] = self.mean[agent] + delta * (n_b / total)
        self.m2[agent] = self.m2[agent] + m2_b + delta**2 * (n_a * n_b / total)
        self.count[agent] = total

    # -- checkpoints: plain tensors, agent axis first ---------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        if not self.normalizes:
            return {}
        return {"count": torch.from_numpy(self.count.copy()), "mean": torch.from_numpy(self.mean.copy()),
                "m2": torch.from_numpy(self.m2.copy())}  # fmt: skip

    def load_state_dict(self, state: dict[str, torch.Tensor], agents: slice | None = None) -> None:
        """Statistics from :meth:`state_dict`; ``agents`` picks rows of a larger group (a saved agent)."""
        if not self.normalizes:
            return
        rows = agents or slice(None)
        count, mean, m2 = (state[k][rows].numpy().copy() for k in ("count", "mean", "m2"))
        if mean.shape != self.mean.shape or count.shape != self.count.shape:
            raise ValueError(f"normaliser statistics of shape {tuple(mean.shape)}, expected {self.mean.shape}")
        self.count, self.mean, self.m2 = count.astype(np.int64), mean, m2
