"""The bench's network-bound layouts and their memory-traffic floor (used by scripts/bench.py).

Where the environment costs almost nothing, the network is the cost. Layouts: masked CartPole with learned W_rec
(``experiment=masked_cartpole_rec``: N = 500, lf-cs fast, 2 passes, W_rec learned), float64 and float32, one agent
in one process and 10 agents in one process, and the same with ALIF neurons and W_in learned too (one agent); the
rate is env steps per second of training (``run_episode``).

The floor is measured in the same process, alternated with training: ``lfcs.backends.floor.touch_words`` reads and
writes, once per replayed step, the bytes that the update must touch, agent after agent as a replay pass does; its
rate is the training measurement's env steps over the floor's seconds. Bytes per replayed step and agent:

    itemsize (8 float64, 4 float32) x sum over the learned matrices of (rows x columns x arrays per weight)
    learned matrices: W_out (O x N) always, W_rec (N x N) with learner.learn_rec, W_in (N x I) with learner.learn_in
    arrays per weight, fast timescale: 4, the weight, its eligibility trace E and Adam's two moments, each read and
        written (D = a_t E is one step's number, used inside the sweep); slow timescale, or learner.rec_update=per_pass
        for W_rec and W_in: 2, E and the pass's sum D (the weight and its moments move once per pass)
    e-prop's hidden traces, for W_rec and W_in (lfcs/backends/replay_kernels.py): + eps_a on the
        round(adapt_fraction N) adaptive rows (``network.neuron=alif``), + eps_v (N x columns) with per-neuron tau_m
        (``network.tau_mem_steps=[lo, hi]``), + the pass's sum of e with ``learner.rate_reg``
Not counted: per-neuron vectors (O(N) against O(N^2)), the forward pass's read of W_rec, acting, the env.
"""

from __future__ import annotations

import statistics

EXPERIMENT = "experiment=masked_cartpole_rec"
ALIF_IN = ["network.neuron=alif", "learner.learn_in=true"]  # e-prop's adaptive neurons, W_in learned too
# name -> (overrides after EXPERIMENT, agents in the one process); a new layout is one line
LAYOUTS = {
    "rec_f64_1agent": (["dtype=float64"], 1),
    "rec_f32_1agent": (["dtype=float32"], 1),
    "rec_f64_10agents": (["dtype=float64"], 10),
    "rec_f32_10agents": (["dtype=float32"], 10),
    "alif_in_f64_1agent": (["dtype=float64", *ALIF_IN], 1),
    "alif_in_f32_1agent": (["dtype=float32", *ALIF_IN], 1),
}
QUICK = ("rec_f64_1agent", "rec_f32_10agents", "alif_in_f64_1agent")  # --quick (the test): both dtypes, B > 1, alif


def update_bytes(cfg, n_in: int, n_out: int) -> dict:
    """The bytes one agent's update reads and writes per replayed step (module docstring), with their count."""
    net, learner = cfg.network, cfg.learner
    n, itemsize = int(net.num_neurons), 4 if cfg.dtype == "float32" else 8
    fast = learner.timescale == "fast"
    hidden_fast = fast and learner.get("rec_update", "per_step") == "per_step"
    matrices = {"W_out": (n_out, n, 4 if fast else 2)}
    if learner.learn_rec:
        matrices["W_rec"] = (n, n, 4 if hidden_fast else 2)
    if learner.get("learn_in", False):
        matrices["W_in"] = (n, n_in, 4 if hidden_fast else 2)
    words = {}
    for name, (rows, columns, arrays) in matrices.items():
        extra_rows = 0
        if name != "W_out":
            if net.get("neuron", "lif_box") == "alif":
                extra_rows += round(float(net.adapt_fraction) * n)  # eps_a
            if not isinstance(net.tau_mem_steps, (int, float)):
                extra_rows += n  # eps_v, one per synapse with per-neuron tau_m
            if float(learner.get("rate_reg", 0.0)) > 0:
                extra_rows += n  # the pass's sum of e
        words[name] = (rows * arrays + extra_rows) * columns
    return {"bytes": int(itemsize * sum(words.values())), "words_per_matrix": words, "itemsize": itemsize}


def net_stats(repeats: list[dict]) -> dict:
    """Env steps per second of training and of the floor, from the raw repeats of one network-bound layout.

    Per repeat (processes side by side: all their env steps over the slowest one's seconds, as ``rate``):
    training rate, floor rate, and training's seconds over the floor's (how many times the floor it took)."""

    def steps_rate(processes: list[dict]) -> float:
        return sum(p["env_steps"] for p in processes) / max(p["seconds"] for p in processes)

    train = [steps_rate(r["train"]) for r in repeats]
    floor = [steps_rate(r["floor"]) for r in repeats]
    return {
        "steps_per_s": statistics.median(train),
        "floor_steps_per_s": statistics.median(floor),
        "over_floor": statistics.median(f / t for t, f in zip(train, floor)),
        # the same ratio in CPU-seconds (time.process_time): less sensitive to the load of the moment
        "over_floor_cpu_time": statistics.median(
            sum(p["cpu_seconds"] for p in r["train"]) / sum(p["cpu_seconds"] for p in r["floor"]) for r in repeats
        ),
        "update_bytes_per_step": repeats[0]["train"][0]["update_bytes_per_step"],
        "replayed_per_env_step": statistics.median(
            sum(sum(p["replayed_steps"]) for p in r["train"]) / sum(p["env_steps"] for p in r["train"]) for r in repeats
        ),
    }


def summary_keys(net_layouts: dict) -> dict:
    """The JSON line's keys: net_<layout>_steps_per_s, _floor_steps_per_s, _over_floor and _over_floor_cpu_time."""
    keys = {}
    for name, layout in net_layouts.items():
        keys[f"net_{name}_steps_per_s"] = round(layout["steps_per_s"], 1)
        keys[f"net_{name}_floor_steps_per_s"] = round(layout["floor_steps_per_s"], 1)
        keys[f"net_{name}_over_floor"] = round(layout["over_floor"], 3)
        keys[f"net_{name}_over_floor_cpu_time"] = round(layout["over_floor_cpu_time"], 3)
    return keys
