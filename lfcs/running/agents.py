"""A group of independent agents trained in lockstep in one process: envs, pi_ref, pi_new, learner, RNGs.

Agent b uses seed ``seed + b`` for its weights, its action and spike noise (a torch.Generator) and its env's
first reset, so its trajectory does not depend on which other agents share the group.
"""

from __future__ import annotations

import time
from pathlib import Path

import gymnasium as gym
import torch
from omegaconf import DictConfig, OmegaConf

from lfcs import backends, checkpoint
from lfcs.analysis.observe import Observer
from lfcs.analysis.results import WINDOW
from lfcs.backends.base import Backend
from lfcs.config import learner_arguments
from lfcs.environments import env_state, episode_horizon, make_env_from_config, set_env_state
from lfcs.errors import CheckpointError, ConfigError, NonFiniteError  # NonFiniteError: also importable from here
from lfcs.export.evaluate import heldout_returns, interquartile_mean
from lfcs.learning.acting import play_episode
from lfcs.learning.bptt import BpttLearner
from lfcs.learning.learner import LfcsLearner
from lfcs.network.encoding import ObservationEncoder, flat_size
from lfcs.network.policy import SpikingPolicy, build_policy
from lfcs.running.logger import ADDED_COLUMNS, CSV_COLUMNS, EXTRAS_KEY, upgrade_history


def check_spaces(env: gym.Env, env_id: str) -> tuple[int, int]:
    """(obs_dim, num_actions), or a ConfigError if the env does not fit the network."""
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise ConfigError(
            f"env.id={env_id!r} is not allowed: its action space is "
            f"{type(env.action_space).__name__}, lfcs needs Discrete"
        )
    try:
        return flat_size(env.observation_space), int(env.action_space.n)  # Discrete / MultiDiscrete: one-hot
    except ValueError as exc:
        raise ConfigError(f"env.id={env_id!r} is not allowed: {exc}") from exc


def probe_env(cfg: DictConfig) -> None:
    """Build one env of the config and check it fits, before anything is written (ConfigError otherwise)."""
    try:
        env = make_env_from_config(cfg.env)  # ConfigError for an obs_shift / obs_scale of the wrong length
    except gym.error.Error as exc:
        raise ConfigError(f"env.id={cfg.env.id!r} is not allowed: {' '.join(str(exc).split())}") from exc
    except TypeError as exc:
        raise ConfigError(f"env.kwargs={dict(cfg.env.kwargs)} is not allowed: {exc}") from exc
    except ValueError as exc:  # an env's own check of its kwargs (a ConfigError is one line already)
        raise exc if isinstance(exc, ConfigError) else ConfigError(" ".join(str(exc).split())) from exc
    try:
        check_spaces(env, cfg.env.id)
        episode_horizon(env)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    finally:
        env.close()


def build_learner(
    learner: DictConfig, new_policy: SpikingPolicy, ref_policy: SpikingPolicy, backend: Backend
) -> LfcsLearner | BpttLearner:
    """The learner that ``learner.name`` picks, with the keys it reads (``lfcs.config.learner_arguments``)."""
    if learner.name == "bptt":  # autograd on the torch tensors: it calls no backend operation
        return BpttLearner(new_policy, ref_policy, **learner_arguments(learner))
    return LfcsLearner(new_policy, ref_policy, backend, **learner_arguments(learner))


def checkpoint_path(run_dir: Path, agent_ids: list[int]) -> Path:
    return run_dir / "checkpoints" / f"agents_{agent_ids[0]}-{agent_ids[-1]}.pt"


