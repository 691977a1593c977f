"""scripts/reference_table.py: the reference table copies each task's report (report.py's own output) row by row."""

from __future__ import annotations

import csv

from tests.conftest import lfcs_run, run_script


def test_the_table_holds_every_task_s_report_rows_and_refuses_a_folder_without_one(tmp_path):
    def steps(episode: int) -> dict:  # every row 10 env steps at 100 steps/s
        return {"env_steps": 10 * episode, "sps_total": 100.0}

    for task, finals in [("easy", [10.0, 20.0, 30.0, 40.0]), ("hard", [1.0, 2.0, 3.0, 5.0])]:
        lfcs_run(tmp_path / "runs" / task / "learner", len(finals), 100, lambda agent, _, f=finals: f[agent], steps)
        out = tmp_path / "results" / task
        done = run_script("scripts/report.py", str(tmp_path / "runs" / task), "--threshold", "15", "--reps", "50",
                          "--out", str(out))  # fmt: skip
        assert done.returncode == 0, done.stderr
    tasks = [str(tmp_path / "results" / t) for t in ("easy", "hard")]
    done = run_script("scripts/reference_table.py", *tasks, "--out", str(tmp_path / "table"))
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "table" / "table.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["task"], r["n_seeds"], r["budget"], r["threshold"]) for r in rows] == [
        ("easy", "4", "100", "15.0"),
        ("hard", "4", "100", "15.0"),
    ]
    assert [float(r["iqm"]) for r in rows] == [25.0, 2.5]  # the mean of the middle two seeds
    assert rows[0]["seeds_reached_threshold"] == "3" and rows[1]["seeds_reached_threshold"] == "0"
    assert float(rows[0]["wall_s_per_million_steps"]) == 1e6 / 100.0  # every row 10 steps at 100 steps/s
    table = (tmp_path / "table" / "table.md").read_text().splitlines()
    assert len(table) == 4 and "| easy | `learner` | 4 | 100 | 25.0 [" in table[2] and "never (0/4)" in table[3]
    before = sorted(p.name for p in (tmp_path / "table").iterdir())
    refused = run_script("scripts/reference_table.py", str(tmp_path / "runs"), "--out", str(tmp_path / "table"))
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "tasks" in refused.stderr and "report.csv" in refused.stderr
    assert sorted(p.name for p in (tmp_path / "table").iterdir()) == before
