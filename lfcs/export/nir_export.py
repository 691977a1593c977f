"""pi_ref as a NIR graph (``nir`` package): exact under NIR's equations integrated by forward Euler with dt = 1.

NIR nodes are continuous-time: ``tau dv/dt = (v_leak - v) + r I``. One forward-Euler step of length dt is
``v_t = v_{t-1} + (dt / tau) ((v_leak - v_{t-1}) + r I_t)``; with dt = 1 and ``tau = 1 / (1 - a)`` that is our
``v_t = a v_{t-1} + (1 - a)(v_leak + r I_t)`` (METHOD.md §2) exactly, up to rounding. The graph::

    input -> input_current (Affine W_in, bias h - V0) -> membrane (LI) -> spike (Threshold) -> readout_trace (LI)
          -> readout (Linear W_out) -> gain (Scale kappa) -> output            (logits; softmax applied outside)
    spike -> self_inhibition (Scale -w_res / (1 - a_m)) -> membrane             (recurrent edge, one step late)
    spike -> synapse (LI, s_hat) -> recurrent (Linear W_rec) -> membrane       (recurrent edge; only with W_rec)

Mapped exactly, not approximated:
- the subtractive self-inhibition ``- w_res z_{t-1}`` is an input current through the recurrent Scale edge, and the
  membrane is a NIR ``LI`` followed by a ``Threshold`` (NIR's ``LIF`` resets v to v_reset, which we never do);
- the episode-start membrane V0: the LI holds ``v - V0`` (v_leak = 0, threshold -V0, the constant input h - V0 in
  the Affine's bias), so it starts at 0, which is also its rest value v_leak: readers that start an LI at 0 (our
  reference interpreter) and readers that start it at rest (norse's LIBoxCell, e.g. under nirtorch) agree. With -V0
  in v_leak instead, the second kind starts the membrane at v = 0, not V0;
- s_hat and the read-out trace r are NIR ``LI`` nodes (v_leak = 0, r = 1).
Conventions an interpreter must follow (also in the graph's metadata): dt = 1 forward Euler; every state is 0 at the
episode start; the edges into ``membrane`` from ``self_inhibition`` and ``recurrent`` close cycles and carry the
previous step's value (0 at t = 0); the graph outputs logits and pi = softmax(output).
Not expressible, refused: stochastic spikes (Bernoulli(sigmoid(v / dv)) has no NIR primitive). Not exported yet,
refused: adaptive neurons (network.neuron=alif) and per-neuron tau_m.
"""

from __future__ import annotations

import json
from pathlib import Path

import nir
import numpy as np
from omegaconf import OmegaConf

from lfcs.export.saved_agent import SavedAgent
from lfcs.network.policy import SpikingPolicy

FORMAT = "lfcs-nir-v1"
TIME_STEP = 1.0
DELAYED_EDGES = (("self_inhibition", "membrane"), ("recurrent", "membrane"))
EVALUATION_ORDER = (
    "input", "input_current", "membrane", "spike", "self_inhibition", "synapse", "recurrent", "readout_trace",
    "readout", "gain", "output",
)  # fmt: skip


class NirExportError(ValueError):
    """A network feature that NIR cannot express exactly; the message names it."""


def _euler_tau(decay: float, size: int) -> np.ndarray:
    """The NIR time constant whose forward-Euler step of length TIME_STEP decays by ``decay``: dt / tau = 1 - a."""
    return np.full(size, TIME_STEP / (1.0 - decay))


