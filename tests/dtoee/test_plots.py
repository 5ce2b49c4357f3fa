"""Plot helpers: a delay axis goes logarithmic only when the means span more than 10x, and a
lower interval bar never reaches zero or below (it could not be drawn on a log axis)."""

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


def test_lower_bar_is_clipped_above_zero_and_upper_bar_kept():
    fig, ax = plt.subplots()
    _errorbar(ax, [0.6, 1.0], [(1120.0, 3058.0), (50.0, 2.0)], "random")
    segments = ax.collections[0].get_segments()  # the vertical interval bars
    lows = sorted(min(seg[:, 1]) for seg in segments)
    highs = sorted(max(seg[:, 1]) for seg in segments)
    assert lows == pytest.approx([11.2, 48.0])  # 1120 - 0.99 * 1120, and 50 - 2 (not clipped)
    assert highs == pytest.approx([52.0, 4178.0])
    assert all(low > 0 for low in lows)
    plt.close(fig)


def test_bounded_yerr_floor_zero_stops_bars_at_zero():
    from dtoee.plots import _bounded_yerr

    means, (lower, upper) = _bounded_yerr([(0.22, 0.36), (0.5, 0.1), (0.3, float("nan"))], 0.0)
    assert means.tolist() == [0.22, 0.5, 0.3]
    assert lower.tolist() == pytest.approx([0.22, 0.1, 0.0])
    assert upper.tolist() == pytest.approx([0.36, 0.1, 0.0])


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
