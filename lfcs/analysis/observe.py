"""Observability of the spiking network on chosen episodes: hidden states, figures, histograms, probes.

CPU acting runs in compiled kernels that keep no per-step hidden state. On an episode where images or probes are
due, :func:`record_hidden` replays the stored inputs through the torch network (``SpikingPolicy.step``, with the
spike uniforms acting drew), which gives the same spikes, pre-reset membranes and read-out traces. Everything here
is pure: it reads the policies and the buffer and changes no weight, state or random generator, so a run with
observation on trains exactly as one with it off.

The result is one dict per agent, ``{key of logger.EXTRA_TAGS: value}`` (PNG bytes for images, 1-D arrays for
histograms, floats for scalars): small enough to travel with the agent's metrics row to the logging process.
"""

from __future__ import annotations

import dataclasses
import io
from typing import NamedTuple

import numpy as np
import torch

from lfcs.analysis.probes import decoding_r2, intrinsic_dimension, linear_cka
from lfcs.network.policy import SpikingPolicy
from lfcs.rules.episodes import EpisodeBuffer
from lfcs.rules.maths import smooth

MEMBRANE_NEURONS = 5  # neurons whose membrane traces are drawn: the first ones (neurons are exchangeable)
FIGURE_SIZE_IN = (6.0, 2.6)
FIGURE_DPI = 80  # 480 x 208 pixels, a PNG of some 10-30 kB
MARGINS = {"left": 0.11, "right": 0.98, "bottom": 0.2, "top": 0.88}  # fixed: a layout engine doubles the drawing


class Hidden(NamedTuple):
    """A policy's hidden states over an episode, time-major (T, B, N)."""

    z: torch.Tensor  # spikes
    v: torch.Tensor  # membrane before the reset (what the threshold saw)
    r: torch.Tensor  # read-out traces (what W_out reads)


def record_hidden(policy: SpikingPolicy, buffer: EpisodeBuffer) -> Hidden:
    """Run ``policy`` over the episode's stored inputs from the episode-start state; (z, v, r), each (T, B, N).

    Steps past an agent's length see the buffer's zero padding: slice them off with ``buffer.lengths``."""
    state = policy.initial_state()
    z, v, r = [], [], []
    with torch.no_grad():
        for t in range(buffer.horizon):
            spike_u = None if buffer.spike_uniforms is None else buffer.spike_uniforms[t]
            _, v_pre, state = policy.step(buffer.obs[t], state, spike_u)
            z.append(state.z)
            v.append(v_pre)
            r.append(state.r)
    return Hidden(torch.stack(z), torch.stack(v), torch.stack(r))


def taken_ratios(new_probs: torch.Tensor, buffer: EpisodeBuffer) -> torch.Tensor:
    """rho(a_t) = smooth(pi_new)[a_t] / smooth(q_t)[a_t] of the learner's first pass: (T-1, B, O) -> (T-1, B)."""
    actions = buffer.actions[:-1].unsqueeze(-1)  # (T-1, B, 1)
    new = smooth(new_probs).gather(-1, actions).squeeze(-1)
    ref = smooth(buffer.ref_probs[:-1]).gather(-1, actions).squeeze(-1)
    return new / ref


def _png(fig) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=FIGURE_DPI)
    return out.getvalue()


def episode_figures(z: np.ndarray, v: np.ndarray, probs: np.ndarray) -> dict[str, bytes]:
    """PNG images of one agent's episode: spike raster z (T, N), membranes v (T, N), action probabilities (T, O)."""
    import matplotlib

    matplotlib.use("Agg")  # no display; a no-op when already selected
    from matplotlib.figure import Figure  # not pyplot: no global figure registry, nothing to close

    def axes():
        fig = Figure(figsize=FIGURE_SIZE_IN)
        fig.subplots_adjust(**MARGINS)
        return fig, fig.add_subplot()

    images = {}
    fig, ax = axes()
    ax.imshow(z.T, aspect="auto", cmap="gray_r", vmin=0, vmax=1, interpolation="nearest", origin="lower")
    ax.set(xlabel="step", ylabel="neuron", title="spikes")
    images["spike_raster"] = _png(fig)
    fig, ax = axes()
    for i in range(min(MEMBRANE_NEURONS, v.shape[1])):
        ax.plot(v[:, i], linewidth=0.8, label=f"neuron {i}")
    ax.axhline(0.0, color="grey", linewidth=0.5, linestyle="--")  # the threshold
    ax.set(xlim=(0, len(v)), xlabel="step", ylabel="v (pre-reset)", title="membranes")
    ax.legend(fontsize="x-small", loc="upper right", ncols=MEMBRANE_NEURONS)
    images["membrane_traces"] = _png(fig)
    fig, ax = axes()
    ax.stackplot(np.arange(len(probs)), probs.T, labels=[f"action {a}" for a in range(probs.shape[1])])
    ax.set(xlim=(0, max(len(probs) - 1, 1)), ylim=(0, 1), xlabel="step", ylabel="pi_ref", title="actions")
    ax.legend(fontsize="x-small", loc="upper right", ncols=probs.shape[1])
    images["action_probs"] = _png(fig)
    return images


