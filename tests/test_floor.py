"""The learned-W_rec sweep (lfcs/backends/floor.py) against the three loops it replaced, bit for bit in float64, and
the next step's recurrent input it takes on the way; the vectorised and the spike-driven recurrent input against
_dot; the trace buffers' page offsets; float32 kernels' subnormal flushing switched on and off around each call."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lfcs.backends import compiled, kernels
from lfcs.backends.floor import rec_sweep
from lfcs.running.agents import AgentGroup
from tests.conftest import SMALL, make_cfg

BETA1, BETA2, EPS, STEP_SIZE, INV_BIAS2 = 0.9, 0.999, 1e-5, 1.5e-4, 1.7
NO_FORWARD = (np.zeros(0), np.zeros(0), np.zeros(4))  # rec_sweep's s_next, rec_next, partial: no next-step product


def _separate_loops(w, e, m, v, post, pre, eps_v, eps_a, beta, a_t, gamma, pair_after):
    """The replay's W_rec step as it was before the sweep (``_hidden_step`` with ``_hidden_accumulate``, then Adam):
    D, then the trace (or the trace, then D), D's diagonal zeroed, Adam on the flat arrays (numpy: the same IEEE
    operations in the same order)."""
    if not pair_after:
        step = a_t * e
    x = eps_v if eps_v.size else np.broadcast_to(pre, e.shape)
    g = post[:, None] * x
    rows = len(eps_a)
    g[:rows] = post[:rows, None] * (x[:rows] - beta[:rows, None] * eps_a)
    e = gamma * e + g
    if pair_after:
        step = a_t * e
    applied = step.copy()
    np.fill_diagonal(applied, 0.0)
    grad = -applied.reshape(-1)
    m = m + (1.0 - BETA1) * (grad - m)
    v = BETA2 * v + (1.0 - BETA2) * grad * grad
    w = (w.reshape(-1) - STEP_SIZE * m / (np.sqrt(v) * INV_BIAS2 + EPS)).reshape(w.shape)
    return w, e, m, v


@pytest.mark.parametrize("pair_after", [False, True])
@pytest.mark.parametrize("neurons", ["lif", "alif_per_synapse"])
def test_the_sweep_is_the_separate_loops_bit_for_bit(neurons, pair_after):
    rng = np.random.default_rng(3)
    n, a_t, gamma = 13, 0.7, 0.99
    w, e, m = rng.normal(size=(n, n)), rng.normal(size=(n, n)) * 1e-2, rng.normal(size=n * n) * 1e-3
    v, post, pre = rng.random(n * n) * 1e-6, rng.normal(size=n) * 1e-2, rng.random(n)
    alif = neurons == "alif_per_synapse"  # eps_a on the first 5 rows, eps_v per synapse (per-neuron a_m)
    eps_v = rng.random((n, n)) if alif else np.zeros((0, 0))
    eps_a = rng.random((5, n)) if alif else np.zeros((0, n))
    beta = np.where(np.arange(n) < 5, 0.4, 0.0) if alif else np.zeros(n)
    h = np.array([a_t, gamma, 1.0 - BETA1, BETA2, 1.0 - BETA2, STEP_SIZE, INV_BIAS2, EPS, 0.0])
    want = _separate_loops(w, e, m, v, post, pre, eps_v, eps_a, beta, a_t, gamma, pair_after)
    got = [x.copy() for x in (w, e, m, v)]
    rec_sweep(got[0], got[1], got[2], got[3], post, pre, eps_v, eps_a, beta, h, pair_after, *NO_FORWARD)
    for name, mine, theirs in zip(("W_rec", "E", "m", "v"), got, want):
        assert np.array_equal(mine, theirs), name
    assert not np.array_equal(got[0], w), "the case must move W_rec"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(8, 500), (7, 13), (5, 3)])
def test_the_vectorised_recurrent_input_is_dot_row_by_row(shape, dtype):
    rng = np.random.default_rng(5)
    w, s = rng.normal(size=shape).astype(dtype), rng.random(shape[1]).astype(dtype)
    out = np.empty(shape[0])
    kernels._dot_rows(w, s, out)
    assert np.array_equal(out, [kernels._dot(w[i], s) for i in range(shape[0])])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_pre", [500, 13, 3])
def test_the_spike_driven_recurrent_input_is_dot_row_by_row(n_pre, dtype):
    """Acting's product from W_rec's transpose over the nonzero entries of s_hat only: _dot's bits, whether few, most
    or none of the neurons have spiked, with a tail (N mod 4 != 0) and negative weights (0 w = -0)."""
    rng = np.random.default_rng(7)
    w = rng.normal(size=(9, n_pre)).astype(dtype)
    lanes, out = np.empty((4, 9)), np.empty(9)
    for active in (0.0, 0.03, 0.5, 1.0):
        s = (rng.random(n_pre) * (rng.random(n_pre) < active)).astype(dtype)
        kernels._dot_columns(np.ascontiguousarray(w.T), s, out, lanes)
        assert np.array_equal(out, [kernels._dot(w[i], s) for i in range(9)]), active


def test_the_sweep_hands_the_next_step_its_recurrent_input():
    """rec_sweep's row-by-row product of the moved W_rec with s_next is the forward pass's, bit for bit, and leaves
    the update as it was."""
    rng = np.random.default_rng(11)
    n = 23
    w, e, m = rng.normal(size=(n, n)), rng.normal(size=(n, n)) * 1e-2, rng.normal(size=n * n) * 1e-3
    v, post, pre, s_next = rng.random(n * n) * 1e-6, rng.normal(size=n) * 1e-2, rng.random(n), rng.random(n)
    h = np.array([0.7, 0.99, 1.0 - BETA1, BETA2, 1.0 - BETA2, STEP_SIZE, INV_BIAS2, EPS, 0.0])
    plain, fused = [x.copy() for x in (w, e, m, v)], [x.copy() for x in (w, e, m, v)]
    empty = (np.zeros((0, 0)), np.zeros((0, n)), np.zeros(n))
    rec_sweep(*plain, post, pre, *empty, h, False, *NO_FORWARD)
    rec_next = np.full(n, np.nan)
    rec_sweep(*fused, post, pre, *empty, h, False, s_next, rec_next, np.zeros(n - n % 4 + 4))
    assert all(np.array_equal(a, b) for a, b in zip(plain, fused))
    want = np.empty(n)
    kernels._dot_rows(plain[0], s_next, want)
    assert np.array_equal(rec_next, want) and not np.array_equal(plain[0], w)


def test_trace_buffers_start_at_their_weight_matrix_page_offset():
    """The replay's E / eps_a views start at the same offset within a 4 KiB page as the agent's W_rec (4K aliasing
    made the float32 ALIF sweep 3x slower where the allocator placed eps_a a few dozen bytes after W_rec)."""
    from lfcs.backends import floor

    for dtype in (np.float64, np.float32):
        space = floor.trace_buffers(7, 7, True, True, 3, True, dtype, True)
        for offset in (0, 1, 5):
            like = np.zeros(70, dtype=dtype)[offset : offset + 49].reshape(7, 7)
            views = floor.trace_views(space, like)
            assert [x.shape for x in views] == [(7, 7), (7, 7), (3, 7), (7, 7), (7, 7)]
            for view in views:
                assert view.ctypes.data % floor.PAGE_BYTES == like.ctypes.data % floor.PAGE_BYTES


def test_learned_w_rec_and_its_adam_moments_start_on_a_page():
    """What the sweep streams besides its traces starts on a 4 KiB page (lfcs.network.policy.page_aligned), after
    episodes too (pi_ref <- pi_new and resume copy into these tensors); page_aligned keeps the values."""
    from lfcs.network.policy import PAGE_BYTES, page_aligned

    group = AgentGroup(make_cfg(*SMALL, "experiment=masked_cartpole_rec", "dtype=float32", "num_agents=2"), [0, 1])
    for _ in range(2):
        group.run_episode()
        adam = group.learner.adam_rec
        for tensor in (group.new_policy.w_rec, adam.exp_avg, adam.exp_avg_sq):
            assert tensor.data_ptr() % PAGE_BYTES == 0 and tensor.is_contiguous()
    values = torch.randn(3, 7, 7, dtype=torch.float64)
    assert torch.equal(page_aligned(values), values) and page_aligned(values).data_ptr() % PAGE_BYTES == 0


def _halved_subnormal() -> np.float32:
    return np.float32(1e-38) * np.float32(0.5)  # 5e-39: a float32 subnormal, unless flushed to 0


def test_subnormals_are_flushed_only_inside_a_float32_kernel_call():
    assert _halved_subnormal() > 0
    with compiled.flush_subnormals(True):
        assert _halved_subnormal() == 0
    assert _halved_subnormal() > 0
    with compiled.flush_subnormals(False):
        assert _halved_subnormal() > 0
    group = AgentGroup(make_cfg(*SMALL, "experiment=masked_cartpole_rec", "dtype=float32"), [0])
    seen = []
    step = kernels.act_step
    try:  # what acting's kernel sees, and what is left after the episode
        kernels.act_step = lambda *args: (seen.append(_halved_subnormal()), step(*args))
        group.run_episode()
    finally:
        kernels.act_step = step
    assert seen and all(x == 0 for x in seen)
    assert _halved_subnormal() > 0
    assert group.new_policy.w_rec.dtype == torch.float32


def test_floor_breakdown_writes_each_dtype_and_its_no_division_pass_keeps_the_trace(tmp_path, monkeypatch):
    """scripts/floor_breakdown.py (issue 23's diagnosis): both dtypes with the three timings and the bytes of W_rec's
    four arrays; the comparison pass without Adam's division moves the trace exactly as rec_sweep does."""
    import json

    from tests.conftest import ROOT, load_script

    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    script = load_script("floor_breakdown")
    script.main(["--n", "6", "--steps", "2", "--repeats", "1", "--out", str(tmp_path)])
    record = json.loads((tmp_path / "floor_breakdown.json").read_text())
    for dtype, itemsize in (("float64", 8), ("float32", 4)):
        found = record[dtype]
        assert found["bytes_per_step"] == 4 * 6 * 6 * itemsize
        kinds = ("floor", "sweep", "sweep_and_forward", "sweep_no_adam_division")
        assert all(found[f"{k}_us_per_step"] > 0 for k in kinds)
    assert record["command"].endswith("--out " + str(tmp_path)) and record["machine"]["cpu_count"] >= 1
    rng = np.random.default_rng(3)
    n = 5
    w, pre, post = rng.normal(size=(n, n)), rng.random(n), rng.normal(size=n)
    h = np.array([0.3, 0.9, 0.1, 0.999, 0.001, 1e-3, 1.2, 1e-8, 0.0])
    e1, e2 = rng.normal(size=(n, n)), None
    e2 = e1.copy()
    m, v = np.zeros(n * n), np.zeros(n * n)
    rec_sweep(w.copy(), e1, m, v, post, pre, np.zeros((0, 0)), np.zeros((0, n)), np.zeros(n), h, False, *NO_FORWARD)
    script.sweep_without_division(w.copy(), e2, np.zeros(n * n), pre, post, h)
    np.testing.assert_allclose(e2, e1, rtol=1e-14)


def test_net_profile_times_every_part_of_a_learned_w_rec_episode(tmp_path, monkeypatch):
    """scripts/net_profile.py: the parts add up to the episodes' time, acting's kernel is inside acting, and the
    fraction of neurons acting's product read is a fraction (ALIF with W_in learned, float32, as the bench runs it)."""
    import json

    from tests.conftest import ROOT, load_script

    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    script = load_script("net_profile")
    script.main(["--episodes", "2", "--warmup", "1", "--layouts", "alif_in_f32_1agent", "--out", str(tmp_path),
                 "network.num_neurons=24"])  # fmt: skip
    record = json.loads((tmp_path / "net_profile.json").read_text())
    found = record["layouts"]["alif_in_f32_1agent"]
    parts = {name: part["us_per_replayed_step"] for name, part in found["parts"].items()}
    assert set(parts) == {"act_kernel", "acting", "replay", "zero_step", "other"}
    assert sum(parts[p] for p in ("acting", "replay", "zero_step", "other")) == pytest.approx(
        found["us_per_replayed_step"], rel=1e-3
    )
    assert 0 < parts["act_kernel"] < parts["acting"] and found["env_steps"] > 0 and found["replayed_steps"] > 0
    assert len(found["active_fraction_per_episode"]) == 2
    assert all(0 <= a <= 1 for a in found["active_fraction_per_episode"])
    assert found["overrides"][-1] == "network.num_neurons=24" and record["machine"]["cpu_count"] >= 1
