"""Per-task input sizes on a real ns-3 LTE run: every task uploads exactly the bytes drawn for
it, and the pcap of each site's core link (PGW to server) accounts for all of them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dtoee.run import run_isolated
from ns3_glue.build import load_glue
from ns3_glue.pcap import read_pcap

from .scenarios import scenario

pytestmark = pytest.mark.ns3

FRAMES = {"distribution": "lognormal", "median": 60_000, "sigma": 0.6, "low": 20_000, "high": 150_000}


def frames_scenario(**sections):
    base = {"simulation": {"duration_s": 2.5, "drain_s": 4.0, "seed": 1, "progress": False},
            "ue_groups": [{"node": "bs0", "count": 2, "rate_per_s": 3.0, "radius_m": 200.0},
                          {"node": "bs2", "count": 2, "rate_per_s": 3.0, "radius_m": 200.0}],
            "workload": {"input_bytes": FRAMES}, "output": {"pcap": True}}
    return scenario(**{**base, **sections})


@pytest.fixture(scope="module")
def frames_run(ns3_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("frames")
    summary = run_isolated(frames_scenario(), out)
    return out, summary


def test_each_task_uploads_its_drawn_size(frames_run):
    out, summary = frames_run
    tasks = pd.read_parquet(out / "tasks.parquet")
    hops = pd.read_parquet(out / "hops.parquet")
    assert summary["counts_by_status"]["completed"] == len(tasks) > 8
    sizes = tasks.set_index("task_id")["input_bytes"]
    assert sizes.nunique() == len(sizes)  # really per task
    assert sizes.between(20_000, 150_000).all()
    uplinks = hops[hops["kind"] == "uplink"].set_index("task_id")
    assert len(uplinks) == len(tasks)
    assert (uplinks["bytes"] == sizes.loc[uplinks.index]).all()
    # The traced radio figures are the uplink and result hops' own durations.
    results = hops[hops["kind"] == "result"].set_index("task_id")
    traced = tasks.set_index("task_id")
    assert np.allclose(traced.loc[uplinks.index, "uplink_s"], uplinks["end_s"] - uplinks["start_s"])
    assert np.allclose(traced.loc[results.index, "downlink_s"], results["end_s"] - results["start_s"])
    assert (traced["ue_distance_m"] > 0).all() and (traced["ue_distance_m"] <= 200.0).all()
    assert summary["input_bytes_mean"] == pytest.approx(tasks["input_bytes"].mean())


def test_core_link_pcap_accounts_for_every_uploaded_byte(frames_run):
    out, _ = frames_run
    _, glue = load_glue()
    tasks = pd.read_parquet(out / "tasks.parquet")
    for node in ("bs0", "bs2"):
        capture = read_pcap(out / "pcap" / f"core_{node}_at_pgw.pcap")
        from_ues = capture[(capture["protocol"] == 6) & capture["src"].str.startswith("7.")]
        # Each message is a 16-byte frame header plus its payload; the core link loses nothing.
        expected = int((tasks.loc[tasks["entry_node"] == node, "input_bytes"] + glue.kHeaderBytes).sum())
        assert expected > 0
        assert int(from_ues["payload_bytes"].sum()) == expected, node


def test_same_seed_same_sizes_for_another_policy(ns3_session, frames_run, tmp_path):
    """Common random numbers: the sizes come from their own stream, so a run with another
    policy (other routing and exits) draws the same size for each task."""
    out, _ = frames_run
    other = frames_scenario(policy={"default_threshold": 0.0}, output={"pcap": False})
    run_isolated(other, tmp_path)
    a = pd.read_parquet(out / "tasks.parquet")[["ue", "created_s", "input_bytes"]]
    b = pd.read_parquet(tmp_path / "tasks.parquet")[["ue", "created_s", "input_bytes"]]
    pd.testing.assert_frame_equal(a, b)
