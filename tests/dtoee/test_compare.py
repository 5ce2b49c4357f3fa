"""`dtoee compare`: the comparison table's arithmetic, and the command end to end (tiny)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from dtoee.cli import main
from dtoee.compare import COMPARISON_COLUMNS, comparison_runs, comparison_table
from dtoee.sweep import read_toml

from .test_sweep import TINY_TOML

EVENT = """
[[events]]
at_s = 1.5
kind = "ue_rate"
ue_group = 0
rate_per_s = 15.0
"""


def _results(rows):
    frame = pd.DataFrame(rows, columns=["experiment", "policy.kind", "load", "seed", "delay_s.mean", "delay_s.p95",
                                        "accuracy", "tasks_generated", "counts_by_status.completed"])
    frame["status"] = "complete"
    return frame


def test_comparison_table_pairs_seeds_and_gives_t_intervals():
    rows = []
    for seed, (d_ref, d_base, a_ref, a_base) in enumerate([(0.05, 0.10, 0.95, 0.93), (0.06, 0.10, 0.96, 0.93),
                                                           (0.07, 0.10, 0.97, 0.93)], start=1):
        rows.append(("steady", "dtoee", 1.0, seed, d_ref, 2 * d_ref, a_ref, 100, 100))
        rows.append(("steady", "no-early-exit", 1.0, seed, d_base, 2 * d_base, a_base, 100, 90))
    rows.append(("step", "dtoee", 1.0, 1, 9.0, 9.0, 0.1, 100, 100))  # not part of the table
    table = comparison_table(_results(rows))
    assert list(table.columns) == COMPARISON_COLUMNS
    ref = table.set_index("policy").loc["dtoee"]
    base = table.set_index("policy").loc["no-early-exit"]
    assert ref["mean_delay_ms"] == pytest.approx(60.0)
    # sd of (50, 60, 70) = 10; t(0.975, 2) = 4.303
    assert ref["mean_delay_ci95_ms"] == pytest.approx(4.3027 * 10 / math.sqrt(3), rel=1e-3)
    assert math.isnan(ref["delay_reduction_pct"])
    assert base["delay_reduction_pct"] == pytest.approx(40.0)  # mean of 50, 40, 30 %
    assert base["accuracy_gain_pts"] == pytest.approx(3.0)      # mean of 2, 3, 4 points
    assert base["completed_share"] == pytest.approx(0.9)
    assert base["reference"] == "dtoee" and base["seeds"] == 3


def test_comparison_runs_drop_events_in_steady_runs_and_keep_them_in_step_runs(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TOML + EVENT)
    runs = comparison_runs(read_toml(path), [0.5, 1.0], [1, 2], ["dtoee", "random-offloading"])
    steady = [r for r in runs if r.params["experiment"] == "steady"]
    step = [r for r in runs if r.params["experiment"] == "step"]
    assert len(steady) == 2 * 2 * 2 and len(step) == 2 * 2
    assert all(not r.scenario.events for r in steady) and all(r.scenario.events for r in step)
    low = next(r for r in steady if r.params["load"] == 0.5)
    assert low.scenario.ue_groups[0].rate_per_s == 2.5
    assert len({r.run_id for r in runs}) == len(runs)


@pytest.mark.ns3
def test_compare_writes_csv_and_plots_from_nothing_and_plot_regenerates_them(ns3_session, tmp_path):
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(TINY_TOML + EVENT)
    out = tmp_path / "cmp"
    code = main(["compare", str(scenario), "--loads", "1,2", "--seeds", "1", "--policies",
                 "dtoee,fixed-threshold-load-proportional", "--workers", "2", "--out", str(out), "--no-progress"])
    assert code == 0
    table = pd.read_csv(out / "comparison.csv")
    assert len(table) == 4 and set(table["policy"]) == {"dtoee", "fixed-threshold-load-proportional"}
    assert table.loc[table["policy"] != "dtoee", "delay_reduction_pct"].notna().all()
    names = {"delay_vs_load.png", "accuracy_vs_load.png", "delay_cdf.png", "exit_share.png", "utilisation.png",
             "convergence.png", "adaptation.png"}
    assert names <= {p.name for p in (out / "plots").iterdir()}
    results = pd.read_parquet(out / "results.parquet")
    assert len(results) == 6 and (results["status"] == "complete").all()

    # From nothing but the runs: `dtoee plot` writes the same table and every plot again.
    original = (out / "comparison.csv").read_text()
    (out / "comparison.csv").unlink()
    for png in (out / "plots").iterdir():
        png.unlink()
    assert main(["plot", str(out)]) == 0
    assert (out / "comparison.csv").read_text() == original
    assert names <= {p.name for p in (out / "plots").iterdir()}
    # --out puts the plots elsewhere (the table stays with the runs)
    elsewhere = tmp_path / "elsewhere"
    assert main(["plot", str(out), "--out", str(elsewhere)]) == 0
    assert names <= {p.name for p in elsewhere.iterdir()}


def _fake_comparison(root, seeds=(1, 2)):
    """A comparison directory without simulating: per run a tasks.parquet whose delays are
    known (policy a: 10 ms, then 30 ms after the event at 2 s; policy b: 20 ms throughout)."""
    import numpy as np

    rows = []
    for experiment, loads in (("steady", (0.5, 1.0)), ("step", (1.0,))):
        for policy, base_s in (("a", 0.010), ("b", 0.020)):
            for load in loads:
                for seed in seeds:
                    run = f"{experiment}-{policy}-{load}-{seed}"
                    created = np.arange(0.0, 4.0, 0.1)
                    delay = np.where((experiment == "step") & (policy == "a") & (created >= 2.0), 0.030, base_s)
                    (root / "runs" / run).mkdir(parents=True)
                    pd.DataFrame({"status": "completed", "created_s": created, "delay_s": delay}).to_parquet(
                        root / "runs" / run / "tasks.parquet")
                    rows.append({"run_id": run, "experiment": experiment, "policy.kind": policy, "load": load,
                                 "seed": seed, "status": "complete", "delay_s.mean": base_s * load,
                                 "accuracy": 0.9, "measured_from_s": 1.0 if policy == "b" else 0.0,
                                 "exit_share_by_stage.1": 0.5, "exit_share_by_stage.2": 0.5,
                                 "utilisation_by_node.bs0": 0.2 * seed})
    return pd.DataFrame(rows)


def test_comparison_plot_data_read_from_the_runs(tmp_path):
    from dtoee.compare import mean_windowed_delay_s, middle_load, ordered_policies, pooled_delays_s

    results = _fake_comparison(tmp_path)
    assert middle_load([0.6, 1.4, 1.0]) == 1.0 and middle_load([0.5, 1.5]) == 0.5
    assert ordered_policies(results, {"policies": ["b", "x"]}) == ["b", "a"]
    steady_b = results[(results["experiment"] == "steady") & (results["policy.kind"] == "b") & (results["load"] == 1.0)]
    delays = pooled_delays_s(tmp_path, steady_b)
    assert len(delays) == 2 * 30 and set(delays) == {0.020}  # two seeds, tasks from the 1 s warm-up on
    step_a = results[(results["experiment"] == "step") & (results["policy.kind"] == "a")]["run_id"]
    mean = mean_windowed_delay_s(tmp_path, step_a, 1.0)
    assert mean.index.tolist() == [0.0, 1.0, 2.0, 3.0]  # horizon: ceil(3.9 s) = 4 s
    assert mean.tolist() == pytest.approx([0.010, 0.010, 0.030, 0.030])
    assert mean_windowed_delay_s(tmp_path, [], 1.0) is None


def test_comparison_plots_draw_every_figure_from_the_runs(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from dtoee.compare import comparison_plots

    results = _fake_comparison(tmp_path)
    meta = {"policies": ["a", "b"], "reference": "a", "events": [{"at_s": 2.0}]}
    paths = comparison_plots(tmp_path, results, tmp_path / "plots", meta)
    assert [p.name for p in paths] == ["delay_vs_load.png", "accuracy_vs_load.png", "delay_cdf.png", "exit_share.png",
                                       "utilisation.png", "adaptation.png"]  # no policy.parquet: no convergence
    assert all(p.stat().st_size > 1000 for p in paths)
    assert comparison_plots(tmp_path, results.assign(status="failed"), tmp_path / "none", meta) == []
