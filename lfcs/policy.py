"""The spiking policy network: weights with an agent axis B, and the acting step.

pi_ref and pi_new are two instances of :class:`SpikingPolicy`. Weights are buffers (the learning rule is local,
no autograd). Shapes: ``w_in (B, N, I)``, ``w_rec (B, N, N)`` or None, ``w_out (B, O, N)``.
"""

from __future__ import annotations

import copy
import importlib.util
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from lfcs.neurons import (
    NeuronParams,
    NeuronState,
    initial_state,
    make_neuron_params,
    network_step,
    policy_probs,
)
from lfcs.rule import SMOOTH_FLOOR

BACKENDS = ("auto", "kernels", "torch")


def use_kernels(backend: str, device: torch.device | str) -> bool:
    """Whether to run the compiled CPU kernels (``lfcs.kernels``): ``auto`` uses them on the CPU when numba imports."""
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not allowed: one of {', '.join(BACKENDS)}")
    on_cpu = torch.device(device).type == "cpu"
    available = importlib.util.find_spec("numba") is not None
    if backend == "kernels" and not (on_cpu and available):
        raise ValueError("backend='kernels' is not allowed here: the compiled kernels need device=cpu and numba")
    return backend == "kernels" or (backend == "auto" and on_cpu and available)


class KernelView(NamedTuple):
    """The network as numpy views of the policy's CPU tensors, in the argument forms of ``lfcs.kernels``."""

    w_in: np.ndarray  # (B, N, I)
    w_rec: np.ndarray  # (B, N, N), or (B, 0, 0) when there is no recurrent matrix
    has_rec: bool
    w_out: np.ndarray  # (B, O, N)
    bias: np.ndarray  # (N,) h
    noise_width: float  # dv of the stochastic spikes; 0 = deterministic
    constants: np.ndarray  # (a_m, a_s, a_ro, w_res, V0, smoothing floor)
    gain: float  # kappa


class SpikingPolicy(nn.Module):
    def __init__(self, w_in: torch.Tensor, w_rec: torch.Tensor | None, w_out: torch.Tensor, params: NeuronParams):
        super().__init__()
        self.params = params
        self.register_buffer("w_in", w_in)
        self.register_buffer("w_out", w_out)
        # A zero, fixed W_rec is skipped in the dynamics (None), not multiplied through.
        self.register_buffer("w_rec", w_rec)

    @property
    def num_agents(self) -> int:
        return self.w_out.shape[0]

    @property
    def num_neurons(self) -> int:
        return self.w_out.shape[-1]

    def initial_state(self) -> NeuronState:
        return initial_state(self.num_agents, self.num_neurons, self.params, self.w_out)

    def step(
        self, x: torch.Tensor, state: NeuronState, spike_uniforms: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, NeuronState]:
        """x (B, I) -> (probs (B, O), pre-reset membrane (B, N), new state)."""
        v_pre, state = network_step(x, state, self.w_in, self.w_rec, self.params, spike_uniforms)
        return policy_probs(self.w_out, state.r, self.params.readout_gain), v_pre, state

    def kernel_view(self) -> KernelView:
        p, (num_agents, num_neurons) = self.params, (self.num_agents, self.num_neurons)
        dtype = self.w_out.dtype
        w_rec = self.w_rec if self.w_rec is not None else torch.zeros(num_agents, 0, 0, dtype=dtype)
        bias = torch.as_tensor(p.bias, dtype=dtype).expand(num_neurons).contiguous()
        constants = [p.decay_mem, p.decay_syn, p.decay_readout, p.self_inhibition, p.v_episode_start, SMOOTH_FLOOR]
        return KernelView(
            self.w_in.numpy(),
            w_rec.numpy(),
            self.w_rec is not None,
            self.w_out.numpy(),
            bias.numpy(),
            p.spike_noise_width or 0.0,
            np.array(constants, dtype=np.float64),
            p.readout_gain,
        )

    def clone(self) -> SpikingPolicy:
        return copy.deepcopy(self)


def build_policy(
    generators: list[torch.Generator],
    obs_dim: int,
    num_actions: int,
    *,
    num_neurons: int,
    tau_mem_steps: float,
    tau_syn_steps: float,
    tau_readout_steps: float,
    bias: float,
    self_inhibition: float,
    v_episode_start: float,
    readout_gain: float,
    input_std: float,
    rec_std: float,
    out_std: float,
    learn_rec: bool = False,
    stochastic_spikes: bool = False,
    spike_noise_width: float = 0.05,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> SpikingPolicy:
    """Draw one network per agent, agent b from ``generators[b]`` alone (so agents are independent).

    Keyword arguments are the keys of config group ``network``. Weights are drawn on the CPU in float64 and then
    cast and moved, so a seed gives the same network on every device.
    """
    params = make_neuron_params(
        tau_mem_steps,
        tau_syn_steps,
        tau_readout_steps,
        bias,
        self_inhibition,
        v_episode_start,
        readout_gain,
        stochastic_spikes,
        spike_noise_width,
    )
    w_in, w_rec, w_out = [], [], []
    for gen in generators:
        w_in.append(input_std * torch.randn(num_neurons, obs_dim, generator=gen, dtype=torch.float64))
        w_out.append(out_std * torch.randn(num_actions, num_neurons, generator=gen, dtype=torch.float64))
        if rec_std > 0:
            rec = rec_std * torch.randn(num_neurons, num_neurons, generator=gen, dtype=torch.float64)
            w_rec.append(rec.fill_diagonal_(0.0))  # no self-connections

    def stack(ws: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(ws).to(dtype=dtype, device=device)

    recurrent = rec_std > 0 or learn_rec
    if recurrent and not w_rec:
        w_rec = [torch.zeros(num_neurons, num_neurons, dtype=torch.float64) for _ in generators]
    return SpikingPolicy(stack(w_in), stack(w_rec) if recurrent else None, stack(w_out), params)
