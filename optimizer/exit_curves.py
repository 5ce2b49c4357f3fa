"""Exit curves of a multi-exit model, as the optimizer sees them.

For exit ``k`` and confidence threshold ``theta`` the model's profile gives

* ``e_k(theta)``: the share of tasks reaching exit k whose confidence is ``>= theta`` (they
  exit there), non-increasing in ``theta``;
* ``alpha_k(theta)``: the accuracy of the tasks that exit.

The optimizer works with the *correct share* ``A_k(e) = e * alpha_k(theta(e))``: the share
of all tasks reaching exit k that exit there AND are correct, as a function of the exit
share ``e`` (most confident tasks exit first). ``A_k`` is non-decreasing in ``e``; the
convex program uses its upper concave hull, piecewise linear, ``A_k(e) = min_m (a_m + s_m e)``.

Curves measured on all samples (weights 1) carry the selection effect: a later exit only sees
the survivors of earlier thresholds. :func:`conditional_exit_curve` measures a curve on the
survivors (each sample weighted by its probability of reaching the exit), and
:func:`optimizer.centralized.solve_self_consistent` finds curves consistent with the
thresholds chosen on them.

This module does not import the ``inference`` package: :meth:`ExitCurveData.from_any`
accepts any object with ``thresholds``, ``exit_share``, ``accuracy_of_exited`` (and
optionally ``stage``, ``test_accuracy``) attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

_TOL = 1e-9


def _as_float_array(name: str, value: Any) -> np.ndarray:
    try:
        array = np.array(value, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 1-D array of numbers, got {value!r}") from None
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class ExitCurveData:
    """Profile of one exit: ``e_k(theta)`` and ``alpha_k(theta)`` on a threshold grid.

    Args:
        stage: exit index k (1-based).
        thresholds: strictly increasing confidence thresholds theta in [0, 1].
        exit_share: e_k(theta) in [0, 1], non-increasing in theta.
        accuracy_of_exited: alpha_k(theta) in [0, 1]; NaN allowed where e_k(theta) == 0.
        test_accuracy: accuracy of exit k over all test samples (= alpha_k(0)); used to add
            the point (theta=0, e=1) when the grid does not start where everything exits.

    Between grid points, e_k and the correct share e_k * alpha_k are interpolated linearly
    in theta.
    """

    stage: int
    thresholds: np.ndarray
    exit_share: np.ndarray
    accuracy_of_exited: np.ndarray
    test_accuracy: float | None = None
    correct_share: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.stage, (int, np.integer)) or int(self.stage) < 1:
            raise ValueError(f"stage must be an integer >= 1, got {self.stage!r}")
        thresholds = _as_float_array("thresholds", self.thresholds)
        exit_share = _as_float_array("exit_share", self.exit_share)
        accuracy = _as_float_array("accuracy_of_exited", self.accuracy_of_exited)
        if not (thresholds.size == exit_share.size == accuracy.size) or thresholds.size == 0:
            raise ValueError(
                "thresholds, exit_share and accuracy_of_exited must be non-empty and of equal "
                f"length, got {thresholds.size}, {exit_share.size}, {accuracy.size}"
            )
        if not np.all(np.isfinite(thresholds)) or thresholds.min() < 0 or thresholds.max() > 1:
            raise ValueError(f"thresholds must lie in [0, 1], got {thresholds!r}")
        if np.any(np.diff(thresholds) <= 0):
            raise ValueError("thresholds must be strictly increasing")
        if not np.all(np.isfinite(exit_share)) or exit_share.min() < -_TOL or exit_share.max() > 1 + _TOL:
            raise ValueError(f"exit_share must lie in [0, 1], got {exit_share!r}")
        if np.any(np.diff(exit_share) > 1e-9):
            raise ValueError("exit_share must be non-increasing in the threshold")
        exit_share = np.clip(exit_share, 0.0, 1.0)
        accuracy = np.where(exit_share <= 0, np.nan_to_num(accuracy, nan=0.0), accuracy)
        if not np.all(np.isfinite(accuracy)) or accuracy.min() < -_TOL or accuracy.max() > 1 + _TOL:
            raise ValueError(
                "accuracy_of_exited must lie in [0, 1] (NaN only where exit_share == 0), "
                f"got {accuracy!r}"
            )
        accuracy = np.clip(accuracy, 0.0, 1.0)
        test_accuracy = self.test_accuracy
        if test_accuracy is not None:
            test_accuracy = float(test_accuracy)
            if not 0.0 <= test_accuracy <= 1.0:
                raise ValueError(f"test_accuracy must lie in [0, 1], got {test_accuracy!r}")
        if exit_share[0] < 1 - 1e-6:
            if thresholds[0] > 0 and test_accuracy is not None:
                thresholds = np.concatenate([[0.0], thresholds])
                exit_share = np.concatenate([[1.0], exit_share])
                accuracy = np.concatenate([[test_accuracy], accuracy])
            else:
                raise ValueError(
                    "exit_share at the lowest threshold must be 1 (everything exits at theta=0); "
                    f"got {exit_share[0]!r} at theta={thresholds[0]!r} and no test_accuracy to add it"
                )
        exit_share = exit_share.copy()
        exit_share[0] = 1.0
        correct = exit_share * accuracy
        for name, value in (
            ("thresholds", thresholds),
            ("exit_share", exit_share),
            ("accuracy_of_exited", accuracy),
            ("correct_share", correct),
        ):
            value = np.array(value, dtype=float)
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "stage", int(self.stage))
        object.__setattr__(self, "test_accuracy", test_accuracy)

    @classmethod
    def from_any(cls, curve: Any, stage: int | None = None) -> "ExitCurveData":
        """Build from any object with the ExitCurve attributes (e.g. ``inference``'s)."""
        if isinstance(curve, cls):
            return curve
        try:
            return cls(
                stage=int(stage if stage is not None else getattr(curve, "stage")),
                thresholds=getattr(curve, "thresholds"),
                exit_share=getattr(curve, "exit_share"),
                accuracy_of_exited=getattr(curve, "accuracy_of_exited"),
                # inference's ExitCurve calls it overall_accuracy (on whichever split it was made)
                test_accuracy=getattr(curve, "overall_accuracy", getattr(curve, "test_accuracy", None)),
            )
        except AttributeError as exc:
            raise ValueError(f"exit curve {curve!r} lacks an attribute: {exc}") from None

    @property
    def min_exit_share(self) -> float:
        """Smallest reachable exit share E_0 (at the highest threshold)."""
        return float(self.exit_share[-1])

    @property
    def full_correct_share(self) -> float:
        """A_k(1): the accuracy of exit k when every task exits there."""
        return float(self.correct_share[0])


def exit_share_at(curve: ExitCurveData, theta: float) -> float:
    """e_k(theta), linear between grid points, clamped outside the grid."""
    return float(np.interp(theta, curve.thresholds, curve.exit_share))


def correct_share_at(curve: ExitCurveData, theta: float) -> float:
    """e_k(theta) * alpha_k(theta): share of tasks reaching exit k that exit and are correct."""
    return float(np.interp(theta, curve.thresholds, curve.correct_share))


def threshold_for_exit_share(curve: ExitCurveData, exit_share: float) -> float:
    """Inverse of e_k: the threshold theta with ``e_k(theta) == exit_share``.

    Exact inverse of :func:`exit_share_at` on the reachable range ``[E_0, 1]``; values
    outside are clamped (``e >= 1`` gives the lowest threshold, ``e <= E_0`` the highest).
    Where e_k is flat, the lowest such threshold is returned.
    """
    shares = curve.exit_share
    thresholds = curve.thresholds
    e = float(exit_share)
    if e >= shares[0]:
        return float(thresholds[0])
    if e <= shares[-1]:
        index = int(np.searchsorted(-shares, -shares[-1], side="left"))
        return float(thresholds[index])
    m = int(np.searchsorted(-shares, -e, side="left"))  # first index with shares[m] <= e
    hi_e, lo_e = shares[m - 1], shares[m]
    fraction = (hi_e - e) / (hi_e - lo_e)
    return float(thresholds[m - 1] + fraction * (thresholds[m] - thresholds[m - 1]))


@dataclass(frozen=True, eq=False)
class ConcaveHull:
    """Upper concave hull of ``A_k(e)``: vertices and the lines ``a_m + s_m e`` between them.

    ``A_k(e) = min_m (a_m + s_m e)`` for ``e`` in ``[E_0, 1]``; ``s_m >= 0`` decreasing.
    """

    vertex_exit_share: np.ndarray
    vertex_correct_share: np.ndarray
    slopes: np.ndarray
    intercepts: np.ndarray

    @property
    def min_exit_share(self) -> float:
        return float(self.vertex_exit_share[0])

    def value(self, exit_share: float) -> float:
        """Hull A_k(e) (linear interpolation between vertices)."""
        return float(np.interp(exit_share, self.vertex_exit_share, self.vertex_correct_share))

    def slope_right(self, exit_share: float) -> float:
        """Right derivative of the hull at e (0 at e = 1)."""
        if self.slopes.size == 0:
            return 0.0
        index = int(np.searchsorted(self.vertex_exit_share, exit_share, side="right")) - 1
        index = min(max(index, 0), self.slopes.size - 1)
        if exit_share >= self.vertex_exit_share[-1]:
            return 0.0
        return float(self.slopes[index])


def concave_hull(curve: ExitCurveData) -> ConcaveHull:
    """Upper concave hull of the points ``(e_k(theta), A_k)`` of the curve."""
    order = np.lexsort((-curve.correct_share, curve.exit_share))
    points: list[tuple[float, float]] = []
    for e, a in zip(curve.exit_share[order], curve.correct_share[order]):
        if points and abs(points[-1][0] - e) <= 1e-12:
            if a <= points[-1][1]:
                continue  # same exit share: keep the largest A
            points.pop()
        while len(points) >= 2:
            (e1, a1), (e2, a2) = points[-2], points[-1]
            # drop the middle point if it lies on or below the chord
            if (a2 - a1) * (e - e1) <= (a - a1) * (e2 - e1) + 1e-15:
                points.pop()
            else:
                break
        points.append((float(e), float(a)))
    es = np.array([p[0] for p in points])
    As = np.array([p[1] for p in points])
    if es.size >= 2:
        slopes = np.diff(As) / np.diff(es)
        intercepts = As[:-1] - slopes * es[:-1]
    else:
        slopes = np.zeros(0)
        intercepts = np.zeros(0)
    for arr in (es, As, slopes, intercepts):
        arr.setflags(write=False)
    return ConcaveHull(es, As, slopes, intercepts)


def synthetic_exit_curve(
    stage: int,
    *,
    final_accuracy: float,
    top_accuracy: float,
    shape: float = 1.0,
    confidence_power: float = 2.0,
    num_thresholds: int = 101,
) -> ExitCurveData:
    """A smooth, calibrated-looking exit curve with a concave correct share.

    The marginal accuracy of the task at exit share ``s`` is
    ``top - (top - low) s^shape`` (most confident first), so
    ``A(e) = top e - (top - low) e^(shape+1) / (shape+1)`` is concave with ``A(1) =
    final_accuracy``; the exit share is ``e(theta) = 1 - theta^confidence_power``.
    """
    if not 0 < final_accuracy <= top_accuracy <= 1:
        raise ValueError(
            f"need 0 < final_accuracy <= top_accuracy <= 1, got {final_accuracy}, {top_accuracy}"
        )
    if shape <= 0 or confidence_power <= 0:
        raise ValueError(f"shape and confidence_power must be > 0, got {shape}, {confidence_power}")
    low = max(0.0, top_accuracy - (top_accuracy - final_accuracy) * (shape + 1.0))
    thresholds = np.linspace(0.0, 1.0, num_thresholds)
    exit_share = 1.0 - thresholds**confidence_power
    correct = top_accuracy * exit_share - (top_accuracy - low) * exit_share ** (shape + 1) / (shape + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(exit_share > 0, correct / np.maximum(exit_share, 1e-300), top_accuracy)
    return ExitCurveData(
        stage=stage,
        thresholds=thresholds,
        exit_share=exit_share,
        accuracy_of_exited=np.clip(accuracy, 0.0, 1.0),
        test_accuracy=float(np.clip(correct[0], 0.0, 1.0)),
    )


def synthetic_exit_curves(num_stages: int, rng: np.random.Generator) -> dict[int, ExitCurveData]:
    """Exit curves for K stages whose overall accuracy rises with depth (for tests/bench)."""
    if num_stages < 1:
        raise ValueError(f"num_stages must be >= 1, got {num_stages}")
    finals = np.sort(rng.uniform(0.45, 0.92, size=num_stages))
    curves = {}
    for k, final in enumerate(finals, start=1):
        top = min(0.995, final + rng.uniform(0.05, 0.3))
        curves[k] = synthetic_exit_curve(
            k,
            final_accuracy=float(final),
            top_accuracy=float(top),
            shape=float(rng.uniform(0.6, 2.0)),
            confidence_power=float(rng.uniform(1.0, 4.0)),
        )
    return curves


# ----- curves conditional on survival (no selection effect) -------------------------------


@dataclass(frozen=True, eq=False)
class SampleTable:
    """Per-sample exit confidences and correctness of one data split (the caller's choice:
    the split the simulation draws from, or the validation split used for calibration).

    Args:
        confidence: (N, K) array, c_s^k = confidence of exit head k on sample s.
        correct: (N, K) bool array, whether exit k's prediction on sample s is right.
    """

    confidence: np.ndarray
    correct: np.ndarray

    def __post_init__(self) -> None:
        confidence = np.array(self.confidence, dtype=float)
        correct = np.array(self.correct, dtype=bool)
        if confidence.ndim != 2 or confidence.shape != correct.shape or confidence.shape[0] == 0:
            raise ValueError(
                f"confidence and correct must be non-empty (N, K) arrays of one shape, got "
                f"{np.shape(self.confidence)} and {np.shape(self.correct)}"
            )
        confidence.setflags(write=False)
        correct.setflags(write=False)
        object.__setattr__(self, "confidence", confidence)
        object.__setattr__(self, "correct", correct)

    @classmethod
    def from_predictions(cls, confidence, predicted, labels) -> "SampleTable":
        """From (N, K) confidences, (N, K) predicted classes and (N,) labels."""
        predicted = np.asarray(predicted)
        labels = np.asarray(labels).reshape(-1, 1)
        return cls(confidence=confidence, correct=predicted == labels)

    @property
    def num_samples(self) -> int:
        return int(self.confidence.shape[0])

    @property
    def num_stages(self) -> int:
        return int(self.confidence.shape[1])


def conditional_exit_curve(
    table: SampleTable, stage: int, reach_weight: np.ndarray, grid: np.ndarray | None = None
) -> ExitCurveData:
    """Exit curve of exit k measured on the tasks that reach it.

    ``reach_weight[s]`` = P(sample s reaches exit k) under the upstream thresholds (1 for
    every sample at k = 1). On the survivors, with w_s that weight::

        e_k(theta)     = sum_s w_s [c_s^k >= theta] / sum_s w_s
        alpha_k(theta) = sum_s w_s [c_s^k >= theta] correct_s^k / sum_s w_s [c_s^k >= theta]

    With w_s = 1 for all s this is the unconditional curve of the module docstring (the one
    with the selection effect). ``grid``: thresholds (default: 0, every distinct confidence
    and 1, so the curve is exact at every threshold a sample can cross).
    """
    weight = np.asarray(reach_weight, dtype=float).reshape(-1)
    if weight.shape[0] != table.num_samples or np.any(weight < 0) or not np.isfinite(weight).all():
        raise ValueError(f"reach_weight must be {table.num_samples} finite weights >= 0")
    if not 1 <= stage <= table.num_stages:
        raise ValueError(f"stage must lie in 1..{table.num_stages}, got {stage}")
    conf = table.confidence[:, stage - 1]
    right = table.correct[:, stage - 1]
    total = weight.sum()
    if total <= 0:  # nothing reaches it: the unconditional curve is as good as any
        weight, total = np.ones_like(weight), float(weight.size)
    if grid is None:
        grid = np.unique(np.concatenate([[0.0], np.clip(conf, 0.0, 1.0), [1.0]]))
    grid = np.asarray(grid, dtype=float)
    order = np.argsort(conf)
    sorted_conf, w_sorted, c_sorted = conf[order], weight[order], (weight * right)[order]
    # mass with confidence >= theta: suffix sums at the first index with conf >= theta
    suffix_w = np.concatenate([np.cumsum(w_sorted[::-1])[::-1], [0.0]])
    suffix_c = np.concatenate([np.cumsum(c_sorted[::-1])[::-1], [0.0]])
    index = np.searchsorted(sorted_conf, grid, side="left")
    exited, exited_right = suffix_w[index], suffix_c[index]
    share = exited / total
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(exited > 0, exited_right / np.maximum(exited, 1e-300), np.nan)
    share = np.minimum.accumulate(share)  # exact already; guards float round-off
    return ExitCurveData(stage=stage, thresholds=grid, exit_share=share, accuracy_of_exited=accuracy,
                         test_accuracy=float(exited_right[0] / total) if exited[0] > 0 else None)
