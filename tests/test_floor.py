"""The learned-W_rec sweep (lfcs/backends/floor.py) against the three loops it replaced, bit for bit in float64; the
vectorised recurrent input against _dot; float32 kernels' subnormal flushing switched on and off around each call."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lfcs.backends import compiled, kernels
from lfcs.backends.floor import rec_sweep
from lfcs.running.agents import AgentGroup
from tests.conftest import SMALL, make_cfg

BETA1, BETA2, EPS, STEP_SIZE, INV_BIAS2 = 0.9, 0.999, 1e-5, 1.5e-4, 1.7


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
    rec_sweep(got[0], got[1], got[2], got[3], post, pre, eps_v, eps_a, beta, h, pair_after)
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
        assert all(found[f"{k}_us_per_step"] > 0 for k in ("floor", "sweep", "sweep_no_adam_division"))
    assert record["command"].endswith("--out " + str(tmp_path)) and record["machine"]["cpu_count"] >= 1
    rng = np.random.default_rng(3)
    n = 5
    w, pre, post = rng.normal(size=(n, n)), rng.random(n), rng.normal(size=n)
    h = np.array([0.3, 0.9, 0.1, 0.999, 0.001, 1e-3, 1.2, 1e-8, 0.0])
    e1, e2 = rng.normal(size=(n, n)), None
    e2 = e1.copy()
    m, v = np.zeros(n * n), np.zeros(n * n)
    rec_sweep(w.copy(), e1, m, v, post, pre, np.zeros((0, 0)), np.zeros((0, n)), np.zeros(n), h, False)
    script.sweep_without_division(w.copy(), e2, np.zeros(n * n), pre, post, h)
    np.testing.assert_allclose(e2, e1, rtol=1e-14)
