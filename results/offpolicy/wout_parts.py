"""Where the read-out's norm sits: ||W_out||^2 = O ||mean_a W_out[a]||^2 + sum_a ||W_out[a] - mean||^2.

The action-mean part adds the same number to every action's logit, so it cannot change the softmax policy; only the
centred part can. Reads the last checkpoint of each run directory given and writes one JSON (per run: mean over
agents of both norms and of the whole norm, per-agent values too).

    python results/offpolicy/wout_parts.py --out results/offpolicy/wout_parts.json RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from lfcs import checkpoint


def parts(w_out: torch.Tensor) -> dict[str, list[float]]:
    """w_out (B, O, N) -> per agent: whole norm, action-mean norm sqrt(O) ||mean||, centred norm."""
    mean = w_out.mean(1, keepdim=True)  # (B, 1, N)
    whole = torch.linalg.vector_norm(w_out.flatten(1), dim=1)
    common = torch.linalg.vector_norm(mean.flatten(1), dim=1) * w_out.shape[1] ** 0.5
    centred = torch.linalg.vector_norm((w_out - mean).flatten(1), dim=1)
    return {"whole": whole.tolist(), "action_mean": common.tolist(), "centred": centred.tolist()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    result = {"command": " ".join(sys.argv), "runs": {}}
    for run in args.runs:
        per_agent = {"whole": [], "action_mean": [], "centred": []}
        episode = None
        for path in sorted((run / "checkpoints").glob("*.pt")):
            state = checkpoint.load(path)
            episode = int(state["history"].shape[0])
            for key, values in parts(state["new_policy"]["w_out"]).items():
                per_agent[key] += values
        means = {key: sum(v) / len(v) for key, v in per_agent.items()}
        result["runs"][str(run)] = {"episode": episode, "mean_over_agents": means, "per_agent": per_agent}
        print(f"{run}: episode {episode}, " + ", ".join(f"{k} {v:.1f}" for k, v in means.items()))
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
