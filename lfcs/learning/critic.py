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

With ``learner.off_policy=vtrace`` the critic also learns from the older stored episodes: one Adam step per older
episode and learning phase towards its V-trace targets (``lfcs.learning.offpolicy``), on the mean over the episode's
steps of (v_t - V_t) r_t. Those steps work one agent at a time (``values``, ``ascend_``), so that an agent's numbers
do not depend on the agents beside it.
"""

from __future__ import annotations

import torch

from lfcs.backends.base import Backend
from lfcs.network.policy import SpikingPolicy
from lfcs.rules.episodes import EpisodeBuffer
from lfcs.rules.maths import AdamState, adam_ascent_


class TdCritic:
    """w_V (B, N) and its own Adam state, one row per agent."""

    def __init__(self, like: torch.Tensor, lr: float, betas: tuple[float, float], adam_eps: float, backend: Backend):
        self.w_v = torch.zeros_like(like)  # (B, N): V = 0 before any learning
        self.adam = AdamState.zeros_like(self.w_v)
        self.lr, self.betas, self.adam_eps, self.backend = lr, betas, adam_eps, backend

    def deltas(self, buf: EpisodeBuffer, ref_policy: SpikingPolicy, gamma: float) -> torch.Tensor:
        """delta_t (T, B) over the episode, learning w_V as it goes; 0 past each agent's end."""
        readout = self.backend.readout_traces(ref_policy, buf)  # pi_ref's r_t, replayed with acting's spike noise
        terminated = buf.terminated  # None in the buffer: every end is terminal
        if terminated is None:
            terminated = torch.ones(buf.num_agents, dtype=torch.bool, device=buf.lengths.device)
        settings = (self.lr, *self.betas, self.adam_eps)
        return self.backend.td_deltas(readout, buf, terminated, gamma, self.w_v, self.adam, settings)

    def values(self, readout: torch.Tensor) -> torch.Tensor:
        """V_t = w_V . r_t (T, B) from read-out traces (T, B, N), each agent on its own contiguous rows."""
        rows = [(readout[:, b].contiguous() * self.w_v[b]).sum(-1) for b in range(self.w_v.shape[0])]
        return torch.stack(rows, dim=1)

    def ascend_(self, grad: torch.Tensor) -> None:
        """One Adam ascent step of w_V on grad (B, N) for every agent, in place, each agent as a group of one."""
        for b in range(self.w_v.shape[0]):
            one = slice(b, b + 1)
            state = AdamState(self.adam.exp_avg[one], self.adam.exp_avg_sq[one], self.adam.step[one])
            active = torch.ones(1, dtype=torch.bool, device=self.w_v.device)
            adam_ascent_(self.w_v[one], grad[one], state, active, self.lr, self.betas, self.adam_eps)

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
