"""The spiking policy network: weights with an agent axis B, and the acting step.

pi_ref and pi_new are two instances of :class:`SpikingPolicy`. Weights are buffers (the learning rule is local,
no autograd). Shapes: ``w_in (B, N, I)``, ``w_rec (B, N, N)`` or None, ``w_out (B, O, N)``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from lfcs.network.neurons import (
    NeuronParams,
    NeuronState,
    initial_state,
    make_neuron_params,
    network_step,
    policy_probs,
)


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
