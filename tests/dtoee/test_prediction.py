"""Predicted next to delivered: summary.json carries the system model's figures for the
policy as it ran, and its accuracy (conditional on survival) matches what was delivered."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dtoee.config import load_scenario
from dtoee.run import load_model, run_isolated
from dtoee.seeding import numpy_streams
from dtoee.system_model import predicted_figures, sample_table, system_from_scenario
from optimizer.exit_curves import SampleTable

pytestmark = pytest.mark.ns3


def _drawn_table(scenario, model, num_tasks: int) -> tuple[np.ndarray, SampleTable]:
    """The sample table restricted to the samples the run drew, in task order (the run draws
    them from its own ``samples`` stream, one per task; replaying the stream gives them)."""
    rng = numpy_streams(scenario.simulation.seed, sum(g.count for g in scenario.ue_groups))["samples"]
    full = sample_table(model)
    drawn = np.array([int(rng.integers(full.num_samples)) for _ in range(num_tasks)])
    return drawn, SampleTable(full.confidence[drawn], full.correct[drawn])


@pytest.mark.slow
@pytest.mark.parametrize("family", ["mlp", "vit"])
@pytest.mark.parametrize("policy", ["dtoee-converged", "fixed-threshold-greedy-sed", "random-offloading"])
def test_predicted_accuracy_within_half_a_point_of_delivered(ns3_session, tmp_path, family, policy):
    sc = load_scenario("scenarios/city_small.toml", [
        f"model.family={family}", f"policy.kind={policy}", "simulation.duration_s=20", "simulation.drain_s=5",
        "radio.enabled=false", "simulation.progress=false"])
    summary = run_isolated(sc, tmp_path)
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["predicted"]["accuracy"] == pytest.approx(summary["predicted"]["accuracy"])
    tasks = pd.read_parquet(tmp_path / "tasks.parquet").sort_values("task_id")
    assert (tasks["status"] == "completed").all()
    model = load_model(sc)
    drawn, table = _drawn_table(sc, model, len(tasks))
    assert (tasks["label"].to_numpy() == model.test_labels[drawn]).all()  # the replayed draws are the run's
    from dtoee.policies import build_policy
    from dtoee.run import place_ues, stage_figures

    ues = place_ues(sc, numpy_streams(sc.simulation.seed, sum(g.count for g in sc.ue_groups))["placement"])
    system = system_from_scenario(sc, model, ues, stage_figures(sc, model))
    on_drawn = predicted_figures(system, build_policy(sc, system), table)
    delivered = tasks["correct"].mean()
    # the model on the samples the run drew: only routing randomness is left
    assert abs(100 * (delivered - on_drawn["accuracy"])) <= 0.5, (delivered, on_drawn["accuracy"])
    # the summary's prediction is over the whole split: sampling noise of ~n tasks on top
    standard_error = np.sqrt(delivered * (1 - delivered) / len(tasks))
    assert abs(delivered - summary["predicted"]["accuracy"]) <= 0.005 + 3 * standard_error
    assert summary["prediction_error"]["accuracy_pts"] == pytest.approx(
        100 * (summary["accuracy"] - summary["predicted"]["accuracy"]))
