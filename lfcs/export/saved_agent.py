"""One trained agent read back from a checkpoint: its pi_ref as a one-agent SpikingPolicy, and its config.

A run directory holds ``checkpoints/agents_<a>-<b>.pt`` files, one per group of agents trained in one process
(agents a..b). Agents are named by their global id (the ``b`` of ``seed + b``) everywhere. A model-zoo file
(``lfcs/export/zoo.py``) is a checkpoint of the same format that holds one agent, and is read as any checkpoint file.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from lfcs import checkpoint
from lfcs.checkpoint import CheckpointError
from lfcs.network.encoding import ObservationEncoder
from lfcs.network.neurons import make_neuron_params
from lfcs.network.policy import SpikingPolicy

_FILE_NAME = re.compile(r"agents_(\d+)-(\d+)\.pt")


@dataclass
class SavedAgent:
    path: Path  # the checkpoint file
    agent: int  # global agent id
    episode: int  # episodes trained when the checkpoint was written
    cfg: DictConfig  # the run's resolved configuration, as stored in the checkpoint
    ref_policy: SpikingPolicy  # pi_ref of this agent alone (B = 1), on the CPU
    encoder_state: dict | None = None  # this agent's row of the checkpoint's encoder statistics (env.encoding)

    def encoder(self, space) -> ObservationEncoder:
        """The agent's ``env.encoding`` for an env of ``space``, with the statistics it was saved with."""
        encoder = ObservationEncoder.from_config(self.cfg.env, space, 1)
        encoder.load_state_dict(self.encoder_state or {})
        return encoder

    @property
    def run_dir(self) -> Path:
        return self.path.parent.parent if self.path.parent.name == "checkpoints" else self.path.parent

    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def checkpoint_for_agent(source: Path, agent: int | None) -> Path:
    """The checkpoint file that holds ``agent`` (None: the lowest id) in a run directory, or ``source`` itself."""
    if not source.exists():
        raise CheckpointError(f"no checkpoint or run directory at {source}")
    if source.is_file():
        return source
    ranges = []
    for path in (source / "checkpoints").glob("agents_*.pt"):
        match = _FILE_NAME.fullmatch(path.name)
        if match:
            ranges.append((int(match[1]), int(match[2]), path))
    if not ranges:
        raise CheckpointError(f"{source} holds no checkpoints/agents_<a>-<b>.pt: not an lfcs run directory")
    ranges.sort()
    if agent is None:
        return ranges[0][2]
    for first, last, path in ranges:
        if first <= agent <= last:
            return path
    held = ", ".join(f"{a}-{b}" for a, b, _ in ranges)
    raise CheckpointError(f"--agent {agent} is not in {source}: its checkpoints hold agents {held}")


def policy_from_state(state: dict, index: int) -> tuple[SpikingPolicy, DictConfig]:
    """pi_ref of the ``index``-th agent of a loaded checkpoint, with the network built from its stored config."""
    cfg = OmegaConf.create(state["config"])
    network = OmegaConf.to_container(cfg.network, resolve=True)
    wanted = inspect.signature(make_neuron_params).parameters
    params = make_neuron_params(**{key: network[key] for key in wanted if key in network})
    weights = {name: tensor[index : index + 1].clone() for name, tensor in state["ref_policy"].items()}  # (1, ...)
    try:
        extras = {name: weights[name] for name in ("decay_mem", "w_feedback") if name in weights}
        policy = SpikingPolicy(weights["w_in"], weights.get("w_rec"), weights["w_out"], params, **extras)
    except KeyError as exc:
        raise CheckpointError(f"checkpoint ref_policy lacks {exc.args[0]}") from exc
    return policy, cfg


def load_agent(source: Path, agent: int | None = None) -> SavedAgent:
    """The agent ``agent`` (global id; None = the first one) of a run directory or checkpoint file."""
    path = checkpoint_for_agent(Path(source), agent)
    state = checkpoint.load(path)
    agents = [int(a) for a in state["agents"]]
    if agent is None:
        agent = agents[0]
    if agent not in agents:
        raise CheckpointError(f"--agent {agent} is not in {path}: it holds agents {agents[0]}-{agents[-1]}")
    index = agents.index(agent)
    policy, cfg = policy_from_state(state, index)
    encoder_state = {key: value[index : index + 1] for key, value in state.get("encoder", {}).items()}
    return SavedAgent(path, agent, int(state["episode"]), cfg, policy, encoder_state)
