"""Runs under load and under signals (issue #17): checkpoints come every checkpoint_wall_s of
wall time however slowly simulated time moves, a SIGKILL after one leaves readable traces,
repeated SIGTERMs still leave the final partial traces whole, and the summary tells the truth
(queue lengths, the reason a run stopped)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest

from dtoee.run import reason_of, run_isolated, run_scenario

from .scenarios import scenario

# One server, radio off: 20,000 tasks/s against a 50 tasks/s server. Simulated time crawls
# (every arrival is a Python event) while the queue grows without bound.
OVERLOAD = dict(
    simulation={"duration_s": 1000.0, "drain_s": 1.0, "seed": 3, "progress": False},
    radio={"enabled": False},
    nodes=[{"name": "solo", "stages": [1, 2, 3]}],
    ue_groups=[{"node": "solo", "count": 1, "rate_per_s": 2e4}],
    policy={"thresholds": {"solo": [0.0, 0.0, 0.0]}},
)


def start(out: Path, checkpoint_wall_s: float, **sections):
    """Fork a child running the overloaded scenario (allow_large: it is killed long before
    its 2e7 expected tasks would fill the memory)."""
    sc = scenario(**{**OVERLOAD, "simulation": {**OVERLOAD["simulation"], "checkpoint_wall_s": checkpoint_wall_s},
                     **sections})
    process = multiprocessing.get_context("fork").Process(
        target=lambda: run_scenario(sc, out, progress=False, allow_large=True))
    process.start()
    return process


def wait_for(path: Path, process, timeout_s: float = 120.0) -> None:
    deadline = time.time() + timeout_s
    while not path.exists() and process.is_alive() and time.time() < deadline:
        time.sleep(0.02)
    assert path.exists(), f"{path.name} never appeared"


def temporary_files(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.ns3
def test_checkpoints_keep_wall_time_under_overload_and_survive_sigkill(ns3_session, tmp_path):
    checkpoint_wall_s = 1.0
    process = start(tmp_path, checkpoint_wall_s)
    try:
        wait_for(tmp_path / "summary.json", process)
        first = json.loads((tmp_path / "summary.json").read_text())
        assert first["partial"] is True and first["partial_reason"].startswith("checkpoint")
        # The run's own clock: the first checkpoint came within 2 x checkpoint_wall_s of the start.
        assert checkpoint_wall_s <= first["run_wall_s"] <= 2 * checkpoint_wall_s, first["run_wall_s"]
        assert first["simulated_s"] < 50.0  # the overload is real: simulated time crawls
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.join(30)
    assert process.exitcode == -signal.SIGKILL
    summary = json.loads((tmp_path / "summary.json").read_text())
    tasks = pd.read_parquet(tmp_path / "tasks.parquet")
    hops = pd.read_parquet(tmp_path / "hops.parquet")
    assert summary["partial"] is True and summary["tasks_generated"] > 0
    assert len(tasks) >= summary["tasks_generated"] and len(hops) > 0


@pytest.mark.ns3
def test_checkpoint_comes_on_time_when_the_load_surges(ns3_session, tmp_path):
    """1 task/s, then 20,000 tasks/s from 20 s on: the quiet start has stretched the check's
    simulated step, and the surge must not stretch the wait for a checkpoint with it."""
    process = start(tmp_path, 1.0, ue_groups=[{"node": "solo", "count": 1, "rate_per_s": 1.0}],
                    events=[{"at_s": 20.0, "kind": "ue_rate", "ue_group": 0, "rate_per_s": 2e4}])
    try:
        wait_for(tmp_path / "summary.json", process)
        first = json.loads((tmp_path / "summary.json").read_text())
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.join(30)
    assert first["simulated_s"] > 20.0 and first["tasks_generated"] > 100  # written under the surge
    assert 1.0 <= first["run_wall_s"] <= 2.0, first["run_wall_s"]


@pytest.mark.ns3
def test_repeated_sigterms_leave_whole_partial_traces(ns3_session, tmp_path):
    process = start(tmp_path, 0.5)
    try:
        wait_for(tmp_path / "summary.json", process)  # running: a checkpoint was written
        time.sleep(1.0)  # a larger task table: the final write takes a while
        # What `timeout` and container stops do: SIGTERM, then more SIGTERMs.
        while process.is_alive():
            os.kill(process.pid, signal.SIGTERM)
            process.join(0.005)
    finally:
        if process.is_alive():
            os.kill(process.pid, signal.SIGKILL)
        process.join(30)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["partial"] is True
    assert summary["partial_reason"] == "Terminated: SIGTERM"
    tasks = pd.read_parquet(tmp_path / "tasks.parquet")
    assert len(tasks) == summary["tasks_generated"] > 0
    assert len(pd.read_csv(tmp_path / "tasks.csv", low_memory=False)) == len(tasks)
    hops = pd.read_parquet(tmp_path / "hops.parquet")
    assert set(hops["task_id"]) <= set(tasks["task_id"])
    assert temporary_files(tmp_path) == []


def test_partial_reason_is_the_reason_not_cppyys_wrapper():
    wrapped = TypeError("static void ns3::Simulator::Run() =>\n    Terminated: SIGTERM")
    assert reason_of(wrapped) == "Terminated: SIGTERM"
    assert reason_of(RuntimeError("stage blew up")) == "RuntimeError: stage blew up"
    assert "\n" not in reason_of(ValueError("two\nlines"))


@pytest.mark.ns3
def test_max_queue_length_never_exceeds_the_capacity(ns3_session, tmp_path):
    """A stage that finishes and continues on the same node re-enters its queue while the
    queue is full and the server just freed: it is admitted and served at once, so the
    queue never holds more than queue_capacity tasks."""
    sc = scenario(
        simulation={"duration_s": 4.0, "drain_s": 1.0, "seed": 2, "progress": False},
        radio={"enabled": False},
        model={"family": "mlp", "num_stages": 3, "stage_latency_s": [0.02, 0.02, 0.02]},
        nodes=[{"name": "solo", "stages": [1, 2, 3], "queue_capacity": 2}],
        ue_groups=[{"node": "solo", "count": 1, "rate_per_s": 60.0}],
        policy={"thresholds": {"solo": [1.0, 1.0, 0.0]}},  # every task runs all three stages here
    )
    summary = run_isolated(sc, tmp_path)
    assert summary["loss_reasons"].get("queue_full", 0) > 0  # the capacity was reached
    assert summary["max_queue_length_by_node"]["solo"] == 2
    hops = pd.read_parquet(tmp_path / "hops.parquet")
    services = hops[hops["kind"] == "service"]
    # Waiting tasks at each enqueue instant, from the hops: enqueued before and not yet started.
    enqueue = services["enqueue_s"].to_numpy()
    start_s = services["start_s"].to_numpy()
    waiting = [int(((enqueue <= t) & (start_s > t)).sum()) for t in enqueue]
    assert max(waiting) <= 2


@pytest.mark.ns3
def test_a_run_whose_traces_cannot_be_written_says_so(ns3_session, tmp_path):
    """Past the CLI's check (run_scenario called directly on a file): the failure names the
    writing, not a run whose "partial traces" would be nowhere."""
    from dtoee.run import RunFailed

    blocker = tmp_path / "taken"
    blocker.write_text("")
    sc = scenario(**{**OVERLOAD, "simulation": {"duration_s": 0.2, "drain_s": 0.1, "progress": False}})
    with pytest.raises(RunFailed, match="TracesNotWritten"):
        run_isolated(sc, blocker)


def test_a_failed_write_leaves_no_temporary_file_and_keeps_the_old_one(tmp_path):
    from dtoee.trace import _atomic

    target = tmp_path / "tasks.csv"
    target.write_text("old, whole\n")

    def half_then_fail(path: Path) -> None:
        path.write_text("half a fi")
        raise KeyboardInterrupt  # what a signal did midway before signals stopped the run instead

    with pytest.raises(KeyboardInterrupt):
        _atomic(target, half_then_fail)
    assert target.read_text() == "old, whole\n"
    assert temporary_files(tmp_path) == []
