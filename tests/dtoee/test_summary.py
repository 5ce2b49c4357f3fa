"""summarize: which tasks each figure counts (pure pandas, no simulation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dtoee.trace import TASK_COLUMNS, summarize


def _tasks() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for task_id in range(200):
        created = task_id * 0.1  # 0 .. 19.9 s
        status = "completed" if task_id % 10 else ("lost" if task_id % 20 else "in_flight")
        done = status == "completed"
        delay = (0.5 if created < 5.0 else 0.05) + rng.random() * 0.01 if done else np.nan
        stage = 1 if created < 5.0 else 1 + task_id % 3
        rows.append((task_id, f"ue{task_id % 4}", "bs0", created, created + delay if done else np.nan, delay, status,
                     "" if status != "lost" else "timeout", stage if done else 0, "bs0" if done else "",
                     0.9 if done else np.nan, 1, 1 if created >= 5.0 else 2, done and created >= 5.0))
    return pd.DataFrame(rows, columns=TASK_COLUMNS)


@pytest.mark.parametrize("warmup_s", [0.0, 5.0, 12.3])
def test_warmup_leaves_early_tasks_out_of_delay_accuracy_and_exits_but_not_counts(warmup_s):
    tasks = _tasks()
    summary = summarize(tasks, {"bs0": 4.0}, {"bs0": 1}, 20.0, 3, measured_from_s=warmup_s)
    measured = tasks[(tasks["status"] == "completed") & (tasks["created_s"] >= warmup_s)]
    assert summary["tasks_measured"] == len(measured) > 0
    assert summary["delay_s"]["mean"] == pytest.approx(measured["delay_s"].mean())
    assert summary["delay_s"]["p95"] == pytest.approx(np.percentile(measured["delay_s"], 95))
    assert summary["accuracy"] == pytest.approx(measured["correct"].mean())
    shares = measured["exit_stage"].value_counts(normalize=True)
    for stage in ("1", "2", "3"):
        assert summary["exit_share_by_stage"][stage] == pytest.approx(shares.get(int(stage), 0.0))
    # conservation is over every task, warm-up or not
    assert sum(summary["counts_by_status"].values()) == summary["tasks_generated"] == len(tasks)
    assert summary["counts_by_status"] == {"completed": 180, "lost": 10, "in_flight": 10}
    assert summary["utilisation_by_node"]["bs0"] == pytest.approx(0.2)
    # the warm-up tasks were slow and wrong: leaving them out must show
    if warmup_s >= 5.0:
        assert summary["delay_s"]["mean"] < 0.06 and summary["accuracy"] == 1.0
    else:
        assert summary["delay_s"]["mean"] > 0.1 and summary["accuracy"] < 0.8


def test_a_run_too_large_to_predict_says_so_and_still_writes_its_summary(tmp_path, monkeypatch):
    """Above PREDICTION_MAX_NODES the summary's prediction is 'unavailable' with the reason
    (the 1,000-node city); it once crashed the trace writing instead."""
    import json

    import dtoee.run as run
    from dtoee.config import load_scenario

    monkeypatch.setattr(run, "PREDICTION_MAX_NODES", 2)
    sc = load_scenario("scenarios/city_small.toml", [
        "policy.kind=static", "simulation.fidelity=analytic", "radio.enabled=false",
        "simulation.duration_s=2", "simulation.progress=false"])
    run.run_scenario(sc, tmp_path / "run", progress=False)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["predicted"]["unavailable"].startswith("not computed: 4 nodes > 2")
    assert summary["counts_by_status"]["completed"] > 0
