"""Sweeps: grid parsing, tidy results, resumability, identical figures across schedulers."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time

import pandas as pd
import pytest

from dtoee.cli import main
from dtoee.config import ScenarioError
from dtoee.sweep import (expand, flatten_summary, fork_run, is_complete, parse_grid, parse_seeds, read_toml,
                         run_sweep, set_value, sweep_file)

# A tiny scenario: radio off, 3 simulated seconds; a run takes a few seconds.
TINY_TOML = """
name = "tiny"
[simulation]
duration_s = 3.0
drain_s = 2.0
seed = 1
progress = false
[model]
family = "mlp"
num_stages = 3
stage_latency_s = [0.02, 0.025, 0.025]
[radio]
enabled = false
[backhaul]
layout = "line"
rate_bps = 1e8
[[nodes]]
name = "bs0"
stages = [1, 2]
[[nodes]]
name = "bs1"
position_m = [500.0, 0.0]
speed_factor = 2.0
stages = [1, 2, 3]
[[ue_groups]]
node = "bs0"
count = 2
rate_per_s = 5.0
[[ue_groups]]
node = "bs1"
count = 2
rate_per_s = 5.0
[policy]
fixed_threshold = 0.9
"""

FIGURES = ["tasks_generated", "counts_by_status.completed", "counts_by_status.lost", "delay_s.mean", "delay_s.p95",
           "accuracy", "exit_share_by_stage.1", "utilisation_by_node.bs0", "utilisation_by_node.bs1"]


@pytest.fixture(scope="module")
def tiny_toml(tmp_path_factory):
    path = tmp_path_factory.mktemp("scenario") / "tiny.toml"
    path.write_text(TINY_TOML)
    return path


# Parsing and expansion (no ns-3) ----------------------------------------------------------

def test_parse_grid_and_seeds():
    assert parse_grid("radio.bandwidth_rb=25,50") == ("radio.bandwidth_rb", [25, 50])
    assert parse_grid("policy.kind=dtoee,no-early-exit") == ("policy.kind", ["dtoee", "no-early-exit"])
    assert parse_grid('model.stage_latency_s=[0.01,0.02,0.03],[0.02, 0.02, 0.02]')[1] == [[0.01, 0.02, 0.03], [0.02] * 3]
    assert parse_grid("backhaul.rate_bps=1e8,1e9")[1] == [1e8, 1e9]
    assert parse_seeds("1-5") == [1, 2, 3, 4, 5]
    assert parse_seeds("1,3,7") == [1, 3, 7]
    assert parse_seeds("2") == [2]
    for bad in ("5-1", "a", "1,1"):
        with pytest.raises(ScenarioError):
            parse_seeds(bad)
    for bad in ("radio.bandwidth_rb", "=1,2", "radio..x=1", "radio.bandwidth_rb=25,"):
        with pytest.raises(ScenarioError):
            parse_grid(bad)


def test_set_value_wildcard_and_load(tiny_toml):
    data = read_toml(tiny_toml)
    set_value(data, "ue_groups.*.count", 4)
    assert [g["count"] for g in data["ue_groups"]] == [4, 4]
    data["events"] = [{"at_s": 1.0, "kind": "ue_rate", "ue_group": 0, "rate_per_s": 10.0}]
    set_value(data, "load", 2)
    assert [g["rate_per_s"] for g in data["ue_groups"]] == [10.0, 10.0]
    assert data["events"][0]["rate_per_s"] == 20.0
    set_value(data, "nodes.1.speed_factor", 0.5)
    assert data["nodes"][1]["speed_factor"] == 0.5


def test_expand_two_values_two_seeds_gives_four_validated_runs(tiny_toml):
    runs = expand(read_toml(tiny_toml), [parse_grid("radio.bandwidth_rb=25,50")], parse_seeds("1-2"))
    assert [(r.params["radio.bandwidth_rb"], r.seed) for r in runs] == [(25, 1), (25, 2), (50, 1), (50, 2)]
    assert len({r.run_id for r in runs}) == 4
    assert runs[2].scenario.radio.bandwidth_rb == 50 and runs[2].scenario.simulation.seed == 1
    assert not runs[0].scenario.simulation.progress
    with pytest.raises(ScenarioError, match="radio.bandwidth_rb.*seed 1"):
        expand(read_toml(tiny_toml), [parse_grid("radio.bandwidth_rb=25,42")], [1])


def test_bad_grid_stops_before_anything_runs(tiny_toml, tmp_path, capsys):
    code = main(["sweep", str(tiny_toml), "--grid", "radio.bandwidth_rb=25,42", "--out", str(tmp_path / "s")])
    assert code == 2
    assert "radio.bandwidth_rb = 42" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_flatten_summary():
    flat = flatten_summary({"delay_s": {"mean": 0.1}, "exit_share_by_stage": {"1": 0.5}, "stage_latency_s": [1, 2], "seed": 3})
    assert flat == {"delay_s.mean": 0.1, "exit_share_by_stage.1": 0.5, "stage_latency_s": "[1, 2]", "seed": 3}


# Real runs ---------------------------------------------------------------------------------

def _figures(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("run_id").sort_index()[FIGURES]


@pytest.fixture(scope="module")
def pool_sweep(ns3_session, tiny_toml, tmp_path_factory):
    """2 load values x 2 seeds through the CLI on the local pool (2 at a time)."""
    out = tmp_path_factory.mktemp("pool")
    code = main(["sweep", str(tiny_toml), "--grid", "load=1,2", "--seeds", "1-2", "--workers", "2",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    return out


@pytest.mark.ns3
def test_sweep_gives_one_tidy_row_per_run(pool_sweep):
    results = pd.read_parquet(pool_sweep / "results.parquet")
    assert len(results) == 4
    assert list(results[["load", "seed"]].itertuples(index=False, name=None)) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert (results["status"] == "complete").all()
    assert results["delay_s.mean"].notna().all() and results["accuracy"].between(0, 1).all()
    assert len(pd.read_csv(pool_sweep / "results.csv")) == 4
    for run_id in results["run_id"]:
        run_dir = pool_sweep / "runs" / run_id
        assert is_complete(run_dir)
        assert json.loads((run_dir / "run.json").read_text())["run_id"] == run_id
    # More load, more tasks, for both seeds.
    by = results.set_index(["load", "seed"])["tasks_generated"]
    assert by[(2, 1)] > by[(1, 1)] and by[(2, 2)] > by[(1, 2)]


@pytest.mark.ns3
def test_rerun_skips_complete_runs(pool_sweep, tiny_toml):
    before = {p: p.stat().st_mtime_ns for p in pool_sweep.glob("runs/*/summary.json")}
    result = sweep_file(tiny_toml, ["load=1,2"], "1-2", pool_sweep, workers=2, progress=False)
    assert result.executed == [] and len(result.skipped) == 4
    assert {p: p.stat().st_mtime_ns for p in pool_sweep.glob("runs/*/summary.json")} == before
    assert len(result.results) == 4


@pytest.mark.ns3
def test_run_repeated_after_other_runs_in_same_parent_is_identical(pool_sweep, tiny_toml, tmp_path):
    runs = {(r.params["load"], r.seed): r for r in expand(read_toml(tiny_toml), [("load", [1, 2])], [1, 2])}
    first = fork_run(runs[(1, 1)].scenario, tmp_path / "first")
    fork_run(runs[(2, 2)].scenario, tmp_path / "other")
    again = fork_run(runs[(1, 1)].scenario, tmp_path / "again")
    assert (tmp_path / "first" / "tasks.csv").read_bytes() == (tmp_path / "again" / "tasks.csv").read_bytes()
    assert first["delay_s"] == again["delay_s"] and first["accuracy"] == again["accuracy"]
    # ... and identical to the same run inside the pool sweep.
    pooled = pool_sweep / "runs" / runs[(1, 1)].run_id / "tasks.csv"
    assert pooled.read_bytes() == (tmp_path / "first" / "tasks.csv").read_bytes()


def _sweep_then_hang(tiny_toml, out):
    sweep_file(tiny_toml, ["load=1,2"], "1-2", out, workers=1, progress=False)


@pytest.mark.ns3
def test_killed_sweep_resumes_with_only_the_missing_runs(ns3_session, tiny_toml, tmp_path):
    out = tmp_path / "killed"
    child = multiprocessing.get_context("fork").Process(target=_sweep_then_hang, args=(tiny_toml, out))
    child.start()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and child.is_alive():
        done = [p for p in out.glob("runs/*") if is_complete(p)]
        if done:
            break
        time.sleep(0.2)
    os.kill(child.pid, signal.SIGKILL)  # midway: one run complete, one running, two not started
    child.join()
    time.sleep(0.5)  # the running simulation child dies with its parent (PR_SET_PDEATHSIG)
    complete = {p.name for p in out.glob("runs/*") if is_complete(p)}
    assert 1 <= len(complete) < 4
    result = sweep_file(tiny_toml, ["load=1,2"], "1-2", out, workers=2, progress=False)
    assert set(result.skipped) == complete
    assert len(result.executed) == 4 - len(complete)
    assert set(result.executed).isdisjoint(complete)
    assert len(result.results) == 4 and (result.results["status"] == "complete").all()


@pytest.mark.ns3
def test_a_failing_run_is_recorded_and_the_others_complete(ns3_session, tiny_toml, tmp_path):
    from dtoee.sweep import RunSpec

    good = expand(read_toml(tiny_toml), [("model.num_stages", [3])], [1])[0]
    # Valid as a scenario, but the mlp model has 3 stages: fails inside the simulation child.
    data = read_toml(tiny_toml)
    data["model"].update(num_stages=2, stage_latency_s=[0.02, 0.02])
    data["nodes"][1]["stages"] = [1, 2]
    bad = expand(data, [("model.num_stages", [2])], [1])[0]
    result = run_sweep([good, bad], tmp_path / "f", workers=2, progress=False)
    assert not result.ok and list(result.failed) == [bad.run_id] and result.executed == [good.run_id]
    assert "model.num_stages" in result.failed[bad.run_id]
    by = result.results.set_index("run_id")["status"]
    assert by[good.run_id] == "complete" and by[bad.run_id] == "failed"
    assert len(pd.read_parquet(tmp_path / "f" / "results.parquet")) == 2


@pytest.mark.ns3
def test_plot_run_and_sweep_directories(pool_sweep, tmp_path):
    run_dir = next((pool_sweep / "runs").iterdir())
    assert main(["plot", str(run_dir), "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "delay_cdf.png").stat().st_size > 1000
    assert main(["plot", str(pool_sweep), "--out", str(tmp_path / "sweep")]) == 0
    assert (tmp_path / "sweep" / "sweep_load.png").exists()
    assert main(["plot", str(tmp_path)]) == 2


@pytest.mark.ns3
def test_dask_local_cluster_gives_the_pool_figures(pool_sweep, tiny_toml, tmp_path):
    """The same runs on a Dask LocalCluster with ONE worker process (so every run after the
    first runs in a worker that already ran others) give the pool's figures, byte for byte."""
    result = sweep_file(tiny_toml, ["load=1,2"], "1-2", tmp_path / "dask", workers=1, dask="local", progress=False)
    assert result.ok and len(result.executed) == 4
    pool = pd.read_parquet(pool_sweep / "results.parquet")
    pd.testing.assert_frame_equal(_figures(result.results), _figures(pool))
    for run_id in pool["run_id"]:
        assert (tmp_path / "dask" / "runs" / run_id / "tasks.csv").read_bytes() == \
            (pool_sweep / "runs" / run_id / "tasks.csv").read_bytes()


def test_every_sweep_row_and_summary_records_its_fidelity(tiny_toml, tmp_path):
    """Each sweep row says which network it ran on (analytic here, so no ns-3), as the
    grid asked, and so does each run's summary.json (the packet default: the ns-3 sweep
    tests above)."""
    result = sweep_file(tiny_toml, ["simulation.fidelity=analytic", "load=1,2"], "1", tmp_path / "sweep",
                        workers=1, progress=False)
    assert result.ok
    rows = pd.read_parquet(tmp_path / "sweep" / "results.parquet")
    assert len(rows) == 2 and (rows["fidelity"] == "analytic").all()
    assert (rows["simulation.fidelity"] == "analytic").all()
    for run_id in rows["run_id"]:
        summary = json.loads((tmp_path / "sweep" / "runs" / run_id / "summary.json").read_text())
        assert summary["fidelity"] == "analytic" and summary["radio_model_hash"] is None  # radio off
    assert rows.set_index("load").loc[2, "tasks_generated"] > rows.set_index("load").loc[1, "tasks_generated"]
