"""``learner=bptt``: the same spiking network trained end to end, by backpropagation through time on PPO's objective.

The reference that local rules are measured against. pi_ref acts exactly as for lf-cs (the same buffers). Each agent
plays ``batch_episodes`` episodes; then, for each agent on its own:

1. pi_new (equal to pi_ref) replays them from the reset state without gradients, with the stored inputs and spike
   noise (``lfcs.learning.bptt_unroll``): the values V_t that GAE needs, and pi_new's probabilities (the PassRecord;
   with deterministic spikes they are acting's up to rounding, the spikes themselves equal).
2. ``epochs`` passes over the episodes, ``minibatch`` episodes per gradient step: the unroll with surrogate spike
   derivatives, PPO's loss with GAE(gamma, lambda) (``lfcs.learning.bptt_loss``), the gradient's norm clipped to
   ``max_grad_norm``, one step of the agent's own ``torch.optim.Adam``. Learned: W_out, the value head w_V, and W_in
   (``learn_in``) and W_rec (``learn_rec``, at ``rec_lr``).
3. At the end of every episode pi_ref <- pi_new.

Agents are independent: an agent's update is one iteration of a loop over agents, on fresh contiguous copies of its
own episodes and weights, with its own optimizer, so its numbers cannot depend on which agents share the group (a
batched product may round differently for another batch size, PITFALLS.md). The minibatches of an epoch are a
permutation drawn from a generator seeded with the update and epoch counts: the same for every agent, and it leaves
acting's generators alone. Statistics (metrics columns ``mask_fraction``, ``abs_log_ratio``, ``approx_kl``) are means
over every step of every gradient step of the update: PPO's clip fraction |rho - 1| > eps, |log rho| and
(rho - 1) - log rho; in an episode without an update they are 0 (pi_new is still pi_ref: rho = 1).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from lfcs.learning.bptt_loss import PpoSettings, gae, log_prob_taken, ppo_loss, valid_steps
from lfcs.learning.bptt_unroll import AgentWeights, unroll
from lfcs.network.policy import SpikingPolicy
from lfcs.rules.episodes import EpisodeBuffer
from lfcs.rules.replay import STATS, PassRecord

ADAM_KEYS = ("step", "exp_avg", "exp_avg_sq")


class AgentEpisodes(NamedTuple):
    """One agent's episodes of an update, time-major (L, K, ...), L the longest of them; fresh contiguous tensors."""

    obs: torch.Tensor  # (L, K, I)
    spike_u: torch.Tensor | None  # (L, K, N)
    actions: torch.Tensor  # (L, K)
    logp_ref: torch.Tensor  # (L, K): log q(a_t), 0 at padding
    rewards: torch.Tensor  # (L, K)
    lengths: torch.Tensor  # (K,)
    terminated: torch.Tensor  # (K,) bool

    def select(self, index: torch.Tensor) -> AgentEpisodes:
        """The episodes ``index`` (K',), cut to the longest of them."""
        steps = int(self.lengths[index].max())
        return AgentEpisodes(*(None if x is None else x[:steps].index_select(1, index) for x in self[:5]),
                             self.lengths[index], self.terminated[index])  # fmt: skip


def agent_episodes(buffers: list[EpisodeBuffer], b: int) -> AgentEpisodes:
    """Agent b's episodes from the group's buffers (T, B, ...)."""
    lengths = torch.stack([buf.lengths[b] for buf in buffers])
    steps = int(lengths.max())

    def take(name: str) -> torch.Tensor | None:
        parts = [getattr(buf, name) for buf in buffers]
        return None if parts[0] is None else torch.stack([x[:steps, b] for x in parts], dim=1)

    actions = take("actions")
    logp_ref = log_prob_taken(take("ref_probs"), actions, valid_steps(lengths, steps))
    ends = [torch.ones((), dtype=torch.bool) if buf.terminated is None else buf.terminated[b] for buf in buffers]
    terminated = torch.stack([e.to(lengths.device) for e in ends])
    return AgentEpisodes(take("obs"), take("spike_uniforms"), actions, logp_ref, take("rewards"), lengths, terminated)


