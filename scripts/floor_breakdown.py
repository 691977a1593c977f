"""Where a learned-W_rec replayed step's time goes beside its memory-traffic floor (issue 23's diagnosis).

python scripts/floor_breakdown.py [--n 500] [--steps 400] [--repeats 5] [--out results/bench]

For N x N learned W_rec at the fast timescale (``experiment=masked_cartpole_rec``), per replayed step and agent, in
float64 and float32, medians of ``--repeats`` alternations, one process, one thread:
  floor: ``lfcs.backends.floor.touch_words`` over the bytes of W_rec, its trace and Adam's two moments (what
         ``scripts/bench_net.py`` counts for W_rec);
  sweep: ``lfcs.backends.floor.rec_sweep`` alone on arrays of that size: the trace, D and Adam's step, in one pass;
  sweep_and_forward: the same with the next step's recurrent input taken row by row in the sweep, as training runs it;
  sweep_no_adam_division: the same pass with Adam's step replaced by ``w += step m`` (no square root, no division),
         which is not lf-cs's rule and is timed only to tell memory traffic from Adam's per-element arithmetic.
The bench's training time per replayed step (``net_rec_*_1agent``) minus ``sweep`` is the rest of the step: the
forward pass (W_rec's read included), W_out's update, acting. Writes OUT/floor_breakdown.json with the machine and
commit; progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from bench_record import git_state, machine  # scripts/, beside this file
from numba import njit

from lfcs.backends.floor import rec_sweep, touch_words
from lfcs.running.scripting import OneLineParser, integer, output_dir

ROOT = Path(__file__).resolve().parents[1]


@njit(cache=True, error_model="numpy")
def sweep_without_division(w_rec, elig, m, pre, post, h):
    """rec_sweep's memory traffic with Adam's step reduced to w -= step m (no sqrt, no division; not the rule)."""
    n = w_rec.shape[0]
    for j in range(n):
        w_j, e_j, m_j = w_rec[j], elig[j], m[j * n : j * n + n]
        for k in range(n):
            e_k = h[1] * e_j[k] + post[j] * pre[k]
            g = -(h[0] * e_k)
            m_k = m_j[k] + h[2] * (g - m_j[k])
            m_j[k] = m_k
            w_j[k] = w_j[k] - h[5] * m_k
            e_j[k] = e_k


def measure(n: int, steps: int, repeats: int, dtype: str) -> dict:
    rng = np.random.default_rng(0)
    kind = np.dtype(dtype)
    w, e = rng.normal(0, 0.5, (n, n)).astype(kind), np.zeros((n, n), kind)
    m, v = np.zeros(n * n, kind), np.zeros(n * n, kind)
    pre, post = rng.random(n).astype(kind), (rng.normal(0, 0.1, n)).astype(kind)
    h = np.array([0.1, 0.9, 0.1, 0.999, 0.001, 1e-4, 1.0 / math.sqrt(1 - 0.999), 1e-8, 0.0], dtype=kind)
    empty_v, empty_a, beta = np.zeros((0, 0), kind), np.zeros((0, n), kind), np.zeros(n)
    words = np.zeros((1, 4 * n * n * kind.itemsize // 8), dtype=np.uint64)
    counts = np.array([steps], dtype=np.int64)
    none = (np.zeros(0, kind), np.zeros(0), np.zeros(4))  # no next-step product
    forward = (rng.random(n).astype(kind), np.zeros(n), np.zeros(n - n % 4 + 4))  # s_next, rec_next, partial
    cases = {
        "floor": lambda: touch_words(words, counts),
        "sweep": lambda: [
            rec_sweep(w, e, m, v, post, pre, empty_v, empty_a, beta, h, False, *none) for _ in range(steps)
        ],
        "sweep_and_forward": lambda: [
            rec_sweep(w, e, m, v, post, pre, empty_v, empty_a, beta, h, False, *forward) for _ in range(steps)
        ],
        "sweep_no_adam_division": lambda: [sweep_without_division(w, e, m, pre, post, h) for _ in range(steps)],
    }
    for run in cases.values():  # compile and warm the caches
        counts[0] = 2
        run()
    counts[0] = steps
    times: dict[str, list[float]] = {name: [] for name in cases}
    for repeat in range(repeats):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) / steps * 1e6)
        print(f"floor_breakdown: {dtype} repeat {repeat + 1}/{repeats}", file=sys.stderr, flush=True)
    found = {f"{name}_us_per_step": round(statistics.median(t), 2) for name, t in times.items()}
    ratios = {"sweep": "sweep", "sweep_and_forward": "sweep_and_forward", "no_division": "sweep_no_adam_division"}
    for key, case in ratios.items():  # key_over_floor: that case's time over the floor's
        found[f"{key}_over_floor"] = round(found[f"{case}_us_per_step"] / found["floor_us_per_step"], 3)
    found["bytes_per_step"] = 4 * n * n * kind.itemsize
    return found


def parse(argv: list[str]) -> argparse.Namespace:
    parser = OneLineParser(prog="floor_breakdown.py", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=integer(2), default=500, help="N: W_rec is N x N")
    parser.add_argument("--steps", type=integer(1), default=400, help="replayed steps per measurement")
    parser.add_argument("--repeats", type=integer(1), default=5)
    parser.add_argument("--out", type=output_dir, default=None, help="writes OUT/floor_breakdown.json")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse(argv)
    found = {dtype: measure(args.n, args.steps, args.repeats, dtype) for dtype in ("float64", "float32")}
    record = {"n": args.n, "steps": args.steps, "repeats": args.repeats, **found, "machine": machine(),
              "code": git_state(ROOT), "command": " ".join(["python scripts/floor_breakdown.py", *argv])}  # fmt: skip
    print(json.dumps(found))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "floor_breakdown.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
