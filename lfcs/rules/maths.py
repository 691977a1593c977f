"""The per-step maths of the lf-cs rule (METHOD.md §3) and its Adam ascent, as pure torch functions.

For replayed step t (stored input x_t, pi_ref's action a_t and probabilities q_t, advantage A_t), with O actions::

    smooth(u) = (u + 0.01) / (1 + 0.01 O)                         (1.03 for Pong-100's three actions)
    rho       = smooth(pi_t) / smooth(q_t)                        (vector over actions)
    m         = 1[1 - eps < rho[a_t] < 1 + eps]                  (learner.clip=mask; see CLIP_WEIGHTS)
    G_out     = ((onehot(a_t) - pi_t) * rho * m) outer r_t
    G_rec     = ((W_out^T ((onehot(a_t) - smooth(pi_t)) * rho * m)) * sigma'(v_t)) outer p_t
    D        += A_t * E_{t-1};   E_t = gamma * E_{t-1} + G

e-prop's eligibility traces of the hidden weights (Bellec et al. 2020), for W = W_rec (signal s_hat_t, K = N) or
W_in (signal x_t, K = I), with psi_t = sigma'(v_t - beta a_t) and the learning signal L_t = F^T ((onehot(a_t) -
smooth(pi_t)) * rho * m) (F = W_out, or a fixed random matrix with ``learner.feedback=random``)::

    eps_v_t[j, k] = a_m,j eps_v_{t-1}[j, k] + (1 - a_m,j) signal_t,k          (= p_t, a vector, for one a_m)
    eps_a_t[j, k] = (a_a - beta_j psi_{t-1,j}) eps_a_{t-1}[j, k] + psi_{t-1,j} eps_v_{t-1}[j, k]    (alif)
    e_t[j, k]     = psi_t,j (eps_v_t[j, k] - beta_j eps_a_t[j, k])
    G_t[j, k]     = L_t,j e_t[j, k]                     (lif_box, one a_m: G_rec above)

These functions serve the torch learner (any device); ``lfcs.backends.kernels`` computes the same on the CPU.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from lfcs.network.policy import page_aligned

SMOOTH_FLOOR = 0.01  # smooth(u) = (u + 0.01) / (1 + 0.01 O) keeps the ratio finite for tiny probabilities


def smooth_scale(num_actions: int) -> float:
    """The normaliser 1 + 0.01 O of smooth(u), so that smooth sums to 1 over O actions."""
    return 1.0 + num_actions * SMOOTH_FLOOR


def smooth(probs: torch.Tensor) -> torch.Tensor:
    """smooth(u) over the last axis (the actions)."""
    return (probs + SMOOTH_FLOOR) / smooth_scale(probs.shape[-1])


def ratio(probs: torch.Tensor, smooth_ref: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """rho (B, O) and rho[a_t] (B,) from pi_new's probs (B, O) and smooth(q_t) (B, O).

    A division, not a product with 1 / smooth(q_t): when pi_new == pi_ref the ratio is then exactly 1."""
    rho = smooth(probs) / smooth_ref
    return rho, rho.gather(1, actions.unsqueeze(1)).squeeze(1)


# learner.clip: the weight m (B,) of a replayed step from rho[a_t] (B,) and its credit C (B,).
def mask_weight(taken, credit, lo, hi):
    """The paper's mask: m = 1[lo < rho < hi], whatever the sign of the credit."""
    return ((taken > lo) & (taken < hi)).to(taken.dtype)


def no_clip_weight(taken, credit, lo, hi):
    """m = 1: every step weighted by rho alone."""
    return torch.ones_like(taken)


def ppo_weight(taken, credit, lo, hi):
    """PPO's min(rho C, clip(rho, lo, hi) C): the gradient of rho C survives where that term is the smaller."""
    return (taken * credit <= taken.clamp(lo, hi) * credit).to(taken.dtype)