class BpttLearner:
    """Owns the value head, one Adam optimizer per agent and the episodes of the update being collected.

    Constructor keywords are the keys of config group ``learner`` that ``lfcs.config.learner_arguments`` gives it.
    """

    def __init__(
        self,
        new_policy: SpikingPolicy,
        ref_policy: SpikingPolicy,
        *,
        batch_episodes: int = 1,
        epochs: int = 4,
        minibatch: int = 1,
        eps: float = 0.2,
        clip: str = "ppo",
        gae_lambda: float = 0.95,
        value_coef: float = 0.5,
        entropy_coef: float = 0.0,
        normalize_advantages: bool = True,
        surrogate_slope: float = 1.0,
        max_grad_norm: float = 0.5,
        lr: float = 1.5e-3,
        critic_lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        adam_eps: float = 1e-5,
        gamma: float = 0.99,
        learn_in: bool = False,
        learn_rec: bool = False,
        rec_lr: float | None = None,
    ):
        if clip not in ("ppo", "none"):
            raise ValueError(f"learner.clip={clip!r}: allowed values with learner.name=bptt are ppo, none")
        if learn_rec and new_policy.w_rec is None:
            raise ValueError("learner.learn_rec=true needs a network with a recurrent matrix")
        if batch_episodes % minibatch:
            raise ValueError(f"learner.minibatch={minibatch}: a divisor of learner.batch_episodes={batch_episodes}")
        self.new_policy, self.ref_policy = new_policy, ref_policy
        self.batch_episodes, self.epochs, self.minibatch = int(batch_episodes), int(epochs), int(minibatch)
        coefs = (float(value_coef), float(entropy_coef))
        self.settings = PpoSettings(float(eps), clip, *coefs, bool(normalize_advantages))
        self.gamma, self.gae_lambda, self.slope = float(gamma), float(gae_lambda), float(surrogate_slope)
        self.max_grad_norm = float(max_grad_norm)
        self.names = [name for name, on in (("w_in", learn_in), ("w_rec", learn_rec), ("w_out", True)) if on]
        self.value_head = torch.zeros_like(new_policy.w_out[:, 0, :])  # (B, N): V = 0 before any learning
        self.leaves: list[dict[str, torch.Tensor]] = []  # per agent: name -> the tensor its optimizer steps
        self.optimizers: list[torch.optim.Adam] = []
        for b in range(new_policy.num_agents):
            leaves = {name: self._master(name)[b].detach().clone().requires_grad_(True) for name in self.names}
            leaves["w_v"] = self.value_head[b].clone().requires_grad_(True)
            groups = [{"params": [leaves[n] for n in ("w_in", "w_out") if n in leaves]},
                      {"params": [leaves["w_v"]], "lr": float(critic_lr)}]  # fmt: skip
            if learn_rec:
                groups.append({"params": [leaves["w_rec"]], "lr": float(lr if rec_lr is None else rec_lr)})
            betas = (float(betas[0]), float(betas[1]))
            self.optimizers.append(torch.optim.Adam(groups, lr=float(lr), betas=betas, eps=float(adam_eps)))
            self.leaves.append(leaves)
        self.pending: list[EpisodeBuffer] = []  # this update's episodes so far, oldest first
        self.updates = 0  # updates done (seeds the minibatch permutations)

    def _master(self, name: str) -> torch.Tensor:
        """The (B, ...) tensor that holds a learned quantity between updates."""
        return self.value_head if name == "w_v" else getattr(self.new_policy, name)

    # -- learning ----------------------------------------------------------------------------------------------
    def learn(self, buffer: EpisodeBuffer) -> tuple[dict[str, torch.Tensor], PassRecord]:
        """Store the episode; once ``batch_episodes`` are stored, update every agent on them.

        Returns per-agent statistics (B,) and pi_new's probabilities (T-1, B, O) on the new episode before the
        update (the replay's record; its mask is all ones: nothing is clipped at rho = 1)."""
        self.pending.append(buffer)
        steps, num_agents = buffer.horizon - 1, buffer.num_agents
        mask = buffer.rewards.new_ones(steps, num_agents)
        if len(self.pending) < self.batch_episodes:  # pi_new has not changed since it was copied into pi_ref
            zeros = torch.zeros(num_agents, dtype=torch.float64)
            return dict.fromkeys(STATS, zeros), PassRecord(buffer.ref_probs[:-1], mask, None)
        sums, probs = zip(*(self._update_agent(b, steps) for b in range(num_agents)))
        self.pending, self.updates = [], self.updates + 1
        table = torch.stack(sums).cpu().to(torch.float64)  # (B, 4): three sums and the step count
        means = table[:, :3] / table[:, 3:]
        return {name: means[:, i] for i, name in enumerate(STATS)}, PassRecord(torch.stack(probs, 1), mask, None)

    def _update_agent(self, b: int, record_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Agent b's update; returns its statistic sums (4,) and its probabilities on the newest episode."""
        episodes, leaves, optimizer = agent_episodes(self.pending, b), self.leaves[b], self.optimizers[b]
        with torch.no_grad():
            for name, leaf in leaves.items():
                leaf.copy_(self._master(name)[b])
        weights = AgentWeights(*(leaves[n] if n in leaves else self._fixed(n, b) for n in AgentWeights._fields))
        params, settings = self.new_policy.params, self.settings
        with torch.no_grad():
            before = unroll(episodes.obs, episodes.spike_u, weights, params, self.slope)
        advantages, returns = gae(
            episodes.rewards, before.values, episodes.lengths, episodes.terminated, self.gamma, self.gae_lambda
        )
        sums = before.values.new_zeros(4)
        for epoch in range(self.epochs):
            for index in self._minibatches(epoch, before.values.device):
                part = episodes.select(index)
                steps = part.obs.shape[0]
                out = unroll(part.obs, part.spike_u, weights, params, self.slope)
                targets = [x[:steps].index_select(1, index) for x in (advantages, returns)]
                loss, stats = ppo_loss(out.logits, out.values, part.actions, part.logp_ref, *targets,
                                       valid_steps(part.lengths, steps), settings)  # fmt: skip
                optimizer.zero_grad()
                loss.backward()
                if math.isfinite(self.max_grad_norm):  # the network and the value head each on its own
                    network = [leaf for name, leaf in leaves.items() if name != "w_v"]
                    torch.nn.utils.clip_grad_norm_(network, self.max_grad_norm)
                    torch.nn.utils.clip_grad_norm_(leaves["w_v"], self.max_grad_norm)
                optimizer.step()
                sums += stats
        with torch.no_grad():
            for name, leaf in leaves.items():
                self._master(name)[b].copy_(leaf)
        probs = before.logits.new_zeros(record_steps, before.logits.shape[-1])
        rows = min(record_steps, before.logits.shape[0])
        probs[:rows] = torch.softmax(before.logits[:rows, -1], dim=-1)
        return sums, probs

    def _fixed(self, name: str, b: int) -> torch.Tensor | None:
        """A weight that is not learned: agent b's copy, or None for an absent W_rec."""
        weight = getattr(self.new_policy, name)
        return None if weight is None else weight[b].clone()

    def _minibatches(self, epoch: int, device: torch.device) -> list[torch.Tensor]:
        count = self.batch_episodes
        if self.minibatch == count:
            return [torch.arange(count, device=device)]
        generator = torch.Generator().manual_seed(self.updates * self.epochs + epoch)
        return [i.to(device) for i in torch.randperm(count, generator=generator).split(self.minibatch)]

    def end_episode(self, episode: int) -> None:
        """pi_ref <- pi_new after every episode (it changes only at an update)."""
        self.ref_policy.load_state_dict(self.new_policy.state_dict())

    # -- state -------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The value head, each agent's Adam state (once it has one) stacked over agents, the update count and the
        episodes of the update being collected."""
        state = {"bptt.updates": torch.tensor(self.updates), "bptt.w_v": self.value_head.cpu()}
        for name in self.leaves[0]:
            per_agent = [opt.state.get(leaves[name]) for opt, leaves in zip(self.optimizers, self.leaves)]
            if per_agent[0]:  # Adam keeps no state before its first step
                for key in ADAM_KEYS:
                    state[f"bptt.adam.{name}.{key}"] = torch.stack([s[key] for s in per_agent]).cpu()
        for i, buffer in enumerate(self.pending):
            for field in EpisodeBuffer.__dataclass_fields__:
                if getattr(buffer, field) is not None:
                    state[f"bptt.pending.{i}.{field}"] = getattr(buffer, field).cpu()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        saved = state["bptt.w_v"]
        if saved.shape != self.value_head.shape:
            raise ValueError(f"bptt.w_v has shape {tuple(saved.shape)}, expected {tuple(self.value_head.shape)}")
        self.value_head.copy_(saved)
        self.updates = int(state["bptt.updates"])
        for name in self.leaves[0]:
            for opt, leaves, b in zip(self.optimizers, self.leaves, range(len(self.leaves))):
                opt.state.pop(leaves[name], None)
                if f"bptt.adam.{name}.step" not in state:
                    continue
                moments = {key: state[f"bptt.adam.{name}.{key}"][b] for key in ADAM_KEYS}
                if moments["exp_avg"].shape != leaves[name].shape:
                    raise ValueError(f"bptt.adam.{name} has shape {tuple(moments['exp_avg'].shape)}, "
                                     f"expected {tuple(leaves[name].shape)}")  # fmt: skip
                device = leaves[name].device
                opt.state[leaves[name]] = {
                    "step": moments["step"].clone(),  # Adam keeps its step count on the CPU
                    "exp_avg": moments["exp_avg"].to(device).clone(),
                    "exp_avg_sq": moments["exp_avg_sq"].to(device).clone(),
                }
        if self.updates and any(f"bptt.adam.{name}.step" not in state for name in self.leaves[0]):
            raise KeyError(f"no Adam state of {self.leaves[0].keys()} after {self.updates} updates")
        self.pending = []
        device = self.value_head.device
        while f"bptt.pending.{len(self.pending)}.obs" in state:
            i = len(self.pending)
            fields = {f: state.get(f"bptt.pending.{i}.{f}") for f in EpisodeBuffer.__dataclass_fields__}
            self.pending.append(EpisodeBuffer(**{k: None if v is None else v.to(device) for k, v in fields.items()}))
        if len(self.pending) >= self.batch_episodes:
            raise ValueError(f"{len(self.pending)} pending episodes, learner.batch_episodes={self.batch_episodes}")
