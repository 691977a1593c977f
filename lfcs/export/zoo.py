"""The model zoo: one small checkpoint file per trained agent (its pi_ref alone), its eval.json, an index, a README.

A zoo file is an lfcs checkpoint (``lfcs.checkpoint`` format, read with ``weights_only=True``) that holds one
agent: ``agents`` = [id], ``episode``, ``ref_policy`` (each weight with B = 1), the run's ``config`` yaml and a
``zoo`` dict of provenance (plain strings and numbers). Adam state, pi_new, env states, generators and the metric
history stay in the run directory. ``lfcs.export.saved_agent.load_agent`` reads it as it reads a run's checkpoint, so
``scripts/evaluate.py zoo/<file>`` re-evaluates it; its eval.json names the zoo file and its sha256.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import yaml
from omegaconf import OmegaConf

from lfcs import backends, checkpoint
from lfcs.environments import episode_horizon, make_env_from_config
from lfcs.export.evaluate import HELDOUT_ENV_SEED_BASE, SAMPLE_SEED_BASE, to_json
from lfcs.export.saved_agent import SavedAgent
from lfcs.learning.acting import play_episode

METHODS = {"fast": "lfcs", "slow": "eprop"}  # learner.timescale -> method name (conf/learner/*.yaml)


@dataclass
class ZooEntry:
    file: str  # the zoo file's name, e.g. lfcs_seed3.pt
    method: str  # lfcs | eprop (from learner.timescale)
    experiment: str | None  # the run's experiment=... override, where its .hydra/overrides.yaml keeps one
    training_seed: int  # cfg.seed + agent: the seed of its weights, noise and first reset
    agent: int  # global agent id in its run
    training_episodes: int
    source: str  # the run checkpoint it was cut from
    train_command: str | None  # the run's overrides, as a scripts/train.py command line
    size_bytes: int = 0
    sha256: str = ""


def method_of(cfg) -> str:
    timescale = cfg.learner.timescale
    if timescale not in METHODS:
        raise ValueError(f"learner.timescale={timescale!r} names no zoo method: one of {', '.join(METHODS)}")
    return METHODS[timescale]


def run_overrides(run_dir: Path) -> list[str] | None:
    """The overrides a Hydra job was started with (``.hydra/overrides.yaml``), or None where none were kept."""
    path = run_dir / ".hydra" / "overrides.yaml"
    return [str(item) for item in yaml.safe_load(path.read_text()) or []] if path.is_file() else None


def _experiment(overrides: list[str] | None) -> str | None:
    for item in overrides or []:
        key, _, value = item.lstrip("+").partition("=")
        if key == "experiment":
            return value
    return None


def _sources(path: Path) -> tuple[Path, list[Path]]:
    """(run directory, its checkpoint files) of a run directory or of one of its checkpoint files."""
    if path.is_file():
        return (path.parent.parent if path.parent.name == "checkpoints" else path.parent), [path]
    files = checkpoint.checkpoint_files(path)
    if not files:
        raise checkpoint.CheckpointError(f"{path} holds no checkpoints/agents_<a>-<b>.pt: not an lfcs run directory")
    return path, files


def one_agent_state(state: dict, index: int, provenance: dict) -> dict:
    """The zoo checkpoint of the ``index``-th agent of a loaded run checkpoint: pi_ref, config, id, episode (and
    the input normaliser's statistics, only where env.encoding has any)."""
    encoder = {name: tensor[index : index + 1].clone() for name, tensor in state.get("encoder", {}).items()}
    return {
        **({"encoder": encoder} if encoder else {}),
        "agents": [int(state["agents"][index])],
        "episode": int(state["episode"]),
        # clone: a slice would save the whole group's storage
        "ref_policy": {name: tensor[index : index + 1].clone() for name, tensor in state["ref_policy"].items()},
        "config": state["config"],
        "zoo": provenance,
    }


def extract(sources: list[Path], out: Path, prefix: str = "") -> list[ZooEntry]:
    """Write ``out/<prefix><method>_seed<k>.pt`` for every agent of the run directories; refuse duplicate names."""
    planned: dict[str, tuple[ZooEntry, dict, int]] = {}
    for source in sources:
        if not source.exists():
            raise checkpoint.CheckpointError(f"no checkpoint or run directory at {source}")
        run_dir, files = _sources(source)
        overrides = run_overrides(run_dir)
        train_command = None if overrides is None else shlex.join(["python", "scripts/train.py", *overrides])
        for path in files:
            state = checkpoint.load(path)
            cfg = OmegaConf.create(state["config"])
            method = method_of(cfg)
            for index, agent in enumerate(int(a) for a in state["agents"]):
                name = f"{prefix}{method}_seed{int(cfg.seed) + agent}.pt"
                if name in planned:
                    raise ValueError(
                        f"{path} agent {agent} and {planned[name][0].source} agent {planned[name][0].agent} would "
                        f"both be {name}: give the runs separate --name-prefix calls"
                    )
                entry = ZooEntry(
                    name, method, _experiment(overrides), int(cfg.seed) + agent, agent, int(state["episode"]),
                    str(path), train_command,
                )  # fmt: skip
                planned[name] = (entry, state, index)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, (entry, state, index) in sorted(planned.items()):
        written_after = ("size_bytes", "sha256")  # properties of the file itself, known once it is written
        provenance = {k: v for k, v in asdict(entry).items() if v is not None and k not in written_after}
        checkpoint.save_atomic(one_agent_state(state, index, provenance), out / name)
        data = (out / name).read_bytes()
        entry.size_bytes, entry.sha256 = len(data), hashlib.sha256(data).hexdigest()
        entries.append(entry)
    return entries


def eval_name(entry: ZooEntry) -> str:
    return entry.file.removesuffix(".pt") + ".eval.json"


def write_index(out: Path, rows: list[dict], make_command: str, episodes: int, image: str | None = None) -> None:
    """``index.json`` (rows: entry fields plus eval statistics) and ``README.md`` of the zoo directory."""
    index = {"make_command": make_command, "episodes": episodes, "policy": "greedy", "image": image, "files": rows}
    (out / "index.json").write_text(to_json(index))
    (out / "README.md").write_text(readme_text(out, rows, make_command, episodes, image))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def readme_text(out: Path, rows: list[dict], make_command: str, episodes: int, image: str | None = None) -> str:
    lines = [
        "# Model zoo",
        "",
        "One checkpoint per trained agent: its **pi_ref** alone (float64 weights, B = 1), the run's config, agent",
        "id and training episode; no Adam state, pi_new, env states, generators or metrics. Each loads with",
        "`torch.load(path, weights_only=True)` and is read by `scripts/evaluate.py` like a run checkpoint.",
        f"Evaluation: greedy pi_ref, {episodes} held-out episodes (env seed 1,000,000 + i, generator seed",
        "10,000 + i; see `lfcs/export/evaluate.py`), statistics in `<name>.eval.json`, all rows in `index.json`.",
        "",
    ]
    if image:
        lines += [f"![best lf-cs agent]({image})", ""]
    lines += [
        "| file | method | training seed | training episodes | eval mean ± std | IQM | 95 % CI | size |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        low, high = row["ci95"]
        lines.append(
            f"| `{row['file']}` | {row['method']} | {row['training_seed']} | {row['training_episodes']} | "
            f"{_fmt(row['mean'])} ± {_fmt(row['std']).lstrip('+')} | {_fmt(row['iqm'])} | "
            f"[{_fmt(low)}, {_fmt(high)}] | {row['size_bytes'] / 1000:.1f} kB |"
        )
    first = best(rows)["file"] if rows else "FILE.pt"  # the example: the best lf-cs agent
    stem = first.removesuffix(".pt")
    lines += [
        "",
        "Made with (from the repository root):",
        "",
        "```bash",
        make_command,
        "```",
        "",
        "Re-evaluate one file (give `--out`: the default is `eval.json` beside the file); the output is",
        "byte-identical to the stored eval.json:",
        "",
        "```bash",
        f"python scripts/evaluate.py {out / first} --episodes {episodes} --out /tmp/{stem}.eval.json",
        f"cmp /tmp/{stem}.eval.json {out / (stem + '.eval.json')}",
        "```",
        "",
        "Training commands (the Hydra overrides each run kept in `.hydra/overrides.yaml`):",
        "",
    ]
    commands = sorted({row["train_command"] or f"(not kept; see the config in {row['source']})" for row in rows})
    lines += ["```bash", *commands, "```", ""]
    return "\n".join(lines)


def best(rows: list[dict], method: str = "lfcs") -> dict:
    """The row of the best agent of ``method`` (all rows where none is): highest mean, then IQM, then name."""
    pool = [row for row in rows if row["method"] == method] or rows
    return max(pool, key=lambda row: (row["mean"], row["iqm"], [-ord(c) for c in row["file"]]))


def snapshot(saved: SavedAgent, frame: Path | None = None, raster: Path | None = None) -> None:
    """PNGs of held-out episode 0 (greedy, the seeds of lfcs.export.evaluate): the screen at the middle step with
    pi_ref's action bars (lfcs/export/video.py), and the episode's spike raster (lfcs/analysis/observe.py)."""
    from PIL import Image

    from lfcs.analysis.observe import episode_figures, record_hidden
    from lfcs.export.video import FrameRecorder, action_names, compose_frame

    cfg = saved.cfg
    env = FrameRecorder(make_env_from_config(cfg.env, render_mode="rgb_array"))
    env.recording = frame is not None
    generator = torch.Generator().manual_seed(SAMPLE_SEED_BASE)
    buffer, stats = play_episode(
        [env], saved.ref_policy, [generator], episode_horizon(env), cfg.learner.gamma, [HELDOUT_ENV_SEED_BASE],
        backends.select("auto", "cpu"), greedy=True,
    )  # fmt: skip
    length = int(stats["episode_length"][0])
    probs = buffer.ref_probs[:length, 0].numpy()  # (T, O)
    if frame is not None:
        step = length // 2  # screen t is what the agent saw when it chose action t
        names = action_names(env, probs.shape[1])
        caption = f"{saved.path.name}  step {step}"
        image = compose_frame(env.frames[step], probs[step], int(buffer.actions[step, 0]), names, caption)
        frame.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(frame)
    if raster is not None:
        hidden = record_hidden(saved.ref_policy, buffer)
        figures = episode_figures(hidden.z[:length, 0].numpy(), hidden.v[:length, 0].numpy(), probs)
        raster.parent.mkdir(parents=True, exist_ok=True)
        raster.write_bytes(figures["spike_raster"])
    env.close()
