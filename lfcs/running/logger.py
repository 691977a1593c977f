"""Logging of a run: one TensorBoard run per agent, ``metrics.csv``, and a progress bar.

The tag vocabulary is defined once, here; the README documents it from this table.
"""

from __future__ import annotations

import csv
import os
import struct
from pathlib import Path

import torch
from tensorboard.compat.proto.summary_pb2 import Summary
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary
from tqdm.auto import tqdm

# metric key -> (TensorBoard tag, meaning). x-axis of every curve: environment steps of that agent.
TAGS: dict[str, tuple[str, str]] = {
    "episodic_return": ("charts/episodic_return", "sum of rewards of the episode"),
    "reward_mean50": (
        "charts/reward_mean50",
        "mean episodic return over the last 50 episodes (METHOD.md §4)",
    ),
    "episode": ("charts/episode", "episodes completed by the agent (the paper's x-axis)"),
    "episode_length": ("charts/episode_length", "agent steps in the episode"),
    "sps": (
        "charts/SPS",
        "this agent's env steps in the episode over the wall-clock time of its process's episode (all agents of"
        " the process step in lockstep), acting and learning; not the run's total",
    ),
    "sps_total": (
        "charts/SPS_total",
        "env steps of all agents in this agent's process over the same wall-clock time: the process's throughput"
        " (with workers=1 the run's, as CleanRL's SPS; with workers=W the run's is the sum over the W processes)",
    ),
    "mask_fraction": (
        "lfcs/mask_fraction",
        "share of replayed steps whose update the ratio mask switched off",
    ),
    "abs_log_ratio": ("lfcs/abs_log_ratio", "mean |log rho(a_t)| over replayed steps (pi_new vs pi_ref)"),
    "approx_kl": (
        "lfcs/approx_kl",
        "mean (rho - 1) - log rho over replayed steps, a KL(pi_ref||pi_new) estimate",
    ),
    "ref_kl": (
        "lfcs/ref_kl",
        "mean KL(pi_ref || pi_new after the phase) over the new episode's steps, smoothed probabilities: the change"
        " of the acting policy per phase (0 with learner.off_policy=none: not measured)",
    ),
    "old_episode_weight": (
        "lfcs/old_episode_weight",
        "mean over the older stored episodes of the mean over their replayed steps of c_t m_t (truncated behaviour"
        " weight x clip weight, first round): the share of its steps an older episode still contributes (0 with"
        " learner.off_policy=none or no older episode: not measured)",
    ),
    "firing_rate": ("snn/firing_rate", "spikes per neuron per step while acting"),
    "w_out_norm": ("weights/w_out_norm", "Frobenius norm of pi_new's read-out weights W_out"),
}
# Logged only on some episodes, from the row's EXTRAS_KEY dict (the CSV ignores it): key -> (tag, kind, meaning),
# kind one of scalar, scalars ({name: number}, tags <tag>_<name>), image (PNG bytes), histogram (1-D array). Same
# x-axis as TAGS.
EXTRA_TAGS: dict[str, tuple[str, str, str]] = {
    "eval_return_mean": (
        "eval/return_mean",
        "scalar",
        "every eval_every episodes: mean return of pi_ref (greedy) over eval_episodes held-out episodes, the seeds"
        " of scripts/evaluate.py",
    ),
    "eval_return_iqm": ("eval/return_iqm", "scalar", "the same episodes' interquartile mean return"),
    "spike_raster": ("snn/spike_raster", "image", "every log_images_every episodes: pi_ref's spikes in the episode"),
    "membrane_traces": (
        "snn/membrane_traces",
        "image",
        "pre-reset membranes of the first 5 neurons in that episode (dashed: the threshold 0)",
    ),
    "action_probs": ("snn/action_probs", "image", "pi_ref's action probabilities over that episode, stacked"),
    "rho": ("lfcs/rho", "histogram", "rho(a_t) over that episode's first replay pass (pi_new vs pi_ref)"),
    "neuron_firing_rate": ("snn/neuron_firing_rate", "histogram", "spikes per step of each neuron, that episode"),
    "w_out": ("weights/w_out", "histogram", "pi_new's read-out weights W_out after that episode's replay"),
    "intrinsic_dim": (
        "probe/intrinsic_dim",
        "scalar",
        "every probe_every episodes: TwoNN intrinsic dimension of pi_ref's read-out traces r_t over the episode",
    ),
    "cka_ref_new": (
        "probe/cka_ref_new",
        "scalar",
        "linear CKA between pi_ref's and pi_new's read-out traces on that episode's inputs (1: same geometry)",
    ),
    "decode": (
        "probe/decode",
        "scalars",
        "probe/decode_<variable>_<source>: cross-validated ridge R^2 of the env's hidden variable read out of pi_ref's"
        " read-out traces (r), pre-reset membranes (v) or the input alone (input) over the episode (envs that"
        " declare hidden_state(): masked CartPole's x_dot, theta_dot)",
    ),
}
EXTRAS_KEY = "extras"
CSV_COLUMNS = ["agent", "episode", "env_steps", *[k for k in TAGS if k != "episode"]]
# Columns added after checkpoints were written, with the value that a run of the earlier code has in them (the new
# measurement is "not measured" = 0 for every configuration that code could run): older histories are upgraded.
ADDED_COLUMNS = {"ref_kl": 0.0, "old_episode_weight": 0.0}


