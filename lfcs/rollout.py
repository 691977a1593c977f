"""Acting: pi_ref plays one episode in each agent's own environment, into an EpisodeBuffer."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import torch

import envs  # noqa: F401  (registers lfcs environments)
from lfcs.buffer import EpisodeBuffer, advantages_from_rewards
from lfcs.neurons import sample_actions
from lfcs.policy import SpikingPolicy


def make_env(env_id: str, max_episode_steps: int | None = None, kwargs: dict | None = None) -> gym.Env:
    """The gymnasium env of config group ``env``; ale-py ids are registered on demand."""
    if env_id.startswith("ALE/"):
        import ale_py

        gym.register_envs(ale_py)
    extra = {} if max_episode_steps is None else {"max_episode_steps": int(max_episode_steps)}
    return gym.make(env_id, **extra, **dict(kwargs or {}))


def episode_horizon(env: gym.Env) -> int:
    """T, the most steps an episode can last (the buffer's time axis)."""
    if env.spec is None or env.spec.max_episode_steps is None:
        raise ValueError("env.max_episode_steps=None is not allowed: the env has no step limit of its own; set one")
    return int(env.spec.max_episode_steps)


def env_state(env: gym.Env) -> bytes:
    """What of an env affects its future episodes, at an episode boundary.

    An env may expose ``get_state() -> bytes`` (Pong100 clones the emulator with its RNG); otherwise the state
    of its ``np_random``, which is all that a gymnasium reset draws from in the standard envs.
    """
    inner = env.unwrapped
    if hasattr(inner, "get_state"):
        return inner.get_state()
    return json.dumps(inner.np_random.bit_generator.state).encode()


def set_env_state(env: gym.Env, state: bytes) -> None:
    inner = env.unwrapped
    if hasattr(inner, "set_state"):
        inner.set_state(state)
    else:
        inner.np_random.bit_generator.state = json.loads(state.decode())


def play_episode(
    env_list: list[gym.Env],
    policy: SpikingPolicy,
    generators: list[torch.Generator],
    horizon: int,
    gamma: float,
    reset_seeds: list[int | None],
    record_readout: bool,
) -> tuple[EpisodeBuffer, dict[str, torch.Tensor]]:
    """One episode of B agents in lockstep; agent b acts in ``env_list[b]`` with its own ``generators[b]``.

    ``reset_seeds[b]`` seeds that env's reset (only the first episode of a run; later resets continue its RNG).
    Returns the buffer and per-agent statistics: episodic return, length, firing rate.
    """
    num_agents, dtype, device = policy.num_agents, policy.w_out.dtype, policy.w_out.device
    stochastic = policy.params.spike_noise_width is not None
    # Each agent's randomness for this episode, drawn from its own generator in one call each.
    draws = [torch.rand(horizon, generator=g, dtype=torch.float64) for g in generators]
    action_uniforms = torch.stack(draws, dim=1).to(dtype=dtype, device=device)  # (T, B)
    spike_uniforms = None
    if stochastic:
        spikes = [torch.rand(horizon, policy.num_neurons, generator=g, dtype=torch.float64) for g in generators]
        spike_uniforms = torch.stack(spikes, dim=1).to(dtype=dtype, device=device)  # (T, B, N)

    first = [env.reset(seed=seed)[0] for env, seed in zip(env_list, reset_seeds)]
    obs_np = np.zeros((horizon, num_agents, first[0].shape[0]), dtype=np.float64)  # (T, B, I)
    obs_np[0] = np.stack(first)
    rewards_np = np.zeros((horizon, num_agents))
    lengths = np.full(num_agents, horizon)
    running = np.ones(num_agents, dtype=bool)
    obs_all = torch.zeros((horizon, num_agents, obs_np.shape[2]), dtype=dtype, device=device)
    actions = torch.zeros((horizon, num_agents), dtype=torch.long, device=device)
    ref_probs = torch.zeros((horizon, num_agents, policy.w_out.shape[1]), dtype=dtype, device=device)
    readout = torch.zeros((horizon, num_agents, policy.num_neurons), dtype=dtype, device=device)
    spike_count = torch.zeros(num_agents, dtype=dtype, device=device)

    state = policy.initial_state()
    for t in range(horizon):
        x = torch.from_numpy(obs_np[t]).to(dtype=dtype, device=device)
        obs_all[t] = x
        probs, _, state = policy.step(x, state, None if spike_uniforms is None else spike_uniforms[t])
        action = sample_actions(probs, action_uniforms[t])
        actions[t], ref_probs[t], readout[t] = action, probs, state.r
        spike_count += state.z.sum(dim=1) * torch.as_tensor(running, device=device)
        for b, a in enumerate(action.tolist()):
            if not running[b]:
                continue
            ob, reward, terminated, truncated, _ = env_list[b].step(a)
            rewards_np[t, b] = reward
            if terminated or truncated:
                running[b], lengths[b] = False, t + 1
            elif t + 1 < horizon:
                obs_np[t + 1, b] = ob
        if not running.any():
            break

    rewards = torch.as_tensor(rewards_np, dtype=dtype, device=device)
    lengths_t = torch.as_tensor(lengths, device=device)
    steps = torch.arange(horizon, device=device).unsqueeze(1)
    buffer = EpisodeBuffer(
        obs=obs_all,
        actions=actions,
        ref_probs=ref_probs,
        rewards=rewards,
        advantages=advantages_from_rewards(rewards, gamma),
        episode_starts=(steps == 0).expand(horizon, num_agents),
        lengths=lengths_t,
        readout=None if stochastic else readout,
    )
    stats = {
        "episodic_return": rewards.sum(0),
        "episode_length": lengths_t.to(dtype),
        "firing_rate": spike_count / (lengths_t.to(dtype) * policy.num_neurons),
    }
    return buffer, stats
