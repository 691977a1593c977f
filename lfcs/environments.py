"""The environments of a run: built from config group ``env``, and their state at an episode boundary."""

from __future__ import annotations

import json
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
from omegaconf import DictConfig, OmegaConf

import envs  # noqa: F401  (registers lfcs environments)
from envs.wrappers import ScaledObservation
from lfcs.errors import ConfigError


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

    An env may expose ``get_state() -> bytes`` with ``set_state(bytes)`` (Pong100 clones the emulator with its RNG);
    otherwise the state of its ``np_random``, which is all that a gymnasium reset draws from in the standard envs
    and in POPGym's (whose ``get_state()`` returns the hidden Markov state and which have no ``set_state``).
    """
    inner = env.unwrapped
    if _saves_itself(inner):
        return inner.get_state()
    return json.dumps(inner.np_random.bit_generator.state).encode()


def set_env_state(env: gym.Env, state: bytes) -> None:
    inner = env.unwrapped
    if _saves_itself(inner):
        inner.set_state(state)
    else:
        inner.np_random.bit_generator.state = json.loads(state.decode())


def _saves_itself(inner: gym.Env) -> bool:
    return hasattr(inner, "get_state") and hasattr(inner, "set_state")
