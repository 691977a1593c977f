"""What a run logs beyond the curves: throughput of the process, and the objective in the HPARAMS tab."""

from __future__ import annotations

import math

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from lfcs import train
from lfcs.running.logger import OBJECTIVE_TAG, TAGS
from tests.conftest import SMALL, make_cfg, read_metrics


def test_sps_total_and_the_objective_as_an_hparams_metric(tmp_path):
    run_dir = tmp_path / "run"
    summary = train(make_cfg(*SMALL, "num_agents=2", "iterations=2", f"run_dir={run_dir}"))
    rows = read_metrics(run_dir / "metrics.csv", drop=())
    for episode in ("1", "2"):  # the process's total is the sum of its agents' SPS (one group, one clock)
        same = [r for r in rows if r["episode"] == episode]
        assert math.isclose(sum(float(r["sps"]) for r in same), float(same[0]["sps_total"]), rel_tol=1e-9)
        assert len({r["sps_total"] for r in same}) == 1
    assert TAGS["sps_total"][0] == "charts/SPS_total"
    for agent in (0, 1):
        events = EventAccumulator(str(run_dir / "tb" / f"agent_{agent}"))
        events.Reload()
        assert "charts/SPS_total" in events.Tags()["scalars"]
        (objective,) = events.Scalars(OBJECTIVE_TAG)
        assert objective.step == 200 and math.isclose(objective.value, summary["objective"], abs_tol=1e-6)
        content = events.PluginTagToContent("hparams")["_hparams_/experiment"]
        experiment = plugin_data_pb2.HParamsPluginData.FromString(content).experiment
        assert OBJECTIVE_TAG in [m.name.tag for m in experiment.metric_infos]
