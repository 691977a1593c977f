"""NIR export: the written graph, read back with nir.read and run by a reference interpreter of NIR's published
primitive equations (written here, no lfcs network code), reproduces pi_ref's probabilities on a Pong-100 episode.
"""

from __future__ import annotations

import importlib.util
import json

import nir
import numpy as np
import pytest
import torch

import envs
from lfcs import backends
from lfcs.environments import make_env, make_env_from_config
from lfcs.export.nir_export import NirExportError, export
from lfcs.export.saved_agent import load_agent
from lfcs.learning.acting import play_episode
from tests.conftest import ROOT
from tests.saved_runs import save_groups


def run_nir(graph: nir.NIRGraph, inputs: np.ndarray) -> np.ndarray:
    """Outputs (T, O) of a NIR graph for inputs (T, I), by NIR's equations (nir/ir/*.py docstrings):

    Affine y = W x + b; Linear y = W x; Scale y = s * x; Threshold z = 1[x > threshold];
    LI  tau dv/dt = (v_leak - v) + r I, integrated by forward Euler with the graph's time step;
    a node's input is the sum of its incoming edges. Conventions from the graph's metadata: states start at 0,
    and each listed delayed edge carries its source's output of the previous step (0 at t = 0).
    """
    meta = graph.metadata
    dt = float(meta["time_step"])
    delayed = {tuple(edge.split("->")) for edge in str(meta["delayed_edges"]).split(",") if edge}
    order = _topological_order(graph, delayed)
    states = {name: np.zeros(node.tau.shape) for name, node in graph.nodes.items() if isinstance(node, nir.LI)}
    previous: dict[str, np.ndarray] = {}
    outputs = []
    for x in inputs:
        current: dict[str, np.ndarray] = {}
        for name in order:
            node = graph.nodes[name]
            if isinstance(node, nir.Input):
                current[name] = np.asarray(x, dtype=np.float64)
                continue
            terms = [
                previous.get(src, 0.0) if (src, dst) in delayed else current[src]
                for src, dst in graph.edges
                if dst == name
            ]
            total = sum(terms[1:], terms[0])
            if isinstance(node, nir.Affine):
                current[name] = node.weight @ total + node.bias
            elif isinstance(node, nir.Linear):
                current[name] = node.weight @ total
            elif isinstance(node, nir.Scale):
                current[name] = node.scale * total
            elif isinstance(node, nir.Threshold):
                current[name] = (total > node.threshold).astype(np.float64)
            elif isinstance(node, nir.LI):
                v = states[name]
                states[name] = v + (dt / node.tau) * ((node.v_leak - v) + node.r * total)
                current[name] = states[name]
            elif isinstance(node, nir.Output):
                current[name] = total
            else:
                raise NotImplementedError(type(node).__name__)
        previous = current
        outputs.append(current["output"])
    return np.stack(outputs)


def _topological_order(graph: nir.NIRGraph, delayed: set) -> list[str]:
    edges = [edge for edge in graph.edges if tuple(edge) not in delayed]
    indegree = {name: 0 for name in graph.nodes}
    for _, dst in edges:
        indegree[dst] += 1
    ready, order = sorted(name for name, d in indegree.items() if d == 0), []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for src, dst in edges:
            if src == name:
                indegree[dst] -= 1
                if indegree[dst] == 0:
                    ready.append(dst)
    assert len(order) == len(graph.nodes), "the graph has a cycle without a delayed edge"
    return order


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("rec_std", [0.0, 0.5])
def test_round_trip_reproduces_pi_ref_on_a_pong_episode(tmp_path, rec_std):
    save_groups(tmp_path, [[0]], f"network.rec_std={rec_std}", episodes=2)
    saved = load_agent(tmp_path)
    out = tmp_path / "policy.nir"
    export(saved, out)
    graph = nir.read(str(out))
    assert ("synapse" in graph.nodes) == (rec_std > 0)

    env = make_env(envs.PONG100_ID)
    buffer, stats = play_episode(
        [env], saved.ref_policy, [torch.Generator().manual_seed(1)], 100, 0.99, [11], backends.select("torch", "cpu")
    )
    assert int(stats["episode_length"][0]) == 100 and float(stats["firing_rate"][0]) > 0.01  # spikes matter
    obs, ref_probs = buffer.obs[:, 0].numpy(), buffer.ref_probs[:, 0].numpy()  # (T, I), (T, O)
    probs = softmax(run_nir(graph, obs))
    assert np.abs(probs - ref_probs).max() < 1e-5
    assert np.abs(ref_probs - ref_probs[0]).max() > 1e-3  # the probabilities move: the test can fail


def test_wrong_time_convention_would_be_caught(tmp_path):
    """The check is sharp: reading tau as an exponential-Euler time constant (a = exp(-dt / tau)) misses."""
    save_groups(tmp_path, [[0]], episodes=1)
    saved = load_agent(tmp_path)
    export(saved, tmp_path / "p.nir")
    graph = nir.read(str(tmp_path / "p.nir"))
    env = make_env(envs.PONG100_ID)
    buffer, _ = play_episode(
        [env], saved.ref_policy, [torch.Generator().manual_seed(1)], 100, 0.99, [11], backends.select("torch", "cpu")
    )
    for node in graph.nodes.values():
        if isinstance(node, nir.LI):
            node.tau = 1.0 / (1.0 - np.exp(-1.0 / node.tau))  # dt / tau' = 1 - exp(-dt / tau)
    probs = softmax(run_nir(graph, buffer.obs[:, 0].numpy()))
    assert np.abs(probs - buffer.ref_probs[:, 0].numpy()).max() > 1e-3


def test_stochastic_spikes_are_refused_with_one_line(tmp_path, capsys):
    save_groups(tmp_path, [[0]], "network.stochastic_spikes=true", episodes=0)
    with pytest.raises(NirExportError, match="stochastic spikes"):
        export(load_agent(tmp_path), tmp_path / "x.nir")
    spec = importlib.util.spec_from_file_location("export_nir", ROOT / "scripts" / "export_nir.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(tmp_path), str(tmp_path / "x.nir")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "stochastic spikes" in err and not (tmp_path / "x.nir").exists()
    assert script.main([str(tmp_path), str(tmp_path / "y.nir"), "--agent", "3"]) == 2
    assert "--agent 3" in capsys.readouterr().err


def test_cartpole_export_says_how_its_input_is_mapped(tmp_path):
    """env.obs_shift / env.obs_scale map the env's observation before W_in: the graph's metadata carries both, and
    they are the mapping training applied."""
    save_groups(tmp_path, [[0]], "env=cartpole", episodes=1)
    saved = load_agent(tmp_path)
    export(saved, tmp_path / "p.nir")
    meta = nir.read(str(tmp_path / "p.nir")).metadata
    shift, scale = np.array(json.loads(meta["obs_shift"])), np.array(json.loads(meta["obs_scale"]))
    assert saved.cfg.env.obs_shift is None and shift.tolist() == 0.0  # env=cartpole divides only
    assert scale.tolist() == list(saved.cfg.env.obs_scale) == [0.5, 0.5, 0.05, 0.5]
    raw = make_env("CartPole-v1")
    obs, _ = raw.reset(seed=3)
    mapped = make_env_from_config(saved.cfg.env)
    assert np.allclose(mapped.reset(seed=3)[0], (obs - shift) / scale, rtol=0, atol=1e-15)
