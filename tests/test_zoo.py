"""scripts/make_zoo.py: one small pi_ref file per agent, re-evaluated exactly by scripts/evaluate.py, indexed."""

from __future__ import annotations

import json

import pytest
import torch

from lfcs import checkpoint, train
from lfcs.export.zoo import extract, one_agent_state
from tests.conftest import load_script, make_cfg, run_script
from tests.saved_runs import save_groups

LFCS_OVERRIDES = ["experiment=pong100_lfcs", "network.num_neurons=30", "iterations=3", "num_agents=2"]
EPISODES = "3"
ZOO_FILES = ["eprop_seed5.pt", "lfcs_seed0.pt", "lfcs_seed1.pt"]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """A trained 2-agent lf-cs run (with the overrides file a Hydra job keeps), a 1-agent e-prop run of seed 5,
    and the zoo make_zoo.py cut from them."""
    root = tmp_path_factory.mktemp("zoo")
    lfcs_run, eprop_run, out = root / "lfcs_run", root / "eprop_run", root / "zoo"
    train(make_cfg(*LFCS_OVERRIDES, "progress=false", f"run_dir={lfcs_run}"))
    (lfcs_run / ".hydra").mkdir()
    (lfcs_run / ".hydra" / "overrides.yaml").write_text("".join(f"- {item}\n" for item in LFCS_OVERRIDES))
    save_groups(eprop_run, [[0]], "learner=eprop", "seed=5", "network.num_neurons=30")
    args = [str(lfcs_run), str(eprop_run), "--out", str(out), "--episodes", EPISODES]
    frame, raster = root / "frame.png", out / "raster.png"
    made = run_script("scripts/make_zoo.py", *args, "--frame", str(frame), "--raster", str(raster))
    assert made.returncode == 0, made.stderr
    return {"lfcs": lfcs_run, "eprop": eprop_run, "out": out, "frame": frame, "raster": raster, "made": made}


def test_one_small_file_per_agent_that_loads_weights_only(zoo):
    out = zoo["out"]
    assert sorted(p.name for p in out.glob("*.pt")) == ZOO_FILES
    for name in ZOO_FILES:
        assert (out / name).stat().st_size < 100_000
        state = torch.load(out / name, map_location="cpu", weights_only=True)
        assert set(state) == {"format", "agents", "episode", "ref_policy", "config", "zoo"}
        assert all(t.shape[0] == 1 for t in state["ref_policy"].values())
        assert state["zoo"]["file"] == name and "size_bytes" not in state["zoo"]  # a file cannot know its size
    assert "zoo" in zoo["made"].stderr  # the progress bar, on stderr
    assert "lfcs_seed0.pt" in zoo["made"].stdout and "kB" in zoo["made"].stdout


def test_zoo_weights_equal_the_run_checkpoint_bit_for_bit(zoo):
    run_state = torch.load(zoo["lfcs"] / "checkpoints" / "agents_0-1.pt", weights_only=True)
    for index in (0, 1):
        state = torch.load(zoo["out"] / f"lfcs_seed{index}.pt", weights_only=True)
        assert state["agents"] == [index] and state["episode"] == run_state["episode"] == 3
        assert state["config"] == run_state["config"]
        assert set(state["ref_policy"]) == set(run_state["ref_policy"])
        for name, tensor in state["ref_policy"].items():
            expected = run_state["ref_policy"][name][index : index + 1]
            assert tensor.dtype == expected.dtype == torch.float64 and torch.equal(tensor, expected)


def test_evaluate_script_reproduces_the_stored_eval_json_byte_for_byte(zoo, tmp_path):
    out = zoo["out"]
    first = run_script("scripts/evaluate.py", str(out / "lfcs_seed1.pt"), "--episodes", EPISODES,
                       "--out", str(tmp_path / "lfcs_seed1.json"))  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "lfcs_seed1.json").read_bytes() == (out / "lfcs_seed1.eval.json").read_bytes()
    for name in ("lfcs_seed0", "eprop_seed5"):
        argv = [str(out / f"{name}.pt"), "--episodes", EPISODES, "--out", str(tmp_path / f"{name}.json")]
        assert load_script("evaluate").main([*argv, "--no-progress"]) == 0
        assert (tmp_path / f"{name}.json").read_bytes() == (out / f"{name}.eval.json").read_bytes()
    result = json.loads((out / "lfcs_seed1.eval.json").read_text())
    assert result["agent"] == 1 and result["policy"] == "greedy" and len(result["returns"]) == 3
    assert result["checkpoint"]["file"] == "lfcs_seed1.pt"


def test_index_and_readme_list_every_file(zoo):
    out = zoo["out"]
    index = json.loads((out / "index.json").read_text())
    rows = {row["file"]: row for row in index["files"]}
    assert sorted(rows) == ZOO_FILES and index["episodes"] == 3
    assert rows["eprop_seed5.pt"]["method"] == "eprop" and rows["eprop_seed5.pt"]["training_seed"] == 5
    assert rows["lfcs_seed1.pt"]["experiment"] == "pong100_lfcs" and rows["lfcs_seed1.pt"]["agent"] == 1
    assert "experiment=pong100_lfcs" in rows["lfcs_seed1.pt"]["train_command"]
    for name, row in rows.items():
        stored = json.loads((out / row["eval"]).read_text())
        assert row["mean"] == stored["mean"] and row["ci95"] == stored["ci95"]
        assert row["size_bytes"] == (out / name).stat().st_size
    readme = (out / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in ZOO_FILES)
    assert "scripts/make_zoo.py" in readme and "scripts/evaluate.py" in readme and "![best lf-cs agent]" in readme


def test_frame_and_raster_are_png_images(zoo):
    for path in (zoo["frame"], zoo["raster"]):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_two_agents_with_one_name_are_refused(zoo, tmp_path):
    with pytest.raises(ValueError, match="--name-prefix"):
        extract([zoo["lfcs"], zoo["lfcs"]], tmp_path / "zoo")
    assert not (tmp_path / "zoo").exists()  # nothing written
    assert load_script("make_zoo").main([str(tmp_path / "missing"), "--out", str(tmp_path / "z")]) == 2


def test_a_published_size_agent_cut_from_a_ten_agent_group_is_tens_of_kilobytes(tmp_path):
    """500 neurons, 4 inputs, 3 actions in float64: W_in + W_out are 28 kB; the group's other agents stay out."""
    group = {"agents": list(range(10)), "episode": 7, "config": "seed: 0\n"}
    group["ref_policy"] = {"w_in": torch.randn(10, 500, 4, dtype=torch.float64),
                           "w_out": torch.randn(10, 3, 500, dtype=torch.float64)}  # fmt: skip
    checkpoint.save_atomic(one_agent_state(group, 9, {"method": "lfcs"}), tmp_path / "one.pt")
    assert 28_000 < (tmp_path / "one.pt").stat().st_size < 40_000
    state = checkpoint.load(tmp_path / "one.pt")
    assert state["agents"] == [9] and torch.equal(state["ref_policy"]["w_out"][0], group["ref_policy"]["w_out"][9])
