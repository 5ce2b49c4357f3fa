"""Real ns-3 runs end to end: conservation, determinism, bytes on the wire."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dtoee.run import run_isolated
from inference import serialize_activation
from ns3_glue.pcap import read_pcap
from ns3_glue.build import load_glue

from .scenarios import scenario

pytestmark = pytest.mark.ns3


@pytest.fixture(scope="module")
def city_runs(ns3_session, tmp_path_factory):
    """The small LTE city run three times: seed 1 twice, seed 2 once."""
    root = tmp_path_factory.mktemp("city")
    runs = {}
    for label, seed in (("a", 1), ("b", 1), ("c", 2)):
        out = root / label
        summary = run_isolated(scenario(simulation={"seed": seed}), out)
        runs[label] = (out, summary)
    return runs


def test_every_task_ends_exactly_once(city_runs):
    out, summary = city_runs["a"]
    tasks = pd.read_parquet(out / "tasks.parquet")
    assert len(tasks) > 20
    assert tasks["task_id"].is_unique
    assert sorted(tasks["task_id"]) == list(range(len(tasks)))
    assert set(tasks["status"]) <= {"completed", "lost", "in_flight"}
    counts = summary["counts_by_status"]
    assert counts["completed"] + counts["lost"] + counts["in_flight"] == summary["tasks_generated"] == len(tasks)
    # Every completed task has exactly one result hop and one uplink hop, in order.
    hops = pd.read_parquet(out / "hops.parquet")
    completed = tasks[tasks["status"] == "completed"]
    assert len(completed) >= 0.9 * len(tasks)
    results = hops[hops["kind"] == "result"].groupby("task_id").size()
    assert (results.reindex(completed["task_id"]).fillna(0) == 1).all()
    uplinks = hops[hops["kind"] == "uplink"]
    assert uplinks["task_id"].is_unique
    assert (completed["delay_s"] > 0).all()
    # Services exit only at the last stage or above the threshold (policy default 0.9).
    services = hops[hops["kind"] == "service"]
    exited = services[services["exited"] == True]  # noqa: E712
    assert ((exited["stage"] == 3) | (exited["confidence"] >= 0.9)).all()
    assert (services.loc[services["exited"] == False, "confidence"] < 0.9).all()  # noqa: E712


def test_summary_matches_trace(city_runs):
    out, summary = city_runs["a"]
    tasks = pd.read_csv(out / "tasks.csv")
    completed = tasks[tasks["status"] == "completed"]
    assert summary["delay_s"]["mean"] == pytest.approx(completed["delay_s"].mean(), rel=1e-6)
    assert summary["accuracy"] == pytest.approx(completed["correct"].mean())
    assert sum(summary["exit_share_by_stage"].values()) == pytest.approx(1.0)
    assert json.loads((out / "summary.json").read_text())["partial"] is False
    # Every arrival and every service completion is one Python callback through the dispatcher;
    # the time they took is part of Simulator::Run's wall time.
    services = pd.read_parquet(out / "hops.parquet").query("kind == 'service'")
    assert summary["python_callbacks"] >= len(tasks) + len(services)
    assert 0 < summary["python_callback_wall_s"] < summary["run_wall_s"]


def test_same_seed_same_trace_other_seed_other_trace(city_runs):
    a = (city_runs["a"][0] / "tasks.csv").read_bytes()
    b = (city_runs["b"][0] / "tasks.csv").read_bytes()
    c = (city_runs["c"][0] / "tasks.csv").read_bytes()
    assert a == b
    assert a != c


def test_offloads_carry_real_activation_bytes_and_pcap_accounts_for_them(ns3_session, mlp_model, tmp_path):
    # Stage 1 only at bs0, stages 2-3 only at bs1: every continuing task crosses bs0 -> bs1.
    sc = scenario(
        radio={"enabled": False},
        nodes=[{"name": "bs0", "stages": [1]}, {"name": "bs1", "stages": [2, 3], "position_m": [500.0, 0.0]}],
        ue_groups=[{"node": "bs0", "count": 2, "rate_per_s": 10.0}],
        output={"pcap": True},
    )
    run_isolated(sc, tmp_path)
    hops = pd.read_parquet(tmp_path / "hops.parquet")
    offloads = hops[hops["kind"] == "offload"]
    assert len(offloads) > 10
    assert set(offloads["stage"]) == {2}
    real_bytes = len(serialize_activation(mlp_model.run_stage(1, mlp_model.sample(0)[0]).activation))
    assert real_bytes == mlp_model.profile[0].activation_bytes
    assert (offloads["bytes"] == real_bytes).all()

    _, glue = load_glue()
    capture = read_pcap(tmp_path / "pcap" / "backhaul_bs0-bs1_at_bs0.pcap")
    bs0_to_bs1 = capture[(capture["protocol"] == 6) & (capture["src"] < capture["dst"])]
    # Each message is one 16-byte frame header plus its payload; no loss, so no retransmits.
    expected = int((offloads["bytes"] + glue.kHeaderBytes).sum())
    sent = capture.groupby(["src", "dst"])["payload_bytes"].sum()
    assert expected in set(sent.astype(int)), (expected, sent.to_dict())
