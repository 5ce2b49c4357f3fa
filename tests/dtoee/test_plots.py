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
