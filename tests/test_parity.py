"""Golden values: the learner replays the authors' recorded episodes to 1e-10 (METHOD.md §5)."""

from __future__ import annotations

import numpy as np
import pytest

from lfcs.analysis.parity import TOLERANCE, check_file, main
from tests.conftest import GOLDEN_DIR, run_script

GOLDEN = sorted(GOLDEN_DIR.glob("*.npz"))


def test_golden_files_are_there():
    assert len(GOLDEN) >= 6


@pytest.mark.parametrize("backend", ["kernels", "torch"])
@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_file_matches(path, backend):
    errors = check_file(path, backend=backend)
    assert {"W_out_after", "new_probs_first_pass", "mask_first_pass", "rec_grad_sum_first_pass"} <= set(errors)
    assert max(errors.values()) <= TOLERANCE, errors


def test_parity_command_on_all_golden_files():
    result = run_script("scripts/parity.py", *map(str, GOLDEN))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == len(GOLDEN) and all(line.startswith("ok") for line in lines)


def _rewrite(src, dst, episodes=None, drop=(), extra=None, change=None):
    with np.load(src) as npz:
        data = {key: npz[key] for key in npz.files}
    per_episode = data["W_out_before"].shape[0]
    for key in list(data):
        if (
            episodes is not None
            and data[key].ndim >= 1
            and data[key].shape[0] == per_episode
            and key not in ("W_in", "W_rec", "h")
        ):
            data[key] = data[key][episodes]
    for key in drop:
        data.pop(key, None)
    data.update(extra or {})
    if change:
        change(data)
    np.savez(dst, **data)
    return dst


def test_other_files_of_the_schema_pass(tmp_path):
    """A later episode alone, optional keys dropped, an unknown key added: still the schema, still exact."""
    mask = GOLDEN_DIR / "lfcs_fast_mask.npz"
    late = _rewrite(mask, tmp_path / "late.npz", episodes=[2], extra={"comment": np.array("unknown key")})
    bare = _rewrite(
        GOLDEN_DIR / "lfcs_slow_late.npz",
        tmp_path / "bare.npz",
        episodes=[1, 2],
        drop=("W_out_after_episode_end", "episode_reward"),
    )
    assert main([str(late), str(bare)]) == 0


def test_parity_fails_on_a_wrong_file(tmp_path, capsys):
    def perturb(data):
        data["W_out_after"] = data["W_out_after"] + 1e-8

    bad = _rewrite(GOLDEN_DIR / "lfcs_fast_norec.npz", tmp_path / "bad.npz", change=perturb)
    assert main([str(bad)]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_parity_names_missing_keys(tmp_path, capsys):
    broken = _rewrite(GOLDEN_DIR / "lfcs_fast_norec.npz", tmp_path / "broken.npz", drop=("ref_probs",))
    assert main([str(broken)]) == 1
    assert "ref_probs" in capsys.readouterr().out
