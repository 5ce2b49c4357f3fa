"""scenarios/city_vision.toml on real ns-3 LTE, shortened: camera frames make the radio matter.

Both runs share a seed, so they see the same arrivals and the same frame sizes (common
random numbers): only the bandwidth differs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dtoee.config import load_scenario
from dtoee.run import run_isolated
from ns3_glue.build import load_glue
from ns3_glue.pcap import read_pcap

pytestmark = pytest.mark.ns3

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "city_vision.toml"
# Short: 4 s of arrivals, 3 cameras per cell (cell centre to edge as in the file) sending a
# frame per second each, so the crowded-cell load stays while the run stays small.
SHORT = ["simulation.duration_s=4.0", "simulation.warmup_s=0.5", "simulation.drain_s=5.0",
         "simulation.progress=false", "simulation.checkpoint_wall_s=0"] + \
        [f"ue_groups.{g}.{key}" for g in range(4) for key in ("count=3", "rate_per_s=1.0")]


@pytest.fixture(scope="module")
def by_bandwidth(ns3_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("city_vision")
    runs = {}
    for rb in (25, 50):
        pcap = "true" if rb == 25 else "false"
        scenario = load_scenario(SCENARIO, SHORT + [f"radio.bandwidth_rb={rb}", f"output.pcap={pcap}"])
        out = root / f"rb{rb}"
        run_isolated(scenario, out)
        runs[rb] = out
    return runs


def _uplinks(out: Path) -> pd.Series:
    tasks = pd.read_parquet(out / "tasks.parquet")
    return tasks.set_index("task_id")["uplink_s"].dropna()


def test_more_bandwidth_shortens_the_uplink(by_bandwidth):
    narrow, wide = _uplinks(by_bandwidth[25]), _uplinks(by_bandwidth[50])
    assert len(narrow) > 30 and len(wide) > 30
    assert not np.array_equal(narrow.to_numpy(), wide.reindex(narrow.index).to_numpy())
    assert stats.ks_2samp(narrow, wide).pvalue < 0.05  # different distributions
    assert wide.mean() < 0.9 * narrow.mean()
    # The same frames, task for task: most uploads are faster at 50 RBs.
    common = narrow.index.intersection(wide.index)
    assert (wide.loc[common] < narrow.loc[common]).mean() > 0.5


def test_city_vision_uplink_bytes_are_the_frames_and_each_core_pcap_accounts_for_them(by_bandwidth):
    out = by_bandwidth[25]
    tasks = pd.read_parquet(out / "tasks.parquet")
    hops = pd.read_parquet(out / "hops.parquet")
    uplinks = hops[hops["kind"] == "uplink"].set_index("task_id")["bytes"]
    assert (uplinks == tasks.set_index("task_id").loc[uplinks.index, "input_bytes"]).all()
    assert tasks["input_bytes"].between(30_000, 200_000).all()
    # Frames on the wire: everything that reached a server through its core link, per site.
    # Tasks whose upload was still under way at the stop may have sent part of their bytes.
    _, glue = load_glue()
    arrived = tasks[tasks["task_id"].isin(uplinks.index)]
    still_uploading = tasks[~tasks["task_id"].isin(uplinks.index)]
    for node in sorted(tasks["entry_node"].unique()):
        capture = read_pcap(out / "pcap" / f"core_{node}_at_pgw.pcap")
        carried = int(capture.loc[(capture["protocol"] == 6) & capture["src"].str.startswith("7."), "payload_bytes"].sum())
        complete = int((arrived.loc[arrived["entry_node"] == node, "input_bytes"] + glue.kHeaderBytes).sum())
        partial = int((still_uploading.loc[still_uploading["entry_node"] == node, "input_bytes"] + glue.kHeaderBytes).sum())
        assert complete <= carried <= complete + partial, node
        if partial == 0:
            assert carried == complete, node


def test_traces_give_delay_against_distance(by_bandwidth):
    tasks = pd.read_parquet(by_bandwidth[25] / "tasks.parquet")
    done = tasks[tasks["status"] == "completed"]
    assert done["ue_distance_m"].between(0, 250).all()
    assert (done["uplink_s"] + done["downlink_s"] < done["delay_s"]).all()
    assert done["ue_distance_m"].nunique() == done["ue"].nunique()  # one distance per UE
