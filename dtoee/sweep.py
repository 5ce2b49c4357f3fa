"""Sweeps: many runs of one scenario over a grid of values and seeds, resumable, in parallel.

In three parts, composed here by :func:`run_sweep` and :func:`sweep_file` (``dtoee sweep``):

* ``dtoee/grid.py``: ``--grid`` / ``--seeds`` parsed (the same keys and values as ``--set``,
  ``dtoee/config.py``) and expanded into validated runs (:class:`~dtoee.grid.RunSpec`);
* ``dtoee/runner.py``: each run in a child forked from a parent that imported ns-3 once, on a
  local pool or on Dask workers;
* ``dtoee/results.py``: completion of a run and the tidy results table.

Layout of a sweep directory ``DIR``::

    DIR/sweep.json        what was asked (scenario, overrides, grid, seeds) and every run's values
    DIR/results.parquet   one tidy row per run: run_id, swept values, seed, status, summary figures
    DIR/results.csv       the same table as CSV
    DIR/runs/<run_id>/    the run's own traces (tasks/hops/policy parquet, summary.json, run.json)

A run is complete when its ``summary.json`` exists with ``partial == false`` and the
scenario hash of the run it describes; rerunning a sweep runs only the others.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from dtoee.config import ScenarioError, apply_overrides, read_toml, scale_load, set_value
from dtoee.grid import RunSpec, expand, parse_grid, parse_seeds, run_id
from dtoee.results import flatten_summary, is_complete, read_summary, results_row, write_results
from dtoee.runner import ForkedRun, RunFailed, fork_run, prepare_parent, run_dask, run_local

# The sweep's Python API (docs/experiments.md): its parts are importable from here too.
__all__ = ["ForkedRun", "RunFailed", "RunSpec", "ScenarioError", "SweepResult", "apply_overrides", "expand",
           "flatten_summary", "fork_run", "is_complete", "parse_grid", "parse_seeds", "prepare_parent",
           "read_summary", "read_toml", "run_id", "run_sweep", "scale_load", "set_value", "sweep_file"]


@dataclass
class SweepResult:
    out: Path
    results: Any  # pandas.DataFrame, one row per run
    executed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


def run_sweep(runs: list[RunSpec], out: str | Path, *, workers: int = 1, dask: str | None = None,
              progress: bool = True, meta: dict | None = None, on_result: Callable[[RunSpec, dict | None, str | None], None] | None = None) -> SweepResult:
    """Run every run not already complete under ``out/runs/``; write ``results.parquet``
    after each finished run (atomically). ``workers``: simultaneous simulations (local
    children, or Dask workers of a ``LocalCluster`` when ``dask == "local"``)."""
    started = time.perf_counter()
    out = Path(out)
    if workers < 1:  # before anything is created
        raise ScenarioError(f"--workers {workers}; allowed: an integer >= 1")
    (out / "runs").mkdir(parents=True, exist_ok=True)
    ids = [run.run_id for run in runs]
    if len(set(ids)) != len(ids):
        raise ScenarioError("two runs of the sweep have the same run_id")
    sweep_info = {**(meta or {}), "runs": [r.info(scenario=False) for r in runs]}
    tmp = out / ".sweep.json.tmp"
    tmp.write_text(json.dumps(sweep_info, indent=2, default=str) + "\n")
    os.replace(tmp, out / "sweep.json")

    rows: dict[str, dict] = {}
    result = SweepResult(out, None)
    todo = []
    for run in runs:
        run_dir = out / "runs" / run.run_id
        if is_complete(run_dir, run.key()):
            rows[run.run_id] = results_row(run, "complete", read_summary(run_dir))
            result.skipped.append(run.run_id)
        else:
            todo.append(run)

    def ordered_rows() -> list[dict]:
        return [rows[i] for i in ids if i in rows]

    def done(run: RunSpec, summary: dict | None, error: str | None) -> None:
        if error is None:
            rows[run.run_id] = results_row(run, "complete", summary)
            result.executed.append(run.run_id)
        else:
            rows[run.run_id] = results_row(run, "failed", read_summary(out / "runs" / run.run_id), error.splitlines()[0] if error else error)
            result.failed[run.run_id] = error
        write_results(out, ordered_rows())
        if on_result is not None:
            on_result(run, summary, error)

    bar = None
    if progress and todo:
        import tqdm

        tqdm.tqdm.monitor_interval = 0  # no monitor thread in a process that forks
        bar = tqdm.tqdm(total=len(runs), initial=len(runs) - len(todo), unit="run", desc="sweep", dynamic_ncols=True)

    def report(run: RunSpec, summary: dict | None, error: str | None) -> None:
        done(run, summary, error)
        if bar is not None:
            mean = (summary or {}).get("delay_s", {}).get("mean")
            bar.set_postfix_str(f"{run.run_id}: " + ("FAILED" if error else f"{mean * 1e3:.1f} ms" if mean is not None else "done")
                                + (f" ({len(result.failed)} failed)" if result.failed else ""))
            bar.update(1)

    try:
        if todo:
            if dask:
                run_dask(todo, out, workers, dask, report)
            else:
                run_local(todo, out, workers, report)
    finally:
        if bar is not None:
            bar.close()
    if rows or not runs:
        result.results = write_results(out, [rows.get(i) or results_row(r, "pending", None) for i, r in zip(ids, runs)])
    result.wall_s = time.perf_counter() - started
    return result


def sweep_file(scenario_path: str | Path, grid: list[str] | dict[str, list[Any]], seeds: str | Iterable[int] | None,
               out: str | Path, *, overrides: list[str] | None = None, workers: int = 1, dask: str | None = None,
               progress: bool = True) -> SweepResult:
    """The Python form of ``dtoee sweep``: ``grid`` as ``["key=v1,v2", ...]`` or a dict."""
    base = apply_overrides(read_toml(scenario_path), list(overrides or []))
    if isinstance(grid, dict):
        grid_items = list(grid.items())
    else:
        grid_items = [parse_grid(g) for g in grid]
    if seeds is None:
        seeds = [int(base.get("simulation", {}).get("seed", 1))]
    seed_list = parse_seeds(seeds)
    runs = expand(base, grid_items, seed_list)
    meta = {"kind": "sweep", "scenario_file": str(scenario_path), "overrides": list(overrides or []),
            "grid": {k: v for k, v in grid_items}, "seeds": seed_list}
    return run_sweep(runs, out, workers=workers, dask=dask, progress=progress, meta=meta)
