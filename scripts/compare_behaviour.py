"""Do two versions of lfcs train the same? Runs short configurations on a git ref and on this tree, and compares.

    python scripts/compare_behaviour.py --ref HEAD~3 [--out runs/compare] [--only NAME ...] [--tol 0]

The ref is checked out into a temporary git worktree; both trees run ``scripts/train.py`` with the same overrides
(each with the Python that runs this script) into ``OUT/<ref-sha>/<name>`` and ``OUT/worktree/<name>``. Every
metrics column but the wall-clock ones (``sps``, ``sps_total``) must agree: exactly with ``--tol 0`` (the default,
"bit for bit"), or within an absolute tolerance. Runs of the ref are reused when their folder already holds a
finished ``summary.json`` (a ref's commit never changes), so comparing several later trees against one ref is cheap.
Prints one line per configuration and exits 1 if any differs.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lfcs.running.scripting import OneLineParser, number, output_dir

ROOT = Path(__file__).resolve().parents[1]
WALL_CLOCK = ("sps", "sps_total")
SMALL = ["network.num_neurons=40"]
# name -> overrides: the paper's runs and every beyond-paper knob, each short.
CONFIGS: dict[str, list[str]] = {
    "pong_lfcs_n500": ["experiment=pong100_lfcs", "num_agents=2", "iterations=3"],
    "pong_eprop_n500": ["experiment=pong100_eprop", "num_agents=2", "iterations=3"],
    "pong_lfcs_critic_probe_eval": [
        *SMALL,
        "learner.critic=td",
        "iterations=4",
        "probe_every=2",
        "eval_every=2",
        "eval_episodes=2",
        "log_images_every=2",
    ],  # fmt: skip
    "cartpole_lfcs": ["experiment=cartpole_lfcs", "num_agents=2", "iterations=15"],
    "masked_rec_every_knob": [
        "experiment=masked_cartpole_rec",
        *SMALL,
        "num_agents=2",
        "iterations=15",
        "learner.replay_episodes=3",
        "learner.critic=td",
        "learner.clip=ppo",
        "learner.terminal_credit=true",
        "network.stochastic_spikes=true",
    ],
    "masked_rec_slow_clip_none": [
        "experiment=masked_cartpole_rec",
        *SMALL,
        "iterations=15",
        "learner.timescale=slow",
        "learner.clip=none",
        "learner.n_passes=1",
    ],  # fmt: skip
    "cartpole_float32": ["experiment=cartpole_lfcs", *SMALL, "iterations=15", "dtype=float32"],
    # the learned-W_rec path at the bench's size (issue 23): fused sweep, acting's spike-driven product, both dtypes
    "masked_rec_n500": ["experiment=masked_cartpole_rec", "num_agents=2", "iterations=20"],
    "masked_rec_n500_float32": ["experiment=masked_cartpole_rec", "iterations=20", "dtype=float32"],
    "masked_alif_in_hetero": [
        "experiment=masked_cartpole_rec",
        "iterations=12",
        "network.neuron=alif",
        "learner.learn_in=true",
        "network.tau_mem_steps=[3.0,30.0]",
    ],
    "masked_alif_rate_reg": [
        "experiment=masked_cartpole_rec",
        *SMALL,
        "iterations=12",
        "network.neuron=alif",
        "learner.rate_reg=0.1",
        "learner.rec_update=per_pass",
    ],
    "torch_every_knob": [
        "experiment=masked_cartpole_rec",
        *SMALL,
        "backend=torch",
        "num_agents=2",
        "iterations=6",
        "learner.replay_episodes=2",
        "learner.critic=td",
        "learner.clip=ppo",
        "network.stochastic_spikes=true",
    ],
    "torch_pong": [*SMALL, "backend=torch", "iterations=2"],
}


def run(tree: Path, name: str, out: Path, reuse: bool) -> Path:
    run_dir = out / name
    if reuse and (run_dir / "summary.json").exists():
        return run_dir
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [sys.executable, str(tree / "scripts" / "train.py"), *CONFIGS[name], "progress=false", f"run_dir={run_dir}",
           "hydra.output_subdir=null", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]  # fmt: skip
    # PYTHONPATH: the tree's own lfcs and envs, ahead of the editable install of this checkout.
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"{name} failed in {tree}: {done.stderr.strip().splitlines()[-1:]}")
    return run_dir


def rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv") as handle:
        return [{k: v for k, v in row.items() if k not in WALL_CLOCK} for row in csv.DictReader(handle)]


def differ(old: list[dict], new: list[dict], tol: float) -> str | None:
    """None if every column both versions write agrees (within tol) in every row; else where they differ most.
    A column only the new version writes (added since the ref) is not compared: lfcs keeps each new measurement at
    its "not measured" value for the earlier behaviour, which tests/test_faults.py checks on resume."""
    if len(old) != len(new):
        return f"{len(old)} vs {len(new)} rows"
    worst, where = 0.0, ""
    for i, (a, b) in enumerate(zip(old, new)):
        if not set(a) <= set(b):
            return f"columns missing in the new version: {sorted(set(a) - set(b))}"
        for key in a:
            if a[key] == b[key]:
                continue
            try:
                gap = abs(float(a[key]) - float(b[key]))
            except ValueError:
                return f"row {i} {key}: {a[key]!r} vs {b[key]!r}"
            if math.isnan(gap) or gap > worst:
                worst, where = gap, f"row {i} {key}: {a[key]} vs {b[key]}"
    return None if worst <= tol else f"max gap {worst:.3g} at {where}"


def parse(argv: list[str] | None = None):
    """The arguments, and the commit that --ref names."""
    parser = OneLineParser(prog="compare_behaviour.py", description=__doc__.split("\n")[0])
    parser.add_argument("--ref", required=True, help="git ref of the earlier code (e.g. HEAD~1, a commit)")
    parser.add_argument("--out", type=output_dir, default=ROOT / "runs" / "compare", help="where both trees' runs go")
    parser.add_argument("--only", nargs="*", choices=sorted(CONFIGS), help="configurations to run (default: all)")
    parser.add_argument("--tol", type=number(0), default=0.0, help="largest absolute gap allowed (default 0: exact)")
    args = parser.parse_args(argv)
    args.out = Path(args.out).resolve()  # each train.py runs in its own tree: a relative --out would land inside it
    found = subprocess.run(["git", "rev-parse", "--verify", f"{args.ref}^{{commit}}"], cwd=ROOT, capture_output=True,
                           text=True)  # fmt: skip
    if found.returncode:
        parser.error(f"argument --ref: {args.ref} is not allowed: a commit of this repository (git found none)")
    return args, found.stdout.strip()


def main() -> int:
    args, sha = parse()
    names = args.only or list(CONFIGS)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        old_tree = Path(tmp) / "old"
        subprocess.run(["git", "worktree", "add", "--detach", str(old_tree), sha], cwd=ROOT, check=True,
                       capture_output=True)  # fmt: skip
        try:
            for i, name in enumerate(names, 1):
                begin = time.perf_counter()
                old = run(old_tree, name, args.out / sha[:12], reuse=True)
                new = run(ROOT, name, args.out / "worktree", reuse=False)
                verdict = differ(rows(old), rows(new), args.tol)
                failed += verdict is not None
                took = time.perf_counter() - begin
                print(f"[{i}/{len(names)}] {name}: {'same' if verdict is None else 'DIFFERENT: ' + verdict} "
                      f"({len(rows(new))} rows, {took:.0f} s)", flush=True)  # fmt: skip
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old_tree)], cwd=ROOT, capture_output=True)
    print(f"{len(names) - failed}/{len(names)} configurations agree with {args.ref} ({sha[:12]})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
