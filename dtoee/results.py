"""The results of a sweep: when a run is complete, and the tidy table (one row per run) of
``results.parquet`` / ``results.csv``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dtoee.grid import RunSpec

if TYPE_CHECKING:
    import pandas as pd


def read_summary(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return None


def is_complete(run_dir: Path, scenario_hash: str | None = None) -> bool:
    """True when the run wrote a final (not partial) summary, for this scenario if given."""
    summary = read_summary(run_dir)
    if summary is None or summary.get("partial", True):
        return False
    return scenario_hash is None or summary.get("scenario_hash") == scenario_hash


def flatten_summary(summary: dict, prefix: str = "") -> dict[str, Any]:
    """Nested summary -> flat columns joined by '.', e.g. ``delay_s.mean``,
    ``exit_share_by_stage.1``, ``utilisation_by_node.bs0``. Lists become JSON text."""
    flat: dict[str, Any] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_summary(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = json.dumps(value)
        else:
            flat[name] = value
    return flat


FIGURE_COLUMNS = ("delay_s.mean", "delay_s.p50", "delay_s.p95", "delay_s.p99", "accuracy", "tasks_generated",
                  "counts_by_status.completed", "counts_by_status.lost", "counts_by_status.in_flight")


def results_row(run: RunSpec, status: str, summary: dict | None, error: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"run_id": run.run_id}
    row.update(run.params)
    row.update({"seed": run.seed, "status": status, "error": error})
    if summary is not None:
        for key, value in flatten_summary(summary).items():
            if key not in row:
                row[key] = value
    return row


def write_results(out: Path, rows: list[dict]) -> "pd.DataFrame":
    """Write ``results.parquet`` and ``results.csv`` atomically (temporary name + rename)."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    for column in frame.columns:  # a column mixing types (e.g. 1 and "a") -> text, for Parquet
        if frame[column].dtype == object:
            kinds = {type(v) for v in frame[column].dropna()}
            if len(kinds) > 1 and not kinds <= {int, float}:
                frame[column] = frame[column].map(lambda v: v if v is None else str(v))
    for name, write in (("results.parquet", lambda p: frame.to_parquet(p, index=False)),
                        ("results.csv", lambda p: frame.to_csv(p, index=False))):
        tmp = out / f".{name}.tmp"
        write(tmp)
        os.replace(tmp, out / name)
    return frame
