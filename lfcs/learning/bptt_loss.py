"""The objective of ``learner=bptt``: GAE(gamma, lambda) advantages and PPO's clipped loss, as pure functions.

Time-major ``(L, E)`` over E episodes of one agent; steps at or past an episode's length are padding (``valid``).

    delta_t = reward_t + gamma V_{t+1} - V_t      (after the last step: V = 0 if the episode ended in a terminal
                                                   state; past a time limit V_L = V_{L-1}, as the TD critic does)
    A_t     = delta_t + gamma lambda A_{t+1},     returns R_t = A_t + V_t    (V of the network before the update)
    rho_t   = pi_new(a_t) / q_t(a_t)              (q: pi_ref's probabilities when it acted; no smoothing)
    loss    = mean_t max(-A_t rho_t, -A_t clip(rho_t, 1 - eps, 1 + eps))      (clip=ppo; clip=none: mean -A_t rho_t)
            + value_coef mean_t (V_t - R_t)^2 / 2 - entropy_coef mean_t H(pi_t)

with A_t normalised to mean 0, std 1 over the minibatch's steps when ``normalize`` (and it has more than one step).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

NORMALIZE_EPS = 1e-8  # A / (std + 1e-8), as CleanRL and Stable-Baselines3


class PpoSettings(NamedTuple):
    eps: float  # clip range: rho in [1 - eps, 1 + eps]
    clip: str  # ppo | none
    value_coef: float
    entropy_coef: float
    normalize: bool  # advantages per minibatch


def valid_steps(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(L, E) bool: step t < length of episode e. lengths (E,)."""
    return torch.arange(steps, device=lengths.device).unsqueeze(1) < lengths.unsqueeze(0)


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    lengths: torch.Tensor,
    terminated: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and returns (L, E), 0 past each episode's end. rewards, values (L, E); lengths, terminated (E,)."""
    steps = rewards.shape[0]
    valid = valid_steps(lengths, steps)
    last = torch.arange(steps, device=lengths.device).unsqueeze(1) == (lengths - 1).unsqueeze(0)  # (L, E)
    following = torch.cat([values[1:], torch.zeros_like(values[:1])])  # V_{t+1}
    at_end = torch.where(terminated, torch.zeros_like(values), values)  # after the last step: 0, or V_L = V_{L-1}
    following = torch.where(last, at_end, following)
    deltas = torch.where(valid, rewards + gamma * following - values, torch.zeros_like(values))
    advantages = torch.zeros_like(values)
    running = torch.zeros_like(values[0])
    for t in range(steps - 1, -1, -1):  # past an episode's end every delta is 0, so running restarts at 0 there
        running = deltas[t] + gamma * lam * running
        advantages[t] = running
    returns = torch.where(valid, advantages + values, torch.zeros_like(values))
    return advantages, returns


def log_prob_taken(probs: torch.Tensor, actions: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """log q(a_t) (L, E) from probabilities (L, E, O) and actions (L, E); 0 at padding (whose q is 0).

    Floored at the smallest normal number: inverse-CDF sampling never picks an action of probability 0, except where
    the rounded CDF ends below the uniform and the last action is taken."""
    taken = probs.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    return torch.where(valid, taken.clamp_min(torch.finfo(taken.dtype).tiny).log(), torch.zeros_like(taken))


def ppo_loss(
    logits: torch.Tensor,
    values: torch.Tensor,
    actions: torch.Tensor,
    logp_ref: torch.Tensor,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    valid: torch.Tensor,
    settings: PpoSettings,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss (a scalar) and the sums over valid steps of (clipped, |log rho|, (rho - 1) - log rho, 1): (4,).

    logits (L, E, O), values (L, E), actions (L, E), logp_ref = log q(a_t) (L, E), advantages and returns (L, E)
    from :func:`gae`, valid (L, E) bool. "Clipped": |rho - 1| > eps, PPO's clip fraction.
    """
    count = valid.sum()
    weight = valid.to(values.dtype) / count  # mean over valid steps as a weighted sum

    def mean(x: torch.Tensor) -> torch.Tensor:
        return (x * weight).sum()

    if settings.normalize and int(count) > 1:
        centred = torch.where(valid, advantages - mean(advantages), torch.zeros_like(advantages))
        std = (centred.square().sum() / (count - 1)).sqrt()
        advantages = centred / (std + NORMALIZE_EPS)
    log_probs = torch.log_softmax(logits, dim=-1)  # (L, E, O)
    log_ratio = log_probs.gather(-1, actions.unsqueeze(-1)).squeeze(-1) - logp_ref
    log_ratio = torch.where(valid, log_ratio, torch.zeros_like(log_ratio))  # padding: rho = 1, no gradient
    rho = log_ratio.exp()
    surrogate = -advantages * rho
    if settings.clip == "ppo":
        surrogate = torch.maximum(surrogate, -advantages * rho.clamp(1.0 - settings.eps, 1.0 + settings.eps))
    entropy = -(log_probs.exp() * log_probs).sum(-1)
    loss = mean(surrogate) + settings.value_coef * mean(0.5 * (values - returns).square())
    loss = loss - settings.entropy_coef * mean(entropy)
    with torch.no_grad():
        rho, log_ratio, on = rho.detach(), log_ratio.detach(), valid.to(values.dtype)
        clipped = ((rho - 1.0).abs() > settings.eps).to(values.dtype)
        kl = (rho - 1.0) - log_ratio
        sums = torch.stack([(clipped * on).sum(), (log_ratio.abs() * on).sum(), (kl * on).sum(), on.sum()])
    return loss, sums
