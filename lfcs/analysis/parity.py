"""Replay episodes recorded from the authors' code (METHOD.md §5 schema) through the training learner.

Any file of the schema is accepted: any N, I, O, T, eps, number of passes, mode and episode index. Optional keys
(``iteration``, ``episode_reward``, ``W_out_after_episode_end``) are checked when present; unknown keys are
ignored. Nothing here re-implements the rule: the policy and learner are the ones ``train`` uses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lfcs import backends
from lfcs.learning.learner import LfcsLearner
from lfcs.network.neurons import make_neuron_params
from lfcs.network.policy import SpikingPolicy
from lfcs.rules.episodes import EpisodeBuffer

TOLERANCE = 1e-10
# Constants of the authors' network that the schema does not store (METHOD.md §2).
TAU_MEM_STEPS, TAU_SYN_STEPS, TAU_READOUT_STEPS = 6.0, 4.0, 1.0
SELF_INHIBITION, READOUT_GAIN = 100.0, 2.5
REQUIRED = (
    "N I O T gamma eps lr n_replays mode v0 W_in W_rec h W_out_before adam_m_before adam_v_before adam_t_before "
    "obs actions ref_probs adv new_probs_first_pass mask_first_pass W_out_after adam_m_after adam_v_after "
    "adam_t_after rec_grad_sum_first_pass"
).split()


class SchemaError(ValueError):
    pass


def _tensor(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def _build(data, backend: str) -> tuple[SpikingPolicy, LfcsLearner]:
    params = make_neuron_params(
        TAU_MEM_STEPS,
        TAU_SYN_STEPS,
        TAU_READOUT_STEPS,
        bias=_tensor(data["h"]),
        self_inhibition=SELF_INHIBITION,
        v_episode_start=float(data["v0"]),
        readout_gain=READOUT_GAIN,
    )
    w_in = _tensor(data["W_in"]).unsqueeze(0)  # (1, N, I): one agent
    w_rec = _tensor(data["W_rec"]).unsqueeze(0)  # kept even when zero: the file checks G_rec
    w_out = _tensor(data["W_out_before"][0]).unsqueeze(0)
    new_policy = SpikingPolicy(w_in, w_rec, w_out, params)
    learner = LfcsLearner(
        new_policy,
        new_policy.clone(),
        backends.select(backend, "cpu"),
        timescale=str(data["mode"]),
        n_passes=int(data["n_replays"]),
        eps=float(data["eps"]),
        lr=float(data["lr"]),
        gamma=float(data["gamma"]),
        trailing_zero_step=True,
        ref_update_every=1,
        track_rec_grad=True,
    )
    return new_policy, learner


def _load_adam(learner: LfcsLearner, m: np.ndarray, v: np.ndarray, t: int) -> None:
    """Golden moments use the +D convention; torch's maximize mode keeps the moment of -D (METHOD.md §3)."""
    learner.adam_out.exp_avg[0].copy_(-_tensor(m))
    learner.adam_out.exp_avg_sq[0].copy_(_tensor(v))
    learner.adam_out.step[0] = float(t)


def check_file(path: str | Path, backend: str = "auto") -> dict[str, float]:
    """Largest absolute error of every checked quantity over all episodes in the file."""
    with np.load(path, allow_pickle=False) as npz:
        data = {key: npz[key] for key in npz.files}
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise SchemaError(f"{path}: missing keys {', '.join(missing)}")
    policy, learner = _build(data, backend)
    errors: dict[str, float] = {}

    def record(name: str, got, want) -> None:
        err = float(np.max(np.abs(np.asarray(got, dtype=np.float64) - np.asarray(want, dtype=np.float64))))
        errors[name] = max(errors.get(name, 0.0), err)

    num_episodes = data["W_out_before"].shape[0]
    for e in range(num_episodes):
        episode = int(data["iteration"][e]) if "iteration" in data else e
        policy.w_out.copy_(_tensor(data["W_out_before"][e]))
        _load_adam(learner, data["adam_m_before"][e], data["adam_v_before"][e], int(data["adam_t_before"][e]))
        horizon = int(data["obs"].shape[1])
        rewards = _tensor(data["rewards"][e]) if "rewards" in data else torch.zeros(horizon, dtype=torch.float64)
        buffer = EpisodeBuffer(
            obs=_tensor(data["obs"][e]).unsqueeze(1),  # (T, 1, I)
            actions=torch.as_tensor(data["actions"][e], dtype=torch.long).unsqueeze(1),
            ref_probs=_tensor(data["ref_probs"][e]).unsqueeze(1),
            rewards=rewards.unsqueeze(1),
            advantages=_tensor(data["adv"][e]).unsqueeze(1),
            lengths=torch.tensor([horizon]),
        )
        _, first_pass = learner.learn(buffer)
        record("new_probs_first_pass", first_pass.new_probs[:, 0], data["new_probs_first_pass"][e])
        record("mask_first_pass", first_pass.mask[:, 0], data["mask_first_pass"][e])
        record("rec_grad_sum_first_pass", first_pass.rec_grad_sum[0], data["rec_grad_sum_first_pass"][e])
        record("W_out_after", policy.w_out[0], data["W_out_after"][e])
        adam = learner.adam_out
        record("adam_m_after", -adam.exp_avg[0], data["adam_m_after"][e])
        record("adam_v_after", adam.exp_avg_sq[0], data["adam_v_after"][e])
        record("adam_t_after", float(adam.step[0]), data["adam_t_after"][e])
        if "episode_reward" in data and "rewards" in data:
            record("episode_reward", data["rewards"][e].sum(), data["episode_reward"][e])
        if "W_out_after_episode_end" in data:
            learner.end_episode(episode)
            record("W_out_after_episode_end", policy.w_out[0], data["W_out_after_episode_end"][e])
    return errors


def main(paths: list[str]) -> int:
    if not paths:
        print("usage: python scripts/parity.py FILE [FILE ...]")
        return 2
    torch.set_num_threads(1)
    failed = False
    for path in paths:
        try:
            errors = check_file(path)
        except (OSError, ValueError, KeyError) as exc:
            print(f"FAIL {path}: {exc}")
            failed = True
            continue
        worst = max(errors.values())
        ok = worst <= TOLERANCE
        failed |= not ok
        detail = "  ".join(f"{name}={err:.1e}" for name, err in errors.items())
        print(f"{'ok  ' if ok else 'FAIL'} {Path(path).name}: max|err| {worst:.1e}  {detail}")
    return 1 if failed else 0
