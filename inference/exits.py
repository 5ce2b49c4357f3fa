"""Replay tables and exit curves, computed on the test split only."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReplayTable:
    """Per test sample n and exit k (column k-1): the exit head's confidence (max softmax,
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
    """Exit k as a function of the confidence threshold theta (over ALL test samples, as if
    every task reached exit k; later exits in a run only see survivors of earlier ones).

    thresholds [G]; exit_share [G]: share of tasks with confidence >= theta;
    accuracy_of_exited [G]: accuracy among those (nan where none exit);
    test_accuracy: accuracy of exit k over all test samples (= at theta 0).
    """

    stage: int
    thresholds: np.ndarray
    exit_share: np.ndarray
    accuracy_of_exited: np.ndarray
    test_accuracy: float


DEFAULT_GRID = np.linspace(0.0, 1.0, 101)


def exit_curve(stage: int, confidence: np.ndarray, correct: np.ndarray, grid: np.ndarray | None = None) -> ExitCurve:
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
                     accuracy_of_exited=acc, test_accuracy=float(corr.mean()) if len(corr) else float("nan"))


def exit_curves(replay: ReplayTable, labels: np.ndarray, grid: np.ndarray | None = None) -> list[ExitCurve]:
    """One ExitCurve per exit from a replay table and the true labels."""
    labels = np.asarray(labels)
    return [exit_curve(k + 1, replay.confidence[:, k], replay.predicted[:, k] == labels, grid)
            for k in range(replay.num_stages)]


def correct_exit_tradeoff(confidence: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exit k's accuracy trade-off with the most confident samples exiting first.

    Returns (exit_share [N+1], correct_share [N+1], threshold [N+1]): if the share e of tasks
    reaching this exit leaves (those with the highest confidence), correct_share is the share
    of ALL tasks reaching it that exit AND are correct (A_k(e) in dtoee-method.md), and
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
