"""Traces of a run: one row per task, one row per hop, and the summary.

Files written into the run directory (pandas; Parquet through pyarrow):
``tasks.parquet`` + ``tasks.csv``, ``hops.parquet``, ``policy.parquet`` (every node's
offloading probabilities and thresholds over time), ``summary.json``. Each file is written
to a temporary name and moved into place, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from dtoee.config import ScenarioError

TASK_COLUMNS = [
    "task_id", "ue", "entry_node", "created_s", "finished_s", "delay_s", "status", "loss_reason",
    "exit_stage", "exit_node", "confidence", "predicted", "label", "correct",
]
# entry_node is the UE's serving base station (nearest eNB; with radio off, its group's node).
# Per-task size and radio figures, written after TASK_COLUMNS:
# input_bytes: what the task uploaded (drawn per task, see dtoee/workload.py), without the
#   16-byte frame header; prompt_tokens: a large decoder's prompt length (0 otherwise).
# uplink_s / downlink_s: UE -> serving server and exit server -> UE transfer times (LTE + EPC
#   + core link; NaN if that transfer did not finish); ue_distance_m: UE to serving eNB.
TASK_RADIO_COLUMNS = ["input_bytes", "prompt_tokens", "uplink_s", "downlink_s", "ue_distance_m"]
# sample: the index of the task's input in the test split (what the accuracy prediction on the
# run's own samples, summary.json's predicted.accuracy_on_run_samples, is computed over).
TASK_SAMPLE_COLUMNS = ["sample"]
HOP_COLUMNS = [
    "task_id", "kind", "src", "dst", "stage", "bytes", "start_s", "end_s", "enqueue_s", "confidence", "exited",
]


class Trace:
    """Collects hop rows during the run (append-only; one row per transfer or service)."""

    def __init__(self) -> None:
        self.hops: list[tuple] = []

    def hop(self, task_id: int, kind: str, src: str, dst: str, stage: int, nbytes: int,
            start_s: float, end_s: float, *, enqueue_s: float = math.nan, confidence: float = math.nan,
            exited: bool | None = None) -> None:
        self.hops.append((task_id, kind, src, dst, stage, nbytes, start_s, end_s, enqueue_s, confidence, exited))


def tasks_frame(tasks, ue_distance_m: dict[int, float] | None = None) -> pd.DataFrame:
    """One row per task; ``ue_distance_m`` maps a UE index to its distance from its serving eNB."""
    distance = ue_distance_m or {}
    rows = []
    for t in tasks:
        completed = t.status == "completed"
        rows.append((t.task_id, t.ue, t.entry_node, t.created_s, t.finished_s,
                     t.finished_s - t.created_s if completed else math.nan, t.status, t.loss_reason,
                     t.exit_stage if completed else 0, t.exit_node if completed else "",
                     t.confidence if completed else math.nan, t.predicted if completed else -1,
                     t.label, bool(completed and t.predicted == t.label),
                     t.size.input_bytes if t.size is not None else t.payload_bytes,
                     t.size.tokens if t.size is not None else 0, t.uplink_s, t.downlink_s,
                     distance.get(t.ue, math.nan), t.sample))
    return pd.DataFrame(rows, columns=TASK_COLUMNS + TASK_RADIO_COLUMNS + TASK_SAMPLE_COLUMNS)


def hops_frame(trace: Trace) -> pd.DataFrame:
    frame = pd.DataFrame(trace.hops, columns=HOP_COLUMNS)
    frame["exited"] = frame["exited"].astype("boolean")
    return frame


def measured_completed(tasks: pd.DataFrame, measured_from_s: float = 0.0) -> pd.DataFrame:
    """The tasks a run's figures describe: completed, and created at or after the warm-up
    (``simulation.warmup_s``, written to summary.json as ``measured_from_s``)."""
    return tasks[(tasks["status"] == "completed") & (tasks["created_s"] >= measured_from_s)]


def summarize(tasks: pd.DataFrame, node_busy_s: dict[str, float], node_servers: dict[str, int],
              observed_s: float, num_stages: int, measured_from_s: float = 0.0, **extra) -> dict:
    """mean/p50/p95/p99 delay, accuracy and exit shares over the completed tasks created at or
    after ``measured_from_s`` (the warm-up); counts by status over every task (so completed +
    lost + in_flight = generated still holds); utilisation over the whole observed time."""
    completed = measured_completed(tasks, measured_from_s)
    delay = completed["delay_s"].to_numpy()

    def stat(fn):
        return float(fn(delay)) if len(delay) else None

    exits = completed["exit_stage"].value_counts()
    return {
        "tasks_generated": int(len(tasks)),
        "measured_from_s": float(measured_from_s),
        "tasks_measured": int(len(completed)),
        "counts_by_status": {s: int((tasks["status"] == s).sum()) for s in ("completed", "lost", "in_flight")},
        "loss_reasons": {str(k): int(v) for k, v in tasks.loc[tasks["status"] == "lost", "loss_reason"].value_counts().items()},
        "delay_s": {
            "mean": stat(np.mean), "p50": stat(lambda d: np.percentile(d, 50)),
            "p95": stat(lambda d: np.percentile(d, 95)), "p99": stat(lambda d: np.percentile(d, 99)),
        },
        "accuracy": float(completed["correct"].mean()) if len(completed) else None,
        **radio_figures(completed),
        "exit_share_by_stage": {str(k): (float(exits.get(k, 0)) / len(completed) if len(completed) else 0.0)
                                for k in range(1, num_stages + 1)},
        "utilisation_by_node": {name: busy / (node_servers[name] * observed_s) for name, busy in node_busy_s.items()},
        **extra,
    }


def radio_figures(completed: pd.DataFrame) -> dict:
    """Uplink and downlink time (mean, p95, s) of the given tasks, the radio's share of their
    delay (sum of uplink + downlink over sum of delay), and their mean input bytes."""
    if "uplink_s" not in completed.columns or not len(completed):
        return {"uplink_s": {"mean": None, "p95": None}, "downlink_s": {"mean": None, "p95": None},
                "radio_share": {"uplink": None, "downlink": None}, "input_bytes_mean": None}
    up, down = completed["uplink_s"].to_numpy(float), completed["downlink_s"].to_numpy(float)
    total = float(completed["delay_s"].sum())
    return {
        "uplink_s": {"mean": float(np.mean(up)), "p95": float(np.percentile(up, 95))},
        "downlink_s": {"mean": float(np.mean(down)), "p95": float(np.percentile(down, 95))},
        "radio_share": {"uplink": float(up.sum() / total) if total > 0 else None,
                        "downlink": float(down.sum() / total) if total > 0 else None},
        "input_bytes_mean": float(completed["input_bytes"].mean()),
    }


def _atomic(path: Path, write) -> None:
    """Write through ``.NAME.tmp`` and move it into place; never leave the temporary file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_output_dir(path: str | Path, option: str) -> Path:
    """Raise ``ScenarioError`` (one line, before any work) unless ``path`` is a directory, or
    can be created as one: no file in its place or on the way to it, and a writable existing
    ancestor. Creates nothing."""
    path = Path(path)
    text = str(path)
    if "\x00" in text or any(len(os.fsencode(part)) > 255 for part in path.parts):
        raise ScenarioError(f"{option} {text!r}: not a usable path (a NUL character or a name over 255 bytes)")
    probe = path
    while not probe.exists():
        if probe.is_symlink():
            raise ScenarioError(f"{option} {text!r}: {str(probe)!r} is a dangling symbolic link")
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        what = "is" if probe == path else f"would be inside {str(probe)!r}, which is"
        raise ScenarioError(f"{option} {text!r} {what} not a directory; allowed: a directory, or a path where one can be created")
    try:  # os.access is no proof (root, read-only mounts, /proc): make a folder there and remove it
        os.rmdir(tempfile.mkdtemp(prefix=".dtoee-probe-", dir=probe))
    except OSError as error:
        raise ScenarioError(f"{option} {text!r}: cannot create anything in {str(probe)!r} "
                            f"({error.strerror}); allowed: a directory you can write to") from None
    return path


def write_outputs(out_dir: Path, tasks: pd.DataFrame, hops: pd.DataFrame, summary: dict, csv: bool = True,
                  policy: pd.DataFrame | None = None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    if policy is not None:
        _atomic(out_dir / "policy.parquet", lambda p: policy.to_parquet(p, index=False))
    _atomic(out_dir / "tasks.parquet", lambda p: tasks.to_parquet(p, index=False))
    if csv:
        _atomic(out_dir / "tasks.csv", lambda p: tasks.to_csv(p, index=False, float_format="%.9g"))
    _atomic(out_dir / "hops.parquet", lambda p: hops.to_parquet(p, index=False))
    _atomic(out_dir / "summary.json", lambda p: p.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n"))