class Observer:
    """Decides which episodes are observed, and builds their per-agent payloads (see the module docstring)."""

    def __init__(self, log_images_every: int, probe_every: int):
        self.log_images_every, self.probe_every = log_images_every, probe_every

    @staticmethod
    def _due(every: int, episode: int) -> bool:
        return every > 0 and episode % every == 0

    def due(self, episode: int) -> bool:
        """Whether episode ``episode`` (1-based: the row's ``episode``) is observed at all."""
        return self._due(self.log_images_every, episode) or self._due(self.probe_every, episode)

    def probe_due(self, episode: int) -> bool:
        """Whether episode ``episode`` is probed (then acting records the env's hidden variables)."""
        return self._due(self.probe_every, episode)

    def observe(
        self,
        episode: int,
        buffer: EpisodeBuffer,
        ref: SpikingPolicy,
        new: SpikingPolicy,
        first_pass_probs,
        hidden_variables: dict[str, np.ndarray] | None = None,
    ) -> list[dict]:
        """Per-agent payloads of episode ``episode``: call after the replay, before pi_ref <- pi_new.

        ``ref`` is the pi_ref that acted; ``new`` is pi_new after this episode's replay; ``first_pass_probs``
        (T-1, B, O) are pi_new's probabilities of the first replay pass (the learner's PassRecord);
        ``hidden_variables``: the env's hidden variables over the episode, ``{name: (T, B)}`` (``play_episode``'s
        ``record_hidden``), read out of pi_ref's states by the decoding probe."""
        payloads: list[dict] = [{} for _ in range(buffer.num_agents)]
        hidden = record_hidden(ref, buffer)
        lengths = buffer.lengths.tolist()
        if self._due(self.log_images_every, episode):
            rho = taken_ratios(first_pass_probs, buffer).cpu().numpy()  # (T-1, B)
            z, v = hidden.z.cpu().numpy(), hidden.v.cpu().numpy()
            probs, w_out = buffer.ref_probs.cpu().numpy(), new.w_out.cpu().numpy()
            for b, (payload, length) in enumerate(zip(payloads, lengths)):
                payload.update(episode_figures(z[:length, b], v[:length, b], probs[:length, b]))
                payload["rho"] = rho[: max(length - 1, 1), b].astype(np.float64)  # replayed steps t < len - 1
                payload["neuron_firing_rate"] = z[:length, b].mean(axis=0).astype(np.float64)
                payload["w_out"] = w_out[b].ravel().astype(np.float64)
        if self._due(self.probe_every, episode):
            ref_r = hidden.r.cpu().numpy()
            new_r = record_hidden(new, buffer).r.cpu().numpy()
            for b, (payload, length) in enumerate(zip(payloads, lengths)):
                payload["intrinsic_dim"] = intrinsic_dimension(ref_r[:length, b])
                payload["cka_ref_new"] = linear_cka(ref_r[:length, b], new_r[:length, b])
            if hidden_variables:
                sources = {"r": ref_r, "v": hidden.v.cpu().numpy(), "input": buffer.obs.cpu().numpy()}
                for b, (payload, length) in enumerate(zip(payloads, lengths)):
                    payload["decode"] = decode_probe(sources, hidden_variables, b, length)
        return payloads


def decode_probe(sources: dict[str, np.ndarray], hidden_variables: dict[str, np.ndarray], b: int, length: int):
    """``{<variable>_<source>: R^2}`` of agent b's first ``length`` steps: each hidden variable (T, B) read out of
    each source (T, B, features): r (read-out traces), v (pre-reset membranes), input (x_t alone, the memoryless
    baseline). ``lfcs.analysis.probes.decoding_r2``."""
    names = list(hidden_variables)
    targets = np.stack([hidden_variables[name][:length, b] for name in names], axis=1)  # (L, H)
    out = {}
    for source, values in sources.items():
        for name, r2 in zip(names, decoding_r2(values[:length, b], targets)):
            out[f"{name}_{source}"] = float(r2)
    return out


def decode_episodes(policy, env, encoder, horizon: int, gamma: float, env_seeds, sample_seeds, greedy: bool) -> dict:
    """The decoding probe over several episodes of a one-agent ``policy`` in ``env``, pooled in time order.

    Episode i resets the env with ``env_seeds[i]`` and draws from a generator seeded ``sample_seeds[i]``; the
    encoder's statistics are read, never updated. Returns ``{"r2": {variable: {source: R^2}}, "steps",
    "return_mean", "length_mean"}`` with the sources of :func:`decode_probe`; {} in ``r2`` for an env that declares
    no hidden variables. Pooled episodes fall into the contiguous folds whole, or nearly so."""
    from lfcs.backends import select
    from lfcs.learning.acting import play_episode

    backend = select("auto", "cpu")
    parts: dict[str, list[np.ndarray]] = {"r": [], "v": [], "input": []}
    hidden_parts, returns, lengths = [], [], []
    for env_seed, sample_seed in zip(env_seeds, sample_seeds):
        generator = torch.Generator().manual_seed(sample_seed)
        buffer, stats = play_episode(
            [env], policy, [generator], horizon, gamma, [env_seed], backend, greedy, encoder, record_hidden=True
        )
        length = int(stats["episode_length"][0])
        returns.append(float(stats["episodic_return"][0]))
        lengths.append(length)
        if not stats["hidden"]:
            continue
        played = dataclasses.replace(buffer, obs=buffer.obs[:length], spike_uniforms=None
                                     if buffer.spike_uniforms is None else buffer.spike_uniforms[:length])  # fmt: skip
        states = record_hidden(policy, played)  # the steps played, not the whole horizon
        for source, values in (("r", states.r), ("v", states.v), ("input", buffer.obs)):
            parts[source].append(values[:length, 0].cpu().numpy())
        hidden_parts.append(np.stack([column[:length, 0] for column in stats["hidden"].values()], axis=1))
        names = list(stats["hidden"])
    r2: dict[str, dict[str, float]] = {}
    if hidden_parts:
        targets = np.concatenate(hidden_parts)
        for source, chunks in parts.items():
            for name, value in zip(names, decoding_r2(np.concatenate(chunks), targets)):
                r2.setdefault(name, {})[source] = float(value)
    return {"r2": r2, "steps": int(sum(lengths)), "return_mean": float(np.mean(returns)),
            "length_mean": float(np.mean(lengths))}  # fmt: skip
