"""The exported NIR file runs, unmodified, in a NIR reader this project did not write, and reproduces pi_ref.

The reader is nirtorch 2.x's ``nir_to_torch``: it wires the graph into a torch.fx module, sums each node's incoming
edges, and closes a cycle by feeding the cycle-closing edge its source's output of the previous call (0 at the first
call), which is the graph's delayed-edge convention. One call is one network step. nirtorch asks for a map from NIR
node types to torch modules; ``node_map`` below is that map and the only lfcs-written code the graph runs through:
- LI: norse's ``LIBoxCell`` (forward Euler, ``v += dt / tau ((v_leak - v) + I)``) with dt = the graph's time step
  (norse's own default, 0.001, would be wrong); it starts at rest, v = v_leak;
- Threshold: norse's ``heaviside(x - threshold)``; Scale: ``scale * x``;
- Affine: a ``torch.nn.Linear`` holding the node's weight and bias. nirtorch 2.6's default Affine map writes the bias
  to ``module.weight.bias`` and leaves ``module.bias`` at its random initialisation (fixed after 2.6, NIRTorch#55).
Linear, Input and Output use nirtorch's default map.
"""

from __future__ import annotations

import copy

import nir
import nirtorch
import numpy as np
import pytest
import torch
from norse.torch import LIBoxCell, LIBoxParameters
from norse.torch.functional.heaviside import heaviside

import envs
from lfcs import backends
from lfcs.environments import make_env
from lfcs.export.nir_export import export
from lfcs.export.saved_agent import load_agent
from lfcs.learning.acting import play_episode
from tests.conftest import ROOT
from tests.saved_runs import save_groups

TOLERANCE = 1e-5


class _Threshold(torch.nn.Module):
    def __init__(self, threshold: np.ndarray):
        super().__init__()
        self.register_buffer("threshold", torch.from_numpy(np.asarray(threshold)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return heaviside(x - self.threshold)


class _Scale(torch.nn.Module):
    def __init__(self, scale: np.ndarray):
        super().__init__()
        self.register_buffer("scale", torch.from_numpy(np.asarray(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x


def _affine(node: nir.Affine) -> torch.nn.Linear:
    module = torch.nn.Linear(node.weight.shape[1], node.weight.shape[0], dtype=torch.float64)
    module.weight.data = torch.from_numpy(np.asarray(node.weight))
    module.bias.data = torch.from_numpy(np.asarray(node.bias))
    return module


def _li(node: nir.LI, time_step: float) -> LIBoxCell:
    if not np.all(node.r == 1):
        raise ValueError("norse's LIBoxCell has no input resistance r; this map needs r = 1")
    inverse_tau = torch.from_numpy(1.0 / np.asarray(node.tau))
    return LIBoxCell(LIBoxParameters(tau_mem_inv=inverse_tau, v_leak=torch.from_numpy(node.v_leak)), dt=time_step)


def node_map(time_step: float) -> dict:
    """NIR node type -> torch module, for ``nirtorch.nir_to_torch``."""
    return {
        nir.LI: lambda node: _li(node, time_step),
        nir.Threshold: lambda node: _Threshold(node.threshold),
        nir.Scale: lambda node: _Scale(node.scale),
        nir.Affine: _affine,
    }


def run_reader(graph: nir.NIRGraph, inputs: np.ndarray) -> np.ndarray:
    """Logits (T, O) of ``graph`` run by nirtorch, one call per step, state carried between calls."""
    module = nirtorch.nir_to_torch(graph, node_map(float(graph.metadata["time_step"])), dtype=torch.float64)
    state, outputs = None, []
    with torch.no_grad():
        for x in inputs:
            logits, state = module(torch.from_numpy(x), state)
            outputs.append(logits.numpy().copy())
    return np.stack(outputs)


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.fixture(scope="module", params=["trained zoo agent, no W_rec", "random agent with W_rec"])
def exported(request, tmp_path_factory):
    """An N = 500 Pong-100 agent saved through lfcs, its exported file, and one 100-step episode of its pi_ref."""
    tmp = tmp_path_factory.mktemp("reader")
    if "zoo" in request.param:
        saved = load_agent(ROOT / "zoo" / "lfcs_seed2.pt")  # 2,500 training episodes
    else:
        save_groups(tmp, [[0]], "network.num_neurons=500", "network.rec_std=0.5", episodes=1)
        saved = load_agent(tmp)
    export(saved, tmp / "policy.nir")
    buffer, stats = play_episode([make_env(envs.PONG100_ID)], saved.ref_policy, [torch.Generator().manual_seed(1)],
                                 100, 0.99, [11], backends.select("torch", "cpu"))  # fmt: skip
    assert saved.ref_policy.num_neurons == 500 and int(stats["episode_length"][0]) == 100
    assert float(stats["firing_rate"][0]) > 0.01  # spikes drive the read-out
    return {
        "path": tmp / "policy.nir",
        "has_rec": saved.ref_policy.w_rec is not None,
        "obs": buffer.obs[:, 0].numpy(),
        "ref_probs": buffer.ref_probs[:, 0].numpy(),
    }


def test_nirtorch_runs_the_exported_file_and_reproduces_pi_ref(exported):
    graph = nir.read(str(exported["path"]))
    assert ("recurrent" in graph.nodes) == exported["has_rec"]
    probs = softmax(run_reader(graph, exported["obs"]))
    ref = exported["ref_probs"]
    assert np.abs(probs - ref).max() < TOLERANCE
    assert np.abs(ref - ref[0]).max() > 1e-3  # the probabilities move over the episode


def test_the_comparison_is_sharp(exported):
    """Caught: read-out weights 0.1 % off, and the membrane's offset -V0 moved from the Affine's bias into v_leak
    (an equivalent graph for a reader that starts each LI at 0; this one starts an LI at rest, v = v_leak)."""
    graph = nir.read(str(exported["path"]))
    perturbed = copy.deepcopy(graph)
    perturbed.nodes["readout"].weight = perturbed.nodes["readout"].weight * (1 + 1e-3)
    moved = copy.deepcopy(graph)
    v_start = -moved.nodes["spike"].threshold
    moved.nodes["input_current"].bias = moved.nodes["input_current"].bias + v_start
    moved.nodes["membrane"].v_leak = -v_start
    for variant, least in ((perturbed, TOLERANCE), (moved, 1e-3)):
        assert np.abs(softmax(run_reader(variant, exported["obs"])) - exported["ref_probs"]).max() > least
