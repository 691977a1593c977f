"""The spiking policy network: weights with an agent axis B, and the acting step.

pi_ref and pi_new are two instances of :class:`SpikingPolicy`. Weights are buffers (the learning rule is local,
no autograd). Shapes: ``w_in (B, N, I)``, ``w_rec (B, N, N)`` or None, ``w_out (B, O, N)``; and, drawn per agent
where the config asks for them, ``decay_mem (B, N)`` (per-neuron a_m, ``network.tau_mem_steps=[lo, hi]``) and
``w_feedback (B, O, N)`` (the fixed random matrix that carries the learning signal, ``learner.feedback=random``).
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from lfcs.network.neurons import (
    DT,
    NeuronParams,
    NeuronState,
    initial_state,
    is_range,
    make_neuron_params,
    network_step,
    policy_probs,
    with_decay_mem,
)

FEEDBACKS = ("symmetric", "random")
FEEDBACK_STD = 1.0  # learner.feedback=random: B ~ N(0, 1), the scale of the default W_out (network.out_std = 1)


class SpikingPolicy(nn.Module):
    def __init__(
        self,
        w_in: torch.Tensor,
        w_rec: torch.Tensor | None,
        w_out: torch.Tensor,
        params: NeuronParams,
        *,
        decay_mem: torch.Tensor | None = None,
        w_feedback: torch.Tensor | None = None,
    ):
        super().__init__()
        if params.decay_mem is None and decay_mem is None:
            raise ValueError("network.tau_mem_steps is a range: the policy needs its per-neuron decay_mem (B, N)")
        self.params = params
        self.register_buffer("w_in", w_in)
        self.register_buffer("w_out", w_out)
        # A zero, fixed W_rec is skipped in the dynamics (None), not multiplied through.
        self.register_buffer("w_rec", None if w_rec is None else page_aligned(w_rec))
        self.register_buffer("decay_mem", decay_mem)  # None: every neuron has params.decay_mem
        self.register_buffer("w_feedback", w_feedback)  # None: the learning signal comes back through W_out^T

    @property
    def step_params(self) -> NeuronParams:
        """The constants of a network step, with this policy's per-neuron decays where it has them."""
        return self.params if self.decay_mem is None else with_decay_mem(self.params, self.decay_mem)

    @property
    def feedback(self) -> torch.Tensor:
        """The matrix whose transpose carries the learning signal to the hidden neurons: W_out, or a fixed B."""
        return self.w_out if self.w_feedback is None else self.w_feedback

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
        v_pre, state = network_step(x, state, self.w_in, self.w_rec, self.step_params, spike_uniforms)
        return policy_probs(self.w_out, state.r, self.params.readout_gain), v_pre, state

    def clone(self) -> SpikingPolicy:
        return copy.deepcopy(self)


def build_policy(
    generators: list[torch.Generator],
    obs_dim: int,
    num_actions: int,
    *,
    num_neurons: int,
    tau_mem_steps: float | list[float],
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
    neuron: str = "lif_box",
    tau_adapt_steps: float = 100.0,
    adapt_beta: float = 0.4,
    adapt_fraction: float = 0.5,
    feedback: str = "symmetric",
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
) -> SpikingPolicy:
    """Draw one network per agent, agent b from ``generators[b]`` alone (so agents are independent).

    Keyword arguments are the keys of config group ``network`` (and ``learner.feedback``). Weights are drawn on the
    CPU in float64 and then cast and moved, so a seed gives the same network on every device. Each agent draws, in
    this order: W_in, W_out, W_rec (rec_std > 0), its membrane time constants (a [min, max] ``tau_mem_steps``:
    log-uniform, one per neuron) and its feedback matrix (``feedback="random"``); what the config does not ask for
    draws nothing, so the default network is the same as before these options existed.
    """
    if feedback not in FEEDBACKS:
        raise ValueError(f"learner.feedback={feedback!r}: allowed values are {', '.join(FEEDBACKS)}")
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
        neuron=neuron,
        num_neurons=num_neurons,
        tau_adapt_steps=tau_adapt_steps,
        adapt_beta=adapt_beta,
        adapt_fraction=adapt_fraction,
    )
    w_in, w_rec, w_out, decay_mem, w_feedback = [], [], [], [], []
    for gen in generators:
        w_in.append(input_std * torch.randn(num_neurons, obs_dim, generator=gen, dtype=torch.float64))
        w_out.append(out_std * torch.randn(num_actions, num_neurons, generator=gen, dtype=torch.float64))
        if rec_std > 0:
            rec = rec_std * torch.randn(num_neurons, num_neurons, generator=gen, dtype=torch.float64)
            w_rec.append(rec.fill_diagonal_(0.0))  # no self-connections
        if is_range(tau_mem_steps):
            decay_mem.append(_draw_decays(gen, num_neurons, *tau_mem_steps))
        if feedback == "random":
            w_feedback.append(FEEDBACK_STD * torch.randn(num_actions, num_neurons, generator=gen, dtype=torch.float64))

    def stack(ws: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(ws).to(dtype=dtype, device=device)

    recurrent = rec_std > 0 or learn_rec
    if recurrent and not w_rec:
        w_rec = [torch.zeros(num_neurons, num_neurons, dtype=torch.float64) for _ in generators]
    extras = {
        "decay_mem": stack(decay_mem) if decay_mem else None,
        "w_feedback": stack(w_feedback) if w_feedback else None,
    }
    return SpikingPolicy(stack(w_in), stack(w_rec) if recurrent else None, stack(w_out), params, **extras)


PAGE_BYTES = 4096


def page_aligned(tensor: torch.Tensor) -> torch.Tensor:
    """tensor's values in a new CPU tensor whose data starts on a 4 KiB page (another device's: tensor itself).

    The compiled sweep over a learned W_rec streams W_rec, its trace and Adam's two moments row by row. Where one of
    these arrays started a few dozen bytes past another within a page, its loads waited on the other's stores (4K
    aliasing: the CPU matches loads to pending stores by the address's low 12 bits), by where the allocator had put
    them: up to 3x slower. W_rec and its moments start on a page; the kernels place the traces at W_rec's offset
    (``lfcs.backends.floor.trace_views``). The values, and so every result, are those of tensor.
    """
    if tensor.device.type != "cpu":
        return tensor
    item = tensor.element_size()
    room = torch.empty(tensor.numel() + PAGE_BYTES // item, dtype=tensor.dtype)
    start = (-room.data_ptr() % PAGE_BYTES) // item
    aligned = room[start : start + tensor.numel()].view(tensor.shape)
    aligned.copy_(tensor)
    return aligned


def _draw_decays(gen: torch.Generator, num_neurons: int, low: float, high: float) -> torch.Tensor:
    """a_m = exp(-1 / tau) per neuron, tau log-uniform in [low, high] steps: (N,) from the agent's generator."""
    u = torch.rand(num_neurons, generator=gen, dtype=torch.float64)
    tau = torch.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    return torch.exp(-DT / tau)
