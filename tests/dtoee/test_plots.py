"""Plot helpers: a delay axis goes logarithmic only when the means span more than 10x; every
interval bar is the real 95% interval (never clipped), and where one reaches zero or below a
wide axis is symlog, not log, and the plot says so."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dtoee.plots import _errorbar, _log_if_wide  # noqa: E402


@pytest.mark.parametrize("means,expected", [([50.0, 60.0, 70.0], "linear"), ([45.0, 60.0, 10500.0], "log"),
                                            ([5.0, 49.0], "linear"), ([5.0, 51.0], "log")])
def test_log_scale_only_for_wide_ranges(means, expected):
    fig, ax = plt.subplots()
    drawn = _errorbar(ax, list(range(len(means))), [(m, 0.1 * m) for m in means], "policy")
    _log_if_wide(ax, drawn)
    assert ax.get_yscale() == expected
    plt.close(fig)


def _bar_ends(ax):
    segments = ax.collections[0].get_segments()  # the vertical interval bars
    return sorted(min(seg[:, 1]) for seg in segments), sorted(max(seg[:, 1]) for seg in segments)


def test_interval_is_drawn_as_it_is_and_a_wide_axis_turns_symlog_and_says_so():
    fig, ax = plt.subplots()
    drawn = _errorbar(ax, [0.6, 1.0], [(1120.0, 3058.0), (50.0, 2.0)], "random")
    lows, highs = _bar_ends(ax)
    assert lows == pytest.approx([1120.0 - 3058.0, 48.0])  # not clipped: the t-interval crosses zero
    assert highs == pytest.approx([52.0, 4178.0])
    _log_if_wide(ax, drawn)
    assert ax.get_yscale() == "symlog"  # a log axis could not show the part below zero
    assert any("symlog" in text.get_text() and "0 or below" in text.get_text() for text in ax.texts)
    plt.close(fig)


def test_wide_axis_with_positive_intervals_is_log_without_a_note():
    fig, ax = plt.subplots()
    _log_if_wide(ax, _errorbar(ax, [0.6, 1.0], [(1120.0, 300.0), (50.0, 2.0)], "random"))
    assert ax.get_yscale() == "log" and not ax.texts
    assert _bar_ends(ax)[0] == pytest.approx([48.0, 820.0])
    plt.close(fig)


def test_bar_chart_intervals_count_too():
    from dtoee.plots import _interval_lows

    fig, ax = plt.subplots()
    ax.bar([0, 1], [0.22, 0.5], yerr=[0.36, 0.1])
    assert sorted(_interval_lows(ax)) == pytest.approx([0.22 - 0.36, 0.4])
    plt.close(fig)


def test_run_delay_cdf_describes_the_tasks_the_summary_does(tmp_path, monkeypatch):
    """Warm-up tasks (slow here) are left out of the CDF as they are out of summary.json, but
    stay in the delay-over-time plot, which shows the transient."""
    import json

    import pandas as pd

    from dtoee import plots
    from dtoee.trace import TASK_COLUMNS

    rows = [(i, "ue0", "bs0", i * 0.1, i * 0.1 + (2.0 if i < 50 else 0.05), 2.0 if i < 50 else 0.05, "completed",
             "", 1, "bs0", 0.9, 1, 1, True) for i in range(100)]
    pd.DataFrame(rows, columns=TASK_COLUMNS).to_parquet(tmp_path / "tasks.parquet")
    (tmp_path / "summary.json").write_text(json.dumps({"scenario": "t", "seed": 1, "measured_from_s": 5.0}))
    drawn = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.setdefault(path.name, fig) and path)
    plots.run_plots(tmp_path, tmp_path / "plots")
    cdf = drawn["delay_cdf.png"].axes[0].lines[0].get_xdata()
    assert len(cdf) == 50 and max(cdf) == pytest.approx(50.0)
    over_time = drawn["delay_over_time.png"].axes[0].lines[0].get_ydata()
    assert np.nanmax(over_time) == pytest.approx(2000.0)


def test_one_seed_draws_the_mean_without_an_interval(tmp_path, monkeypatch):
    """mean_ci gives no interval (NaN) from one seed; the plot draws the point with a zero bar."""
    import pandas as pd

    from dtoee import plots

    drawn = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.setdefault(path.name, fig) and path)
    steady = pd.DataFrame({"policy.kind": ["a", "a"], "load": [0.5, 1.0], "seed": [1, 1], "delay_s.mean": [0.01, 0.02]})
    plots.metric_vs_load_plot(steady, ["a"], "delay_s.mean", 1e3, "delay", tmp_path / "d.png")
    ax = drawn["d.png"].axes[0]
    assert ax.lines[0].get_ydata().tolist() == pytest.approx([10.0, 20.0])
    for segment in ax.collections[0].get_segments():
        assert segment[0][1] == pytest.approx(segment[1][1])  # zero-length bar
    assert plots.grouped_bars_plot(steady, ["a"], "exit_share_by_stage.", "x", "y", "t", tmp_path / "e.png") is None


def test_run_breakdown_plot_draws_the_breakdown_of_the_hops(tmp_path, monkeypatch):
    import json

    from dtoee import plots
    from dtoee.analysis import delay_breakdown

    from .test_delay_breakdown import synthetic

    hops, tasks = synthetic()
    hops.to_parquet(tmp_path / "hops.parquet")
    tasks.to_parquet(tmp_path / "tasks.parquet")
    (tmp_path / "summary.json").write_text(json.dumps({"scenario": "t", "seed": 1, "measured_from_s": 0.9,
                                                       "stage_figures_estimated": True}))
    drawn = {}
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.setdefault(path.name, fig) and path)
    plots.run_plots(tmp_path, tmp_path / "plots")
    ax = drawn["delay_breakdown.png"].axes[0]
    widths = {bar.get_label(): bar.patches[0].get_width() for bar in ax.containers}
    expected = delay_breakdown(hops, tasks, 0.9)["mean_s"]
    assert widths["radio"] == pytest.approx(expected["radio"] * 1e3)
    assert widths["backhaul"] == pytest.approx(15.0)
    assert widths["compute (ESTIMATED service times)"] == pytest.approx(expected["compute"] * 1e3)
    assert "other" not in widths  # zero here: not drawn
