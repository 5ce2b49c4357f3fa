"""Replay tables and exit curves, each made from one named data split.

Calibrate on one split, evaluate on another: exit curves that the optimizer and every
policy read are made from the VALIDATION split (``CALIBRATION_SPLIT``); the simulation
draws its samples from the TEST split (``EVALUATION_SPLIT``), so no threshold is tuned on
the samples it is scored on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The split that exit curves, thresholds and every policy's inputs come from.
CALIBRATION_SPLIT = "validation"
#: The split the simulation draws its samples from, and reported accuracies are measured on.
EVALUATION_SPLIT = "test"
SPLITS = (CALIBRATION_SPLIT, EVALUATION_SPLIT)


@dataclass(frozen=True)
class ReplayTable:
    """Per sample n (of one split) and exit k (column k-1): the exit head's confidence (max softmax,
    in [0, 1]) and predicted class, exactly as ``StagedModel.run_stage`` returns them."""

    confidence: np.ndarray  # [N, K] float64
    predicted: np.ndarray  # [N, K] int64

    def __post_init__(self) -> None:
        if self.confidence.shape != self.predicted.shape or self.confidence.ndim != 2:
            raise ValueError(f"confidence {self.confidence.shape} and predicted {self.predicted.shape}: must both be [N, K]")

    @property
    def num_samples(self) -> int:
        return self.confidence.shape[0]

    @property
    def num_stages(self) -> int:
        return self.confidence.shape[1]


@dataclass(frozen=True)
class ExitCurve:
    """Exit k as a function of the confidence threshold theta (over ALL samples of ``split``,
    as if every task reached exit k; later exits in a run only see survivors of earlier ones).

    thresholds [G]; exit_share [G]: share of tasks with confidence >= theta;
    accuracy_of_exited [G]: accuracy among those (nan where none exit);
    overall_accuracy: accuracy of exit k over all samples of the split (= at theta 0);
    split: the data split it was made from ("validation" or "test"; "" if not said).
    """

    stage: int
    thresholds: np.ndarray
    exit_share: np.ndarray
    accuracy_of_exited: np.ndarray
    overall_accuracy: float
    split: str = ""


DEFAULT_GRID = np.linspace(0.0, 1.0, 101)


def exit_curve(stage: int, confidence: np.ndarray, correct: np.ndarray, grid: np.ndarray | None = None,
               split: str = "") -> ExitCurve:
    """Exit curve for one exit from per-sample confidence [N] and correctness [N] (bool)."""
    grid = DEFAULT_GRID if grid is None else np.asarray(grid, dtype=np.float64)
    if grid.ndim != 1:
        raise ValueError(f"grid shape {grid.shape}: must be 1-D")
    conf = np.asarray(confidence, dtype=np.float64)
    corr = np.asarray(correct, dtype=bool)
    exits = conf[None, :] >= grid[:, None]  # [G, N]
    n_exit = exits.sum(axis=1)
    n_correct = (exits & corr[None, :]).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(n_exit > 0, n_correct / np.maximum(n_exit, 1), np.nan)
    return ExitCurve(stage=stage, thresholds=grid.copy(), exit_share=n_exit / max(len(conf), 1),
                     accuracy_of_exited=acc, overall_accuracy=float(corr.mean()) if len(corr) else float("nan"),
                     split=split)


def exit_curves(replay: ReplayTable, labels: np.ndarray, grid: np.ndarray | None = None, split: str = "") -> list[ExitCurve]:
    """One ExitCurve per exit from a replay table of ``split`` and that split's true labels."""
    labels = np.asarray(labels)
    if labels.shape != (replay.num_samples,):
        raise ValueError(f"labels shape {labels.shape}: must be ({replay.num_samples},), one per replayed sample")
    return [exit_curve(k + 1, replay.confidence[:, k], replay.predicted[:, k] == labels, grid, split)
            for k in range(replay.num_stages)]


def correct_exit_tradeoff(confidence: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exit k's accuracy trade-off with the most confident samples exiting first.

    Returns (exit_share [N+1], correct_share [N+1], threshold [N+1]): if the share e of tasks
    reaching this exit leaves (those with the highest confidence), correct_share is the share
    of ALL tasks reaching it that exit AND are correct (A_k(e) in docs/method.md), and
    threshold the confidence that achieves it (inf at e = 0). Ties in confidence are kept
    together only approximately (stable sort order).
    """
    conf = np.asarray(confidence, dtype=np.float64)
    corr = np.asarray(correct, dtype=bool)
    order = np.argsort(-conf, kind="stable")
    n = len(conf)
    share = np.arange(n + 1) / max(n, 1)
    correct_share = np.concatenate([[0.0], np.cumsum(corr[order]) / max(n, 1)])
    threshold = np.concatenate([[np.inf], conf[order]])
    return share, correct_share, threshold
