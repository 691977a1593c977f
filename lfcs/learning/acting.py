"""Acting: pi_ref plays one episode in each agent's own environment, into an EpisodeBuffer."""

from __future__ import annotations

from dataclasses import fields

import gymnasium as gym
import numpy as np
import torch

from lfcs.backends.base import Backend
from lfcs.network.encoding import ObservationEncoder
from lfcs.network.policy import SpikingPolicy
from lfcs.rules.episodes import EpisodeBuffer, advantages_from_rewards


def play_episode(
    env_list: list[gym.Env],
    policy: SpikingPolicy,
    generators: list[torch.Generator],
    horizon: int,
    gamma: float,
    reset_seeds: list[int | None],
    backend: Backend,
    greedy: bool = False,
    encoder: ObservationEncoder | None = None,
    learn_encoder: bool = False,
    record_hidden: bool = False,
) -> tuple[EpisodeBuffer, dict[str, torch.Tensor]]:
    """One episode of B agents in lockstep; agent b acts in ``env_list[b]`` with its own ``generators[b]``.

    ``reset_seeds[b]`` seeds that env's reset (only the first episode of a run; later resets continue its RNG).
    ``backend``: what steps the network (``lfcs.backends.select``).
    ``greedy``: play the most probable action (first on ties) instead of a sample (evaluation only); the action
    uniforms are still drawn, so the generators advance exactly as when sampling.
    ``encoder``: ``env.encoding`` (``lfcs.network.encoding``), applied to every observation before it enters the
    buffer and the network (None: the observation as it is, a 1-D Box). ``learn_encoder``: merge this episode's
    observations into its statistics at the end (training; evaluation leaves them frozen).
    ``record_hidden``: also return ``stats["hidden"]``, ``{name: (T, B) array}`` of the env's hidden variables
    (``env.unwrapped.hidden_state()`` / ``hidden_names``) at each step, for the decoding probe; {} for an env that
    declares none. Reading them changes nothing in the env.
    Returns the buffer and per-agent statistics: episodic return, length, firing rate.
    """
    num_agents, dtype, device = policy.num_agents, policy.w_out.dtype, policy.w_out.device
    num_actions, num_neurons = policy.w_out.shape[1], policy.num_neurons
    # Each agent's randomness for this episode, drawn from its own generator in one call each.
    draws = [torch.rand(horizon, generator=g, dtype=torch.float64) for g in generators]
    action_uniforms = torch.stack(draws, dim=1).to(dtype)  # (T, B)
    spike_uniforms = None
    if policy.params.spike_noise_width is not None:
        spikes = [torch.rand(horizon, num_neurons, generator=g, dtype=torch.float64) for g in generators]
        spike_uniforms = torch.stack(spikes, dim=1).to(dtype)  # (T, B, N), kept for the replay

    first = [env.reset(seed=seed)[0] for env, seed in zip(env_list, reset_seeds)]
    encode = None if encoder is None or encoder.identity else encoder.encode
    raw = np.zeros((horizon, num_agents, encoder.in_size)) if learn_encoder and encoder.normalizes else None
    hidden = _hidden_recorder(env_list, horizon) if record_hidden else None
    if encode is not None:
        first = [_encoded(encoder, raw, 0, b, ob) for b, ob in enumerate(first)]
    # The loop works on numpy views of the buffer's CPU tensors: no tensor dispatch per agent step.
    obs = torch.zeros((horizon, num_agents, len(first[0])), dtype=dtype)  # (T, B, I)
    actions = torch.zeros((horizon, num_agents), dtype=torch.long)
    ref_probs = torch.zeros((horizon, num_agents, num_actions), dtype=dtype)
    obs_np, actions_np, probs_np = obs.numpy(), actions.numpy(), ref_probs.numpy()
    obs_np[0] = np.stack(first)
    if hidden is not None:
        hidden.record(0, range(num_agents))
    rewards_np = np.zeros((horizon, num_agents))
    lengths = np.full(num_agents, horizon)
    running = np.ones(num_agents, dtype=bool)
    ended_terminal = np.zeros(num_agents, dtype=bool)  # False also where the horizon cut the episode
    spike_count = np.zeros(num_agents)
    io = (obs, spike_uniforms, action_uniforms, ref_probs, actions, spike_count)
    actor = backend.actor(policy, *io)
    live = num_agents
    for t in range(horizon):
        actor.step(t, running)
        if greedy:
            actions_np[t] = probs_np[t].argmax(-1)
        for b in range(num_agents):
            if not running[b]:
                continue
            ob, reward, terminated, truncated, _ = env_list[b].step(int(actions_np[t, b]))
            rewards_np[t, b] = reward
            if terminated or truncated:
                running[b], lengths[b], live = False, t + 1, live - 1
                ended_terminal[b] = terminated
            elif t + 1 < horizon:
                obs_np[t + 1, b] = ob if encode is None else _encoded(encoder, raw, t + 1, b, ob)
        if hidden is not None and t + 1 < horizon:
            hidden.record(t + 1, np.flatnonzero(running))
        if not live:
            break
    if raw is not None:  # the statistics change only between episodes: x_t never depends on another step
        for b in range(num_agents):
            encoder.update(b, raw[: lengths[b], b])

    rewards = torch.as_tensor(rewards_np, dtype=dtype)
    lengths_t = torch.as_tensor(lengths)
    buffer = EpisodeBuffer(
        obs=obs,
        actions=actions,
        ref_probs=ref_probs,
        rewards=rewards,
        advantages=advantages_from_rewards(rewards, gamma),
        lengths=lengths_t,
        spike_uniforms=spike_uniforms,
        terminated=torch.from_numpy(ended_terminal),
    )
    if device.type != "cpu":
        moved = {f.name: getattr(buffer, f.name) for f in fields(buffer)}
        buffer = EpisodeBuffer(**{k: None if x is None else x.to(device) for k, x in moved.items()})
    stats = {
        "episodic_return": rewards.sum(0).to(torch.float64),
        "episode_length": lengths_t.to(torch.float64),
        "firing_rate": torch.from_numpy(spike_count) / (lengths_t.to(torch.float64) * num_neurons),
    }
    if record_hidden:
        stats["hidden"] = {} if hidden is None else hidden.values()
    return buffer, stats


def _encoded(encoder: ObservationEncoder, raw: np.ndarray | None, t: int, b: int, ob) -> np.ndarray:
    """x_t of agent b; keeps u_t in ``raw`` for the end-of-episode update of the statistics."""
    if raw is not None:
        raw[t, b] = encoder.flatten(ob)
    return encoder.encode(b, ob)


class _HiddenRecorder:
    """The env's hidden variables at each step of the episode, (T, B, H), zero past an agent's end."""

    def __init__(self, env_list: list[gym.Env], names: tuple[str, ...], horizon: int):
        self.inner, self.names = [env.unwrapped for env in env_list], names
        self.table = np.zeros((horizon, len(env_list), len(names)))

    def record(self, t: int, agents) -> None:
        for b in agents:
            self.table[t, b] = self.inner[b].hidden_state()

    def values(self) -> dict[str, np.ndarray]:
        return {name: self.table[:, :, i] for i, name in enumerate(self.names)}


def _hidden_recorder(env_list: list[gym.Env], horizon: int) -> _HiddenRecorder | None:
    inner = env_list[0].unwrapped
    if not hasattr(inner, "hidden_state"):
        return None
    return _HiddenRecorder(env_list, tuple(inner.hidden_names), horizon)