CLIP_WEIGHTS = {"mask": mask_weight, "none": no_clip_weight, "ppo": ppo_weight}
CLIP_MODES = {"mask": 0, "none": 1, "ppo": 2}  # the same rules as ``lfcs.backends.kernels``' clip_mode codes


def ratio_and_mask(
    probs: torch.Tensor, smooth_ref: torch.Tensor, actions: torch.Tensor, lo: float, hi: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """rho (B, O), rho[a_t] (B,) and the paper's mask m (B,)."""
    rho, taken = ratio(probs, smooth_ref, actions)
    return rho, taken, mask_weight(taken, None, lo, hi)


def replayed_steps(lengths: torch.Tensor, pair_after: bool) -> torch.Tensor:
    """Steps each agent replays: t = 0 .. L-2 with the paper's pairing, t = 0 .. L-1 with terminal credit."""
    return lengths if pair_after else lengths - 1


def step_credit(met: torch.Tensor, lengths: torch.Tensor, gamma: float, pair_after: bool) -> torch.Tensor:
    """C_s (T, B): the discounted sum of the advantages that step s's trace term G_s meets in a pass.

    met (T, B) is the advantage met at replayed step t. The paper's pairing (D += A_t E_{t-1}) gives
    C_s = sum_{t = s+1}^{S-1} gamma^(t-1-s) A_t; terminal credit (D += A_t E_t) gives C_s = sum_{t = s}^{S-1}
    gamma^(t-s) A_t, with S the replayed steps. (In a slow pass D = sum_s C_s G_s exactly.)
    """
    steps = replayed_steps(lengths, pair_after).to(met.device)
    horizon = met.shape[0]
    valid = (torch.arange(horizon, device=met.device).unsqueeze(1) < steps.unsqueeze(0)).to(met.dtype)
    tail = torch.zeros_like(met)  # tail[s] = sum_{t >= s, t < S} gamma^(t-s) met[t]
    running = torch.zeros_like(met[0])
    for t in range(horizon - 1, -1, -1):
        running = met[t] * valid[t] + gamma * running
        tail[t] = running
    if pair_after:
        return tail
    credit = torch.zeros_like(met)
    credit[:-1] = tail[1:]
    return credit


def readout_coef(probs, rho, mask, onehot):
    """(onehot(a_t) - pi_t) * rho * m, the post-synaptic factor of G_out: (B, O)."""
    return (onehot - probs) * rho * mask.unsqueeze(1)


def learning_signal(probs, rho, mask, onehot, feedback):
    """L_t = F^T ((onehot - smooth(pi)) * rho * m): feedback F (B, O, N) is W_out or a fixed random matrix; (B, N)."""
    coef = (onehot - smooth(probs)) * rho * mask.unsqueeze(1)  # (B, O)
    return (feedback * coef.unsqueeze(2)).sum(1)  # F^T coef, (B, N)


def surrogate_derivative(drive: torch.Tensor) -> torch.Tensor:
    """psi = sigma'(drive) = sigmoid (1 - sigmoid), width 1, on the pre-reset membrane's distance to threshold."""
    sig = torch.sigmoid(drive)
    return sig * (1.0 - sig)


def recurrent_post(probs, rho, mask, onehot, feedback, drive):
    """L_t * psi_t, the post-synaptic factor of G_rec and G_in: (B, N)."""
    return learning_signal(probs, rho, mask, onehot, feedback) * surrogate_derivative(drive)


def trace_step(trace: torch.Tensor, post: torch.Tensor, pre: torch.Tensor, gamma: float) -> torch.Tensor:
    """E_t = gamma E_{t-1} + post outer pre: trace (B, M, K), post (B, M), pre (B, K) or per synapse (B, M, K)."""
    return trace * gamma + post.unsqueeze(2) * (pre.unsqueeze(1) if pre.dim() == 2 else pre)


def synapse_trace_step(eps_v: torch.Tensor, signal: torch.Tensor, decay) -> torch.Tensor:
    """eps_v_t = a_m eps_v_{t-1} + (1 - a_m) signal_t: one vector (B, K) for a scalar a_m, or per synapse (B, N, K)
    with a_m (B, N) per postsynaptic neuron."""
    if eps_v.dim() == 2:
        return decay * eps_v + (1.0 - decay) * signal
    decay = decay.unsqueeze(2)
    return decay * eps_v + (1.0 - decay) * signal.unsqueeze(1)


def adaptation_trace_step(eps_a, eps_v, psi_prev, beta, decay_adapt):
    """eps_a_t = (a_a - beta psi_{t-1}) eps_a_{t-1} + psi_{t-1} eps_v_{t-1}: eps_a (B, N, K), eps_v (B, K) or
    (B, N, K), psi_prev (B, N), beta (N,)."""
    eps_v = eps_v.unsqueeze(1) if eps_v.dim() == 2 else eps_v
    return (decay_adapt - beta * psi_prev).unsqueeze(2) * eps_a + psi_prev.unsqueeze(2) * eps_v


def adapted_presynaptic(eps_v, eps_a, beta):
    """eps_v - beta_j eps_a: what e_t = psi (eps_v - beta eps_a) multiplies, (B, N, K); eps_v alone without alif."""
    if eps_a is None:
        return eps_v
    eps_v = eps_v.unsqueeze(1) if eps_v.dim() == 2 else eps_v
    return eps_v - beta.view(1, -1, 1) * eps_a


def rate_regulariser(e_sum, counts, steps, rate_reg: float, rate_target: float) -> torch.Tensor:
    """Ascent direction of -rate_reg/2 sum_j (f_j - f_target)^2 with f_j = counts_j / S over a pass of S steps:
    -rate_reg (f_j - f_target) sum_t e_t[j, k] / S. e_sum (B, N, K), counts (B, N), steps (B,) >= 1."""
    steps = steps.view(-1, 1).to(counts)
    coef = -rate_reg * (counts / steps - rate_target) / steps
    return coef.unsqueeze(2) * e_sum


class AdamState(NamedTuple):
    """Adam moments of one weight tensor (B, ...) in torch's maximize convention (moments of -D), steps (B,)."""

    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor
    step: torch.Tensor

    @staticmethod
    def zeros_like(weights: torch.Tensor) -> AdamState:
        step = torch.zeros(weights.shape[0], dtype=torch.float64, device=weights.device)
        return AdamState(*(page_aligned(torch.zeros_like(weights)) for _ in range(2)), step)  # see page_aligned


def adam_ascent_(
    param: torch.Tensor,
    grad: torch.Tensor,
    state: AdamState,
    active: torch.Tensor,
    lr: float,
    betas: tuple[float, float],
    eps: float,
) -> None:
    """One Adam ascent step on D (``torch.optim.Adam(maximize=True)``'s maths), in place, for agents with active=1.

    param, grad (B, ...); active (B,) bool. An inactive agent's weights, moments and step count stay as they are.
    """
    beta1, beta2 = betas
    shape = (-1,) + (1,) * (param.dim() - 1)
    keep = active.view(shape)
    steps = state.step + active.to(state.step.dtype)
    state.step.copy_(steps)
    bias1 = (1.0 - beta1**steps).view(shape).to(param.dtype)
    inv_bias2_sqrt = (1.0 / (1.0 - beta2**steps).sqrt()).view(shape).to(param.dtype)
    g = -grad
    m = state.exp_avg + (1.0 - beta1) * (g - state.exp_avg)
    v = beta2 * state.exp_avg_sq + (1.0 - beta2) * g * g
    new = param - (lr / bias1) * m / (v.sqrt() * inv_bias2_sqrt + eps)
    state.exp_avg.copy_(torch.where(keep, m, state.exp_avg))
    state.exp_avg_sq.copy_(torch.where(keep, v, state.exp_avg_sq))
    param.copy_(torch.where(keep, new, param))


# -- off-policy corrections for the older stored episodes (learner.off_policy; README "Replay that learns from older
# episodes"). Index conventions: a value "of step t" belongs to the action a_t; met_by_step moves it to the replayed
# step whose update meets it.
def behaviour_ratio(ref_probs: torch.Tensor, behaviour_probs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """w_t = smooth(pi_ref_t)[a_t] / smooth(q_t)[a_t] (T, B) from probabilities (T, B, O) and actions (T, B).

    pi_ref_t: the current pi_ref over the stored episode; q_t: the pi_ref that played it. Smoothed as the ratio rho
    is, so w stays finite, and a division, so that w = 1 exactly where pi_ref == q."""
    taken = actions.unsqueeze(-1)
    return (smooth(ref_probs).gather(-1, taken) / smooth(behaviour_probs).gather(-1, taken)).squeeze(-1)


def met_by_step(per_action: torch.Tensor, pair_after: bool) -> torch.Tensor:
    """A value of each action a_t (T, B) at the replayed step whose advantage holds a_t's consequence.

    Terminal credit (D += A'_t E_t, A'_t = delta_t): step t, itself. The paper's pairing (D += A_t E_{t-1},
    A_t = r_{t-1} - V_{t-1} + gamma V_t): step t + 1, so step t carries a_{t-1}'s value, and step 0 carries 0."""
    if pair_after:
        return per_action
    out = torch.zeros_like(per_action)
    out[1:] = per_action[:-1]
    return out


def vtrace(values, rewards, lengths, terminated, gamma: float, rho, trace_c) -> tuple[torch.Tensor, torch.Tensor]:
    """V-trace (Espeholt et al. 2018) over a stored episode per agent; every argument time-major (T, B) but lengths
    and terminated (B,). values V_t = w_V . r_t of the current critic; rho_t = min(rho_bar, w_t),
    trace_c_t = min(c_bar, w_t). After an agent's last step (L - 1) V_L = 0 if it ended terminated, else
    V_L = V_{L-1} (a time limit), and v_L = V_L. Recursively, from t = L - 1 down to 0:

        v_t - V_t = rho_t (r_t + gamma V_{t+1} - V_t) + gamma trace_c_t (v_{t+1} - V_{t+1})
        adv_t     = r_t + gamma v_{t+1} - V_t             (the advantage of a_t)

    Returns (v - V, adv), both (T, B) and 0 past each agent's end. Elementwise over agents (no reduction).
    """
    device, dtype = values.device, values.dtype
    v_, r_, rho_, c_ = (x.detach().cpu().numpy() for x in (values, rewards, rho, trace_c))
    ends, stop = lengths.cpu().numpy(), terminated.cpu().numpy()
    horizon = v_.shape[0]
    diff, adv = np.zeros_like(v_), np.zeros_like(v_)
    last = np.maximum(ends - 1, 0)
    cols = np.arange(v_.shape[1])
    boot = np.where(stop, 0.0, v_[last, cols])  # V_L
    diff_next = np.zeros_like(boot)  # v_{t+1} - V_{t+1}: diff[t + 1], which is 0 from t + 1 = L on
    for t in range(horizon - 1, -1, -1):
        live, is_last = t < ends, t == ends - 1
        value_next = np.where(is_last, boot, v_[min(t + 1, horizon - 1)])
        step = rho_[t] * (r_[t] + gamma * value_next - v_[t]) + gamma * c_[t] * diff_next
        diff[t] = np.where(live, step, 0.0)
        adv[t] = np.where(live, r_[t] + gamma * (value_next + diff_next) - v_[t], 0.0)
        diff_next = diff[t]
    as_t = lambda x: torch.from_numpy(x).to(device=device, dtype=dtype)  # noqa: E731
    return as_t(diff), as_t(adv)


def smooth_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(smooth(p) || smooth(q)) over the last axis (the actions), summed action by action."""
    sp, sq = smooth(p), smooth(q)
    terms = sp * (sp.log() - sq.log())
    total = terms[..., 0]
    for a in range(1, terms.shape[-1]):
        total = total + terms[..., a]
    return total
