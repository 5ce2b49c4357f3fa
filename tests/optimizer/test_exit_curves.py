from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.exit_curves import (
    ExitCurveData,
    concave_hull,
    correct_share_at,
    exit_share_at,
    synthetic_exit_curve,
    synthetic_exit_curves,
    threshold_for_exit_share,
)


def test_from_any_accepts_duck_typed_curve():
    duck = SimpleNamespace(
        stage=2,
        thresholds=[0.0, 0.5, 1.0],
        exit_share=[1.0, 0.4, 0.0],
        accuracy_of_exited=[0.7, 0.9, float("nan")],
        test_accuracy=0.7,
    )
    curve = ExitCurveData.from_any(duck)
    assert curve.stage == 2
    assert curve.correct_share[-1] == 0.0
    assert exit_share_at(curve, 0.25) == pytest.approx(0.7)


def test_missing_theta_zero_point_is_added_from_test_accuracy():
    curve = ExitCurveData(1, [0.5, 1.0], [0.6, 0.1], [0.9, 1.0], test_accuracy=0.75)
    assert curve.thresholds[0] == 0.0 and curve.exit_share[0] == 1.0
    assert curve.full_correct_share == pytest.approx(0.75)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(thresholds=[0.0, 0.0], exit_share=[1, 0.5], accuracy_of_exited=[0.5, 0.6]), "increasing"),
        (dict(thresholds=[0.0, 0.5], exit_share=[1, 1.2], accuracy_of_exited=[0.5, 0.6]), "exit_share"),
        (dict(thresholds=[0.0, 0.5], exit_share=[0.5, 0.7], accuracy_of_exited=[0.5, 0.6]), "exit_share"),
        (dict(thresholds=[0.0, 0.5], exit_share=[1.0, 0.5], accuracy_of_exited=[0.5, 1.6]), "accuracy_of_exited"),
        (dict(thresholds=[0.2, 0.5], exit_share=[0.9, 0.5], accuracy_of_exited=[0.5, 0.6]), "lowest threshold"),
        (dict(thresholds=[0.0, 1.5], exit_share=[1.0, 0.5], accuracy_of_exited=[0.5, 0.6]), "thresholds"),
    ],
)
def test_bad_curves_raise_value_error(kwargs, word):
    with pytest.raises(ValueError, match=word):
        ExitCurveData(stage=1, **kwargs)


@settings(max_examples=60, deadline=None)
@given(
    e=st.floats(0.0, 1.0),
    power=st.floats(0.5, 4.0),
    shape=st.floats(0.3, 3.0),
)
def test_threshold_read_back_is_exact_inverse(e, power, shape):
    curve = synthetic_exit_curve(1, final_accuracy=0.6, top_accuracy=0.9, shape=shape, confidence_power=power)
    theta = threshold_for_exit_share(curve, e)
    assert 0.0 <= theta <= 1.0
    assert exit_share_at(curve, theta) == pytest.approx(e, abs=1e-9)


def test_read_back_on_flat_and_step_curves():
    curve = ExitCurveData(1, [0.0, 0.3, 0.6, 1.0], [1.0, 0.5, 0.5, 0.2], [0.6, 0.8, 0.8, 0.9])
    assert exit_share_at(curve, threshold_for_exit_share(curve, 0.5)) == pytest.approx(0.5)
    assert threshold_for_exit_share(curve, 0.1) == 1.0  # below reachable range: clamp
    assert threshold_for_exit_share(curve, 1.0) == 0.0


@settings(max_examples=40, deadline=None)
@given(points=st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)), min_size=2, max_size=12))
def test_hull_is_concave_and_above_every_point(points):
    # build a valid curve from arbitrary (share, accuracy) pairs
    shares = np.sort(np.array([p[0] for p in points]))[::-1]
    shares[0] = 1.0
    thresholds = np.linspace(0.0, 1.0, len(points))
    accuracy = np.array([p[1] for p in points])
    curve = ExitCurveData(1, thresholds, shares, accuracy)
    hull = concave_hull(curve)
    assert np.all(np.diff(hull.slopes) <= 1e-9)  # concave
    for e, a in zip(curve.exit_share, curve.correct_share):
        assert hull.value(e) >= a - 1e-9
        assert min(hull.intercepts + hull.slopes * e, default=a) >= a - 1e-9


def test_synthetic_curves_rise_with_depth_and_are_concave():
    curves = synthetic_exit_curves(4, np.random.default_rng(1))
    finals = [curves[k].full_correct_share for k in range(1, 5)]
    assert finals == sorted(finals)
    for curve in curves.values():
        hull = concave_hull(curve)
        # concave curve: the hull passes through every point, so A(e(theta)) agrees
        for theta in np.linspace(0, 1, 17):
            assert hull.value(exit_share_at(curve, theta)) == pytest.approx(correct_share_at(curve, theta), abs=1e-9)