class AgentGroup:
    def __init__(self, cfg: DictConfig, agent_ids: list[int]):
        self.cfg, self.agent_ids = cfg, list(agent_ids)
        dtype, device = getattr(torch, cfg.dtype), torch.device(cfg.device)
        self.generators = [torch.Generator().manual_seed(cfg.seed + b) for b in self.agent_ids]
        self.envs = [make_env_from_config(cfg.env) for _ in self.agent_ids]
        _, num_actions = check_spaces(self.envs[0], cfg.env.id)
        self.encoder = ObservationEncoder.from_config(cfg.env, self.envs[0].observation_space, len(self.agent_ids))
        obs_dim = self.encoder.out_size  # the network's input size follows the encoding
        self.horizon = episode_horizon(self.envs[0])
        network = OmegaConf.to_container(cfg.network, resolve=True)
        self.new_policy = build_policy(
            self.generators,
            obs_dim,
            num_actions,
            **network,
            learn_rec=cfg.learner.learn_rec,
            feedback=cfg.learner.feedback,
            dtype=dtype,
            device=device,
        )
        self.ref_policy = self.new_policy.clone()
        self.backend = backends.select(cfg.backend, device)  # the one choice of what computes this group
        self.learner = build_learner(cfg.learner, self.new_policy, self.ref_policy, self.backend)
        self.observer = Observer(cfg.log_images_every, cfg.probe_every)
        self.eval_envs: list[gym.Env] | None = None  # the evaluation's own envs, built at its first use
        self.episode = 0
        self.rows: list[torch.Tensor] = []  # one (B, columns) table per episode; stacked only for checkpoints

    @property
    def env_steps(self) -> list[int]:
        if not self.rows:
            return [0] * len(self.agent_ids)
        return [int(s) for s in self.rows[-1][:, CSV_COLUMNS.index("env_steps")]]

    def run_episode(self) -> list[dict]:
        """Act, replay, end the episode; one metrics row per agent."""
        start = time.perf_counter()
        seeds = [self.cfg.seed + b if self.episode == 0 else None for b in self.agent_ids]
        buffer, acting = play_episode(
            self.envs,
            self.ref_policy,
            self.generators,
            self.horizon,
            self.cfg.learner.gamma,
            seeds,
            self.backend,
            encoder=self.encoder,
            learn_encoder=True,
            record_hidden=self.observer.probe_due(self.episode + 1),
        )
        hidden = acting.pop("hidden", {})  # the env's hidden variables, for the decoding probe
        self._check_env_output(buffer.obs, buffer.rewards)  # before anything learns from them
        learning, first_pass = self.learner.learn(buffer)
        episode = self.episode + 1  # the row's episode number
        extras, extra_s = [{} for _ in self.agent_ids], 0.0  # observation only; its time is not the episode's
        if self.observer.due(episode):  # before pi_ref <- pi_new: pi_ref is still the policy that acted
            begin = time.perf_counter()
            extras = self.observer.observe(
                episode, buffer, self.ref_policy, self.new_policy, first_pass.new_probs, hidden
            )
            extra_s += time.perf_counter() - begin
        self.learner.end_episode(self.episode)
        if self.cfg.eval_every and episode % self.cfg.eval_every == 0:  # pi_ref as the checkpoint would hold it
            begin = time.perf_counter()
            for payload, returns in zip(extras, self._evaluate().T):
                payload.update(eval_return_mean=float(returns.mean()), eval_return_iqm=interquartile_mean(returns))
            extra_s += time.perf_counter() - begin
        w_out_norm = torch.linalg.vector_norm(self.new_policy.w_out.flatten(1), dim=1)  # per agent row: B-invariant
        self._check_finite(buffer.ref_probs, w_out_norm, learning)
        unmeasured = {key: torch.full_like(w_out_norm, value) for key, value in ADDED_COLUMNS.items()}
        per_agent = {**unmeasured, **acting, **learning, "w_out_norm": w_out_norm}  # a learner may not measure all
        values = {key: value.tolist() for key, value in per_agent.items()}
        elapsed = time.perf_counter() - start - extra_s
        steps_before = self.env_steps
        self.episode += 1
        column = CSV_COLUMNS.index("episodic_return")
        returns = [table[:, column].tolist() for table in self.rows[-(WINDOW - 1) :]]  # [episode][agent]
        rows = []
        for i, agent in enumerate(self.agent_ids):
            recent = [episode[i] for episode in returns] + [values["episodic_return"][i]]
            length = int(values["episode_length"][i])
            row = {key: values[key][i] for key in values}
            row.update(
                agent=agent,
                episode=self.episode,
                env_steps=steps_before[i] + length,
                reward_mean50=sum(recent) / len(recent),
                sps=length / elapsed,
                sps_total=sum(values["episode_length"]) / elapsed,  # all agents of this process, one clock
            )
            if extras[i]:
                row[EXTRAS_KEY] = extras[i]  # images, histograms, probes: TensorBoard only, not metrics.csv
            rows.append(row)
        table = torch.tensor([[float(row[c]) for c in CSV_COLUMNS] for row in rows], dtype=torch.float64)
        self.rows.append(table)
        return rows

    def _evaluate(self):
        """Returns (eval_episodes, B) of pi_ref on the held-out episodes, in envs that training never steps."""
        if self.eval_envs is None:
            self.eval_envs = [make_env_from_config(self.cfg.env) for _ in self.agent_ids]
        gamma = self.cfg.learner.gamma
        return heldout_returns(
            self.ref_policy,
            self.backend,
            self.eval_envs,
            self.horizon,
            gamma,
            self.cfg.eval_episodes,
            encoder=self.encoder,
        )

    def _check_env_output(self, obs: torch.Tensor, rewards: torch.Tensor) -> None:
        """NonFiniteError at the first step (then the first agent) whose observation or reward is NaN or inf."""
        # obs (T, B, I) -> (T, B); rewards (T, B). Steps past an agent's end are zero padding.
        for name, finite in (("observation", obs.isfinite().all(-1)), ("reward", rewards.isfinite())):
            bad = (~finite).nonzero()  # rows (t, b), ordered by t then b
            if len(bad):
                step, index = bad[0].tolist()
                raise NonFiniteError(
                    f"non-finite {name} from env {self.cfg.env.id} for agent {self.agent_ids[index]} in episode "
                    f"{self.episode} at step {step} (the last good checkpoint is kept)"
                )

    def _check_finite(self, probs: torch.Tensor, w_out_norm: torch.Tensor, learning: dict) -> None:
        quantities = {"ref_probs": probs.isfinite().all(0).all(-1), "W_out": w_out_norm.isfinite()}
        quantities.update({name: value.isfinite() for name, value in learning.items()})
        for name, finite in quantities.items():
            bad = (~finite).nonzero().flatten().tolist()
            if bad:
                raise NonFiniteError(
                    f"non-finite {name} for agent {self.agent_ids[bad[0]]} in episode {self.episode} "
                    f"(the last good checkpoint is kept)"
                )

    # -- checkpoints -------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "agents": self.agent_ids,
            "episode": self.episode,
            "new_policy": {k: v.cpu() for k, v in self.new_policy.state_dict().items()},
            "ref_policy": {k: v.cpu() for k, v in self.ref_policy.state_dict().items()},
            "adam": self.learner.state_dict(),
            "generators": [g.get_state() for g in self.generators],
            "encoder": self.encoder.state_dict(),  # the normaliser's statistics ({} for the other encodings)
            "env_states": [torch.frombuffer(bytearray(env_state(env)), dtype=torch.uint8) for env in self.envs],
            "history": torch.stack(self.rows)
            if self.rows
            else torch.zeros(0, len(self.agent_ids), len(CSV_COLUMNS), dtype=torch.float64),
            "config": OmegaConf.to_yaml(self.cfg, resolve=True),
        }

    def save(self, run_dir: Path) -> None:
        checkpoint.save_atomic(self.state_dict(), checkpoint_path(run_dir, self.agent_ids))

    def load(self, state: dict) -> None:
        if list(state["agents"]) != self.agent_ids:
            raise CheckpointError(f"checkpoint holds agents {state['agents']}, expected {self.agent_ids}")
        for policy, key in ((self.new_policy, "new_policy"), (self.ref_policy, "ref_policy")):
            saved = state[key]
            for name, tensor in policy.state_dict().items():
                if name not in saved or saved[name].shape != tensor.shape:
                    got = None if name not in saved else tuple(saved[name].shape)
                    raise CheckpointError(
                        f"checkpoint {key}.{name} has shape {got}, the configured network needs {tuple(tensor.shape)}"
                    )
            policy.load_state_dict(saved)
        if "adam" not in state:
            raise checkpoint.CheckpointError("checkpoint holds no Adam state (written by an older lfcs?)")
        try:
            self.learner.load_state_dict(state["adam"])
        except (KeyError, ValueError) as exc:
            message = f"checkpoint Adam state does not fit the configured learner: {exc}"
            raise checkpoint.CheckpointError(message) from exc
        try:
            self.encoder.load_state_dict(state.get("encoder", {}))
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"checkpoint encoder state does not fit env.encoding: {exc!r}") from exc
        for gen, gen_state in zip(self.generators, state["generators"]):
            gen.set_state(gen_state)
        for env, saved_env in zip(self.envs, state["env_states"]):
            set_env_state(env, saved_env.numpy().tobytes())
        self.episode = int(state["episode"])
        self.rows = list(upgrade_history(state["history"]).unbind(0))
