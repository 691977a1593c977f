"""The value read-out of ``learner.critic=td``: w_V on the read-out trace r (METHOD.md §3's w_V, 0 in the paper).

After pi_ref has played an episode, the critic runs online TD(0) over it, step by step in the order it was played:

    V_t     = w_V . r_t                               (r_t: pi_ref's read-out trace when it acted at step t)
    delta_t = reward_t + gamma V_{t+1} - V_t          (after the last step: V = 0 if the episode ended in a
                                                       terminal state; past a time limit V_L = V_{L-1})
    w_V    <- Adam ascent on delta_t r_t              (semi-gradient of -delta_t^2 / 2; lr = learner.critic_lr)

each delta_t with w_V as it stood at step t, which is what an update during acting would give (r does not depend on
w_V). The deltas are the advantages of the replay: the paper's A_t = delta_{t-1} (A_0 = 0), or delta_t itself with
``terminal_credit``. A time limit is not a terminal state: punishing the last action of a 500-step CartPole episode
for a "fall" that never happened undid what the agents had learned (measured), so the last value stands in for the
next state's value there (partial-episode bootstrapping).
"""

from __future__ import annotations

import torch

from lfcs.buffer import EpisodeBuffer
from lfcs.policy import SpikingPolicy
from lfcs.rule import AdamState, adam_ascent_


class TdCritic:
    """w_V (B, N) and its own Adam state, one row per agent."""

    def __init__(self, like: torch.Tensor, lr: float, betas: tuple[float, float], adam_eps: float, use_kernels: bool):
        self.w_v = torch.zeros_like(like)  # (B, N): V = 0 before any learning
        self.adam = AdamState.zeros_like(self.w_v)
        self.lr, self.betas, self.adam_eps, self.use_kernels = lr, betas, adam_eps, use_kernels

    def deltas(self, buf: EpisodeBuffer, ref_policy: SpikingPolicy, gamma: float) -> torch.Tensor:
        """delta_t (T, B) over the episode, learning w_V as it goes; 0 past each agent's end."""
        readout = self._readout(buf, ref_policy)
        if self.use_kernels:
            from lfcs import critic_kernels

            out = torch.zeros_like(buf.rewards)
            adam = torch.tensor([self.lr, *self.betas, self.adam_eps], dtype=torch.float64)
            critic_kernels.td_critic(
                readout.numpy(),
                buf.rewards.numpy(),
                buf.lengths.numpy(),
                self._terminated(buf).numpy(),
                gamma,
                self.w_v.numpy(),
                self.adam.exp_avg.numpy(),
                self.adam.exp_avg_sq.numpy(),
                self.adam.step.numpy(),
                adam.numpy(),
                out.numpy(),
            )
            return out
        return self._torch_deltas(readout, buf, gamma)

    @staticmethod
    def _terminated(buf: EpisodeBuffer) -> torch.Tensor:
        """(B,) bool: where V = 0 after the last step (None in the buffer: every end is terminal)."""
        if buf.terminated is None:
            return torch.ones(buf.num_agents, dtype=torch.bool, device=buf.lengths.device)
        return buf.terminated

    def _torch_deltas(self, readout: torch.Tensor, buf: EpisodeBuffer, gamma: float) -> torch.Tensor:
        out = torch.zeros_like(buf.rewards)
        lengths = buf.lengths.to(readout.device)
        bootstrap = ~self._terminated(buf).to(readout.device)
        for t in range(buf.horizon):
            active = t < lengths
            if not bool(active.any()):
                break
            value = (self.w_v * readout[t]).sum(-1)
            last = t + 1 == lengths
            value_next = (self.w_v * readout[t + 1]).sum(-1) if t + 1 < buf.horizon else torch.zeros_like(value)
            value_next = torch.where(last, torch.where(bootstrap, value, torch.zeros_like(value)), value_next)
            delta = (buf.rewards[t] + gamma * value_next - value) * active
            out[t] = delta
            adam_ascent_(self.w_v, delta.unsqueeze(1) * readout[t], self.adam, active, self.lr, self.betas,
                         self.adam_eps)  # fmt: skip
        return out

    def _readout(self, buf: EpisodeBuffer, policy: SpikingPolicy) -> torch.Tensor:
        """pi_ref's read-out traces r_t (T, B, N), replayed from its weights and acting's spike noise."""
        horizon, num_agents, n = buf.horizon, buf.num_agents, policy.num_neurons
        if self.use_kernels:
            from lfcs import critic_kernels

            dtype = policy.w_out.dtype
            out = torch.zeros(horizon, num_agents, n, dtype=dtype)
            spike_u = buf.spike_uniforms if buf.spike_uniforms is not None else torch.zeros(horizon, num_agents, 0)
            net = policy.kernel_view()
            critic_kernels.readout_traces(
                buf.obs.numpy(),
                buf.lengths.numpy(),
                spike_u.to(dtype).numpy(),
                net.w_in,
                net.w_rec,
                net.has_rec,
                net.bias,
                net.noise_width,
                net.constants,
                out.numpy(),
            )
            return out
        state, traces = policy.initial_state(), []
        for t in range(horizon):
            spike_u = None if buf.spike_uniforms is None else buf.spike_uniforms[t]
            _, _, state = policy.step(buf.obs[t], state, spike_u)
            traces.append(state.r)
        return torch.stack(traces)

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {"critic.w_v": self.w_v.cpu()}
        state.update({f"critic.{key}": value.cpu() for key, value in self.adam._asdict().items()})
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for key, tensor in (("w_v", self.w_v), *self.adam._asdict().items()):
            saved = state[f"critic.{key}"]
            if saved.shape != tensor.shape:
                raise ValueError(f"critic.{key} has shape {tuple(saved.shape)}, expected {tuple(tensor.shape)}")
            tensor.copy_(saved)