def policy_graph(policy: SpikingPolicy, metadata: dict | None = None) -> nir.NIRGraph:
    """The NIR graph of a one-agent policy (B = 1); NirExportError for what NIR cannot express."""
    if policy.num_agents != 1:
        raise ValueError(f"policy_graph needs one agent, got {policy.num_agents}")
    p = policy.params
    if p.spike_noise_width is not None:
        raise NirExportError(
            "stochastic spikes (network.stochastic_spikes=true: z ~ Bernoulli(sigmoid(v / dv))) have no NIR "
            "primitive; only deterministic threshold spikes can be exported"
        )
    if p.adapt_beta is not None or policy.decay_mem is not None:
        raise NirExportError(
            "adaptive neurons (network.neuron=alif) and per-neuron tau_m (network.tau_mem_steps=[min, max]) are not "
            "exported yet; only the paper's lif_box network with one tau_m can be"
        )
    as_np = lambda t: t.detach().cpu().double().numpy().copy()  # noqa: E731
    w_in, w_out = as_np(policy.w_in[0]), as_np(policy.w_out[0])  # (N, I), (O, N)
    (num_actions, n), num_inputs = w_out.shape, w_in.shape[1]
    bias = np.broadcast_to(np.asarray(p.bias if isinstance(p.bias, float) else as_np(p.bias)), (n,)).copy()
    ones, zeros = np.ones(n), np.zeros(n)
    v_start = np.full(n, p.v_episode_start)
    nodes = {
        "input": nir.Input(input_type=np.array([num_inputs])),
        "input_current": nir.Affine(weight=w_in, bias=bias - v_start),  # h - V0: the membrane holds v - V0
        "membrane": nir.LI(tau=_euler_tau(p.decay_mem, n), r=ones, v_leak=zeros.copy()),  # rest = start: 0
        "spike": nir.Threshold(threshold=-v_start),
        "self_inhibition": nir.Scale(scale=np.full(n, -p.self_inhibition / (1.0 - p.decay_mem))),
        "readout_trace": nir.LI(tau=_euler_tau(p.decay_readout, n), r=ones.copy(), v_leak=zeros),
        "readout": nir.Linear(weight=w_out),
        "gain": nir.Scale(scale=np.full(num_actions, p.readout_gain)),
        "output": nir.Output(output_type=np.array([num_actions])),
    }
    edges = [
        ("input", "input_current"),
        ("input_current", "membrane"),
        ("membrane", "spike"),
        ("spike", "self_inhibition"),
        ("self_inhibition", "membrane"),
        ("spike", "readout_trace"),
        ("readout_trace", "readout"),
        ("readout", "gain"),
        ("gain", "output"),
    ]
    if policy.w_rec is not None:
        nodes["synapse"] = nir.LI(tau=_euler_tau(p.decay_syn, n), r=ones.copy(), v_leak=zeros.copy())
        nodes["recurrent"] = nir.Linear(weight=as_np(policy.w_rec[0]))
        edges += [("spike", "synapse"), ("synapse", "recurrent"), ("recurrent", "membrane")]
    present = [name for name in EVALUATION_ORDER if name in nodes]
    conventions = {
        "format": FORMAT,
        "time_step": TIME_STEP,
        "integration": "forward Euler, dt = time_step: v_t = v_{t-1} + (dt / tau) ((v_leak - v_{t-1}) + r I_t); "
        "I_t = sum of the node's incoming edges; Threshold: z_t = 1[v_t > threshold]",
        "initial_state": "every node state is 0 at the episode start (every LI has v_leak = 0: starting at rest "
        "is the same)",
        "delayed_edges": ",".join(f"{a}->{b}" for a, b in DELAYED_EDGES if a in nodes),
        "delayed_edges_rule": "a delayed edge carries its source's output of the previous step (0 at t = 0)",
        "evaluation_order": ",".join(present),
        "output": "logits kappa W_out r_t; the policy is pi_t = softmax(output), applied outside the graph",
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={**conventions, **(metadata or {})})


def _json(value, default: float) -> str:
    """A config value (None, a number or a list) as JSON text, for the graph's metadata."""
    if value is None:
        return json.dumps(default)
    return json.dumps(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value)


def export(saved: SavedAgent, out: Path) -> nir.NIRGraph:
    """Write the agent's pi_ref to ``out`` (NIR's HDF5 format) and return the graph."""
    provenance = {"agent": saved.agent, "episode": saved.episode, "checkpoint_sha256": saved.sha256()}
    env = saved.cfg.get("env", {})
    shift, scale = env.get("obs_shift"), env.get("obs_scale")
    if shift is not None or scale is not None:  # env.obs_shift / env.obs_scale: the graph sees the mapped input
        provenance["input_mapping"] = "the graph's input is (x - obs_shift) / obs_scale of the env's observation x"
        provenance["obs_shift"], provenance["obs_scale"] = _json(shift, 0.0), _json(scale, 1.0)
    graph = policy_graph(saved.ref_policy, provenance)
    out.parent.mkdir(parents=True, exist_ok=True)
    nir.write(str(out), graph)
    return graph