def upgrade_history(table: torch.Tensor) -> torch.Tensor:
    """A checkpoint's metric history (..., columns) in this version's CSV_COLUMNS order; a history written before
    ADDED_COLUMNS existed gets them at their earlier value. ValueError for any other column count."""
    if table.shape[-1] == len(CSV_COLUMNS):
        return table
    old = [c for c in CSV_COLUMNS if c not in ADDED_COLUMNS]
    if table.shape[-1] != len(old):
        raise ValueError(f"holds {table.shape[-1]} metric columns, this lfcs writes {len(CSV_COLUMNS)}")
    out = table.new_empty((*table.shape[:-1], len(CSV_COLUMNS)))
    for i, column in enumerate(CSV_COLUMNS):
        out[..., i] = ADDED_COLUMNS[column] if column in ADDED_COLUMNS else table[..., old.index(column)]
    return out


MAIN_METRIC = "reward_mean50"
# The run's objective (summary.json), written once at the end into every agent's event file: an HPARAMS metric,
# so that the runs of a sweep sort by result in the HPARAMS tab. Step: the agent's env steps at the end.
OBJECTIVE_TAG = "hparams/objective"


class RunLogger:
    def __init__(
        self,
        run_dir: Path,
        num_agents: int,
        total_episodes: int,
        done_episodes: int,
        history: list[dict],
        hparams: dict,
        config_text: str,
        resume_steps: list[int] | None,
        progress: bool,
    ):
        self.csv_path = run_dir / "metrics.csv"
        # A resumed run keeps exactly the rows its checkpoints hold: rows logged after them are dropped.
        tmp = self.csv_path.with_name("metrics.csv.tmp")
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, CSV_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(history)
        os.replace(tmp, self.csv_path)
        self._csv_handle = open(self.csv_path, "a", newline="")
        self._csv = csv.DictWriter(self._csv_handle, CSV_COLUMNS, extrasaction="ignore")
        self.writers = []
        for agent in range(num_agents):
            # Steps after the checkpoint (logged by a run that died later) are dropped by TensorBoard.
            purge = None if resume_steps is None else resume_steps[agent] + 1
            writer = SummaryWriter(log_dir=str(run_dir / "tb" / f"agent_{agent}"), purge_step=purge)
            # HPARAMS in the same event file as the scalars, so the tab lines up with the runs.
            metric_tags = {OBJECTIVE_TAG: 0.0, TAGS[MAIN_METRIC][0]: 0.0, TAGS["episodic_return"][0]: 0.0}
            for summary in hparams_summary(hparams, metric_tags):
                writer.file_writer.add_summary(summary)
            writer.add_text("config", "```\n" + config_text + "\n```", global_step=0)
            self.writers.append(writer)
        self.latest: dict[int, float] = {}
        self.steps = list(resume_steps or [0] * num_agents)  # env steps of each agent so far
        self.bar = tqdm(total=total_episodes, initial=done_episodes, unit="ep", disable=not progress, smoothing=0.1)

    def log(self, rows: list[dict]) -> None:
        for row in rows:
            writer = self.writers[row["agent"]]
            for key, (tag, _) in TAGS.items():
                writer.add_scalar(tag, row[key], global_step=row["env_steps"])
            for key, value in row.get(EXTRAS_KEY, {}).items():
                self._log_extra(writer, key, value, row["env_steps"])
            self._csv.writerow(row)
            self.latest[row["agent"]] = row[MAIN_METRIC]
            self.steps[row["agent"]] = row["env_steps"]
        self._csv_handle.flush()
        self.bar.update(len(rows))
        mean = sum(self.latest.values()) / max(len(self.latest), 1)
        self.bar.set_postfix({MAIN_METRIC: f"{mean:+.3f}"}, refresh=False)

    @staticmethod
    def _log_extra(writer: SummaryWriter, key: str, value, step: int) -> None:
        tag, kind, _ = EXTRA_TAGS[key]
        if kind == "scalar":
            writer.add_scalar(tag, value, global_step=step)
        elif kind == "scalars":  # {name: number}, one curve each: <tag>_<name>
            for name, number in value.items():
                writer.add_scalar(f"{tag}_{name}", number, global_step=step)
        elif kind == "histogram":
            writer.add_histogram(tag, value, global_step=step)
        else:  # a PNG made where the agent lives: written as it is, not decoded and encoded again
            width, height = struct.unpack(">II", value[16:24])  # the PNG header's IHDR chunk
            image = Summary.Image(height=height, width=width, colorspace=4, encoded_image_string=value)
            writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), global_step=step)

    def log_objective(self, objective: float) -> None:
        """The run's objective as every agent's HPARAMS metric (the tab shows the last value of the tag)."""
        for agent, writer in enumerate(self.writers):
            writer.add_scalar(OBJECTIVE_TAG, objective, global_step=self.steps[agent])

    def close(self) -> None:
        self.bar.close()
        self._csv_handle.close()
        for writer in self.writers:
            writer.close()


def flatten_hparams(cfg: dict, prefix: str = "") -> dict:
    """Config as flat ``a.b`` keys with TensorBoard-friendly values (numbers, strings, bools)."""
    flat = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_hparams(value, name + "."))
        elif isinstance(value, (int, float, str, bool)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat
