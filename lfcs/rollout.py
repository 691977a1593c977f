"""Acting: pi_ref plays one episode in each agent's own environment, into an EpisodeBuffer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields

import gymnasium as gym
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

import envs  # noqa: F401  (registers lfcs environments)
from envs.wrappers import ScaledObservation
from lfcs.buffer import EpisodeBuffer, advantages_from_rewards
from lfcs.errors import ConfigError
from lfcs.neurons import sample_actions
from lfcs.policy import SpikingPolicy


def make_env(
    env_id: str,
    max_episode_steps: int | None = None,
    kwargs: dict | None = None,
    obs_shift: float | Sequence[float] | None = None,
    obs_scale: float | Sequence[float] | None = None,
) -> gym.Env:
    """The gymnasium env of config group ``env``; ale-py ids are registered on demand.

    ``obs_shift`` / ``obs_scale`` (``env.obs_shift`` / ``env.obs_scale``): the agent sees ``(x - shift) / scale``
    (``envs.wrappers.ScaledObservation``, never clipped); each is None, one number for every observation dimension,
    or one number per dimension. A length that does not fit the env's observation is a ConfigError.
    """
    if env_id.startswith("ALE/"):
        import ale_py

        gym.register_envs(ale_py)
    extra = {} if max_episode_steps is None else {"max_episode_steps": int(max_episode_steps)}
    env = gym.make(env_id, **extra, **dict(kwargs or {}))
    if obs_shift is None and obs_scale is None:
        return env
    try:
        shift = _per_dimension("env.obs_shift", obs_shift, 0.0, env_id, env.observation_space, "finite")
        scale = _per_dimension("env.obs_scale", obs_scale, 1.0, env_id, env.observation_space, "finite and > 0")
        return ScaledObservation(env, shift, scale)
    except ValueError:  # ConfigError included
        env.close()
        raise


def make_env_from_config(env_cfg: DictConfig, **extra_kwargs) -> gym.Env:
    """``make_env`` for a config's ``env`` group (a run's, or a checkpoint's that predates the obs_* keys)."""
    kwargs = {**dict(env_cfg.get("kwargs") or {}), **extra_kwargs}
    shift, scale = env_cfg.get("obs_shift"), env_cfg.get("obs_scale")
    return make_env(env_cfg.id, env_cfg.get("max_episode_steps"), kwargs, shift, scale)


def _per_dimension(key: str, value, default: float, env_id: str, space: gym.Space, each: str) -> np.ndarray:
    """``value`` (None, one number, or one number per observation dimension) as a float64 array (obs_dim,)."""
    if value is None:
        return np.full(space.shape or (), default)
    shown = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ConfigError(
            f"{key}={shown!r} is not allowed with env.id={env_id!r}: scaling needs a 1-D Box observation, not {space}"
        )
    size = space.shape[0]
    if isinstance(value, (int, float)):
        return np.full(size, float(value))
    if len(value) != size:
        raise ConfigError(
            f"{key}={shown!r} is not allowed: one number, or a list of {size} (one per observation dimension of "
            f"{env_id}), each {each}"
        )
    return np.array([float(v) for v in value])


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
    use_kernels: bool = False,
    greedy: bool = False,
) -> tuple[EpisodeBuffer, dict[str, torch.Tensor]]:
    """One episode of B agents in lockstep; agent b acts in ``env_list[b]`` with its own ``generators[b]``.

    ``reset_seeds[b]`` seeds that env's reset (only the first episode of a run; later resets continue its RNG).
    ``use_kernels``: step the network with ``lfcs.kernels`` (CPU) instead of torch ops.
    ``greedy``: play the most probable action (first on ties) instead of a sample (evaluation only); the action
    uniforms are still drawn, so the generators advance exactly as when sampling.
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
    # The loop works on numpy views of the buffer's CPU tensors: no tensor dispatch per agent step.
    obs = torch.zeros((horizon, num_agents, len(first[0])), dtype=dtype)  # (T, B, I)
    actions = torch.zeros((horizon, num_agents), dtype=torch.long)
    ref_probs = torch.zeros((horizon, num_agents, num_actions), dtype=dtype)
    obs_np, actions_np, probs_np = obs.numpy(), actions.numpy(), ref_probs.numpy()
    obs_np[0] = np.stack(first)
    rewards_np = np.zeros((horizon, num_agents))
    lengths = np.full(num_agents, horizon)
    running = np.ones(num_agents, dtype=bool)
    ended_terminal = np.zeros(num_agents, dtype=bool)  # False also where the horizon cut the episode
    spike_count = np.zeros(num_agents)
    io = (obs, spike_uniforms, action_uniforms, ref_probs, actions, spike_count)
    actor = _KernelActor(policy, *io) if use_kernels else _TorchActor(policy, device, *io)
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
                obs_np[t + 1, b] = ob
        if not live:
            break

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
    return buffer, stats


class _KernelActor:
    """pi_ref's acting step as one compiled call for all agents (``lfcs.kernels.act_step``).

    Holds numpy views of the episode's buffers: obs (T, B, I), spike uniforms (T, B, N) or None, action uniforms
    (T, B); it writes probabilities (T, B, O), actions (T, B) and adds spikes to spike_count (B,).
    """

    def __init__(self, policy: SpikingPolicy, obs, spike_u, action_u, probs, actions, spike_count):
        from lfcs import kernels

        self.act_step, net = kernels.act_step, policy.kernel_view()
        state = [x.numpy().copy() for x in policy.initial_state()]  # v, z, s_hat, p, r: (B, N)
        noise = np.zeros((*obs.shape[:2], 0), dtype=state[0].dtype) if spike_u is None else spike_u.numpy()
        buffers = (obs.numpy(), noise, action_u.numpy())
        outputs = (probs.numpy(), actions.numpy(), spike_count)
        weights = (net.w_in, net.w_rec, net.has_rec, net.w_out, net.bias)
        scratch = np.empty(policy.num_neurons, dtype=state[0].dtype)
        self.args = (buffers, outputs, weights, (*state, scratch, net.noise_width, net.constants, net.gain))

    def step(self, t: int, running: np.ndarray) -> None:
        buffers, outputs, weights, rest = self.args
        self.act_step(t, *buffers, running, *outputs, *weights, *rest)


class _TorchActor:
    """pi_ref's acting step with torch ops on the policy's device (same buffers as :class:`_KernelActor`)."""

    def __init__(self, policy: SpikingPolicy, device: torch.device, obs, spike_u, action_u, probs, actions, spikes):
        self.policy, self.device, self.state = policy, device, policy.initial_state()
        self.obs, self.spike_u, self.action_u, self.probs, self.actions = obs, spike_u, action_u, probs, actions
        self.spike_count = spikes

    def step(self, t: int, running: np.ndarray) -> None:
        to = self.device
        spike_u = None if self.spike_u is None else self.spike_u[t].to(to)
        new_probs, _, self.state = self.policy.step(self.obs[t].to(to), self.state, spike_u)
        self.probs[t] = new_probs.cpu()
        self.actions[t] = sample_actions(new_probs, self.action_u[t].to(to)).cpu()
        self.spike_count += self.state.z.sum(dim=1).to(torch.float64).cpu().numpy() * running
