"""Sweeps: many runs of one scenario over a grid of values and seeds, resumable, in parallel.

Every simulation runs in its own child, forked (``os.fork`` + a pipe) from a parent that has
already imported ns-3 and loaded the C++ glue: no run pays the 10-20 s import and no run
inherits another's ns-3 state (ns3-notes.md). Locally the sweep process is that parent and
keeps up to ``workers`` children running at once. With ``dask=ADDRESS`` (``"local"`` starts a
:class:`distributed.LocalCluster`) each Dask worker process becomes such a parent: it imports
ns-3 once, on its first run, and forks a child per run. Dask worker processes may be
daemonic, which forbids ``multiprocessing`` children; a plain ``os.fork`` is allowed.

Layout of a sweep directory ``DIR``::

    DIR/sweep.json        what was asked (scenario, overrides, grid, seeds) and every run's values
    DIR/results.parquet   one tidy row per run: run_id, swept values, seed, status, summary figures
    DIR/results.csv       the same table as CSV
    DIR/runs/<run_id>/    the run's own traces (tasks/hops/policy parquet, summary.json, run.json)

A run is complete when its ``summary.json`` exists with ``partial == false`` and the
scenario hash of the run it describes; rerunning a sweep runs only the others.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
import pickle
import re
import select
import shutil
import signal
import sys
import time
import tomllib
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from dtoee.config import Scenario, ScenarioError, apply_overrides, scenario_from_dict

# Grid keys that are not scenario fields.
LOAD_KEY = "load"  # multiplies every UE group's rate_per_s (and every ue_rate event's)


# Parsing ---------------------------------------------------------------------------------

def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets/braces/quotes: ``[1,2],[3,4]`` -> two values."""
    parts, depth, quote, current = [], 0, None, []
    for char in text:
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts]


def parse_value(raw: str) -> Any:
    """A TOML value (``50``, ``1e9``, ``true``, ``"pf"``, ``[1, 2]``); anything else is a string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def parse_grid(assignment: str) -> tuple[str, list[Any]]:
    """``"radio.bandwidth_rb=25,50"`` -> ("radio.bandwidth_rb", [25, 50])."""
    if "=" not in assignment:
        raise ScenarioError(f"--grid {assignment!r}: expected key=v1,v2,..., e.g. radio.bandwidth_rb=25,50")
    key, raw = assignment.split("=", 1)
    key = key.strip()
    if not key or not all(key.split(".")):
        raise ScenarioError(f"--grid {assignment!r}: empty part in key {key!r}")
    values = [parse_value(part) for part in _split_top_level(raw)]
    if not values or any(part == "" for part in _split_top_level(raw)):
        raise ScenarioError(f"--grid {assignment!r}: empty value; allowed: comma-separated values")
    return key, values


def parse_seeds(text: str | int | Iterable[int]) -> list[int]:
    """``"1-5"`` -> [1, 2, 3, 4, 5]; ``"1,3,7"``; ``"2"``; or a list of ints."""
    if isinstance(text, int):
        return [text]
    if not isinstance(text, str):
        return [int(s) for s in text]
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if match:
            low, high = int(match.group(1)), int(match.group(2))
            if high < low:
                raise ScenarioError(f"--seeds {text!r}: range {part!r} runs backwards")
            seeds.extend(range(low, high + 1))
        elif part.isdigit():
            seeds.append(int(part))
        else:
            raise ScenarioError(f"--seeds {text!r}: {part!r}; allowed: N, N-M or a comma-separated list")
    if len(set(seeds)) != len(seeds):
        raise ScenarioError(f"--seeds {text!r}: a seed is repeated")
    return seeds


# Applying grid values to a scenario dict -------------------------------------------------

def scale_load(data: dict, factor: float) -> dict:
    """Multiply every UE group's rate and every ``ue_rate`` event's rate by ``factor``."""
    factor = float(factor)
    if not (factor >= 0 and math.isfinite(factor)):
        raise ScenarioError(f"load = {factor!r}; allowed: a finite number >= 0 (multiplies every UE rate)")
    for group in data.get("ue_groups", []):
        group["rate_per_s"] = float(group.get("rate_per_s", 1.0)) * factor
    for event in data.get("events", []):
        if event.get("kind") == "ue_rate" and "rate_per_s" in event:
            event["rate_per_s"] = float(event["rate_per_s"]) * factor
    return data


def set_value(data: dict, key: str, value: Any) -> dict:
    """Set a dotted ``key`` in a scenario dict. ``load`` scales UE rates; a ``*`` part stands
    for every item of a list (``ue_groups.*.rate_per_s``); other keys as ``--set``."""
    if key == LOAD_KEY:
        return scale_load(data, value)
    parts = key.split(".")
    if "*" in parts:
        star = parts.index("*")
        prefix = parts[:star]
        target: Any = data
        for part in prefix:
            target = target[int(part)] if isinstance(target, list) else target.get(part) if isinstance(target, dict) else None
            if target is None:
                break
        if not isinstance(target, list):
            raise ScenarioError(f"--grid {key}: {'.'.join(prefix)} is not a list; '*' stands for every item of a list")
        for index in range(len(target)):
            set_value(data, ".".join([*prefix, str(index), *parts[star + 1:]]), value)
        return data
    # Reuse --set's semantics (list indices, tables created on demand) with a TOML literal.
    return apply_overrides(data, [f"{key}={_toml_literal(value)}"])


def _toml_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if not (isinstance(value, float) and not math.isfinite(value)) else str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_literal(v)}" for k, v in value.items()) + "}"
    raise ScenarioError(f"cannot express {value!r} as a scenario value")


# Runs ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunSpec:
    """One simulation of a sweep: its directory name, the values that define it, its scenario."""

    run_id: str
    params: dict[str, Any]
    seed: int
    scenario: Scenario

    def key(self) -> str:
        return self.scenario.content_hash()


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value) if abs(value) < 1e6 else f"{value:g}"
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return str(text)


def run_id(params: dict[str, Any], seed: int) -> str:
    """A readable, filesystem-safe directory name: ``radio.bandwidth_rb=25_seed1``."""
    parts = [f"{key}={_fmt(value)}" for key, value in params.items()] + [f"seed{seed}"]
    name = re.sub(r"[^A-Za-z0-9._=+-]+", "-", "_".join(parts))
    if len(name) > 120:
        digest = hashlib.sha1(json.dumps([params, seed], sort_keys=True, default=str).encode()).hexdigest()[:10]
        name = f"{name[:100]}-{digest}"
    return name


def expand(base: dict, grid: dict[str, list[Any]] | list[tuple[str, list[Any]]], seeds: Iterable[int],
           *, extra: Callable[[dict, dict], None] | None = None) -> list[RunSpec]:
    """Every combination of grid values x seeds as validated :class:`RunSpec` (first key
    varies slowest, seeds fastest). A value that makes the scenario invalid stops here,
    before anything runs, with the run's values in the message."""
    items = list(grid.items()) if isinstance(grid, dict) else list(grid)
    keys = [key for key, _ in items]
    if len(set(keys)) != len(keys):
        raise ScenarioError(f"--grid: a key is given twice ({keys})")
    seeds = list(seeds)
    runs = []
    for combination in itertools.product(*[values for _, values in items]):
        params = dict(zip(keys, combination))
        for seed in seeds:
            data = copy.deepcopy(base)
            for key, value in params.items():
                set_value(data, key, value)
            if extra is not None:
                extra(data, params)
            data = apply_overrides(data, [f"simulation.seed={seed}", "simulation.progress=false"])
            try:
                scenario = scenario_from_dict(data)
            except ScenarioError as error:
                where = ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())
                raise ScenarioError(f"{error} (in the run with {where or 'no grid values'}, seed {seed})") from None
            runs.append(RunSpec(run_id(params, seed), params, seed, scenario))
    ids = [run.run_id for run in runs]
    if len(set(ids)) != len(ids):  # values that differ only in characters we replaced
        runs = [RunSpec(f"{r.run_id}-{r.key()[:8]}", r.params, r.seed, r.scenario) for r in runs]
    return runs


def read_toml(path: str | Path) -> dict:
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(f"scenario file {str(path)!r} cannot be read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"scenario file {str(path)!r} is not valid TOML: {error}") from None


# Completion and results ------------------------------------------------------------------

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


# Forking one simulation ------------------------------------------------------------------

class RunFailed(RuntimeError):
    """A simulation child failed or died; the message carries its traceback."""


_parent_ready = False


def prepare_parent(scenarios: Iterable[Scenario] = ()) -> None:
    """Make this process a parent that forks simulations: import ns-3 and load the C++ glue,
    import the co-simulation, keep torch on one thread (forked children hang otherwise),
    and train/cache each model the runs need, so no child pays for any of it."""
    global _parent_ready
    import torch

    torch.set_num_threads(1)
    if not _parent_ready:
        from ns3_glue.build import load_glue

        load_glue()
        import dtoee.run  # noqa: F401  (co-simulation, network, pandas, pyarrow)
        _parent_ready = True
    seen = set()
    for scenario in scenarios:
        key = (scenario.model.family, scenario.model.train_seed)
        if key not in seen:
            seen.add(key)
            from inference import load_staged_model

            load_staged_model(*key)


def _set_parent_death_signal() -> None:
    """Linux: the child gets SIGKILL if the process that forked it dies (best effort)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux, or no libc: fine
        pass


class ForkedRun:
    """A simulation running in a forked child; the result comes back pickled through a pipe."""

    def __init__(self, scenario: Scenario, out_dir: str | Path, *, die_with_parent: bool = False) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        read_fd, write_fd = os.pipe()
        parent_pid = os.getpid()
        pid = os.fork()
        if pid == 0:  # child: run, report, leave without running the parent's cleanup
            code = 0
            try:
                os.close(read_fd)
                if die_with_parent:
                    _set_parent_death_signal()
                    if os.getppid() != parent_pid:  # the parent died before prctl took effect
                        os._exit(1)
                from dtoee.run import run_scenario

                try:
                    result = ("ok", run_scenario(scenario, out_dir, progress=False))
                except BaseException as error:  # noqa: BLE001 - reported to the parent
                    result = ("error", f"{type(error).__name__}: {error}\n{traceback.format_exc()}")
                payload = pickle.dumps(result)
                view = memoryview(payload)
                while view:
                    written = os.write(write_fd, view)
                    view = view[written:]
                os.close(write_fd)
            except BaseException:  # noqa: BLE001
                code = 1
            finally:
                for stream in (sys.stdout, sys.stderr):
                    try:
                        stream.flush()
                    except Exception:  # noqa: BLE001
                        pass
                os._exit(code)
        os.close(write_fd)
        self.pid = pid
        self.fd = read_fd
        self._chunks: list[bytes] = []
        self.started = time.perf_counter()

    def read_available(self) -> bool:
        """Read what the pipe holds now; True at end of file (the child is done)."""
        chunk = os.read(self.fd, 1 << 16)
        if chunk:
            self._chunks.append(chunk)
            return False
        return True

    def finish(self) -> dict:
        """Reap the child; return its summary or raise :class:`RunFailed`."""
        os.close(self.fd)
        _, status = os.waitpid(self.pid, 0)
        data = b"".join(self._chunks)
        try:
            kind, payload = pickle.loads(data)
        except Exception:  # noqa: BLE001 - empty or cut short: the child died
            raise RunFailed(f"the simulation child died without a result (wait status {status})") from None
        if kind != "ok":
            raise RunFailed(payload)
        return payload

    def wait(self) -> dict:
        while not self.read_available():
            pass
        return self.finish()

    def kill(self, sig: int = signal.SIGTERM) -> None:
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass


def fork_run(scenario: Scenario, out_dir: str | Path) -> dict:
    """Run one simulation in a child forked from this process (``os.fork`` + pipe, so it also
    works inside daemonic processes such as Dask workers); return its summary."""
    return ForkedRun(scenario, out_dir).wait()


def _clear_run_dir(run_dir: Path) -> None:
    """Remove what an earlier, unfinished attempt left (only inside the run's own folder)."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)


def _write_run_json(run_dir: Path, run: RunSpec) -> None:
    info = {"run_id": run.run_id, "params": run.params, "seed": run.seed, "scenario_hash": run.key(),
            "scenario": run.scenario.model_dump(mode="json")}
    (run_dir / "run.json").write_text(json.dumps(info, indent=2, default=str) + "\n")


def dask_run(scenario: Scenario, run_dir: str, run_json: dict) -> tuple[str, Any]:
    """Task executed on a Dask worker: make the worker process a fork parent (first time
    only), then fork one child for this run. Returns ("ok", summary) or ("error", text)
    rather than raising, so Dask does not retry a deterministic failure elsewhere."""
    try:
        prepare_parent([scenario])
        path = Path(run_dir)
        _clear_run_dir(path)
        (path / "run.json").write_text(json.dumps(run_json, indent=2, default=str) + "\n")
        return "ok", fork_run(scenario, path)
    except BaseException as error:  # noqa: BLE001
        return "error", f"{type(error).__name__}: {error}\n{traceback.format_exc()}"


# The sweep -------------------------------------------------------------------------------

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
    sweep_info = {**(meta or {}), "runs": [{"run_id": r.run_id, "params": r.params, "seed": r.seed,
                                            "scenario_hash": r.key()} for r in runs]}
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
                _run_dask(todo, out, workers, dask, report)
            else:
                _run_local(todo, out, workers, report)
    finally:
        if bar is not None:
            bar.close()
    if rows or not runs:
        result.results = write_results(out, [rows.get(i) or results_row(r, "pending", None) for i, r in zip(ids, runs)])
    result.wall_s = time.perf_counter() - started
    return result


def _run_local(todo: list[RunSpec], out: Path, workers: int, report) -> None:
    prepare_parent([run.scenario for run in todo])
    pending = deque(todo)
    active: dict[int, tuple[ForkedRun, RunSpec]] = {}
    try:
        while pending or active:
            while pending and len(active) < workers:
                run = pending.popleft()
                run_dir = out / "runs" / run.run_id
                _clear_run_dir(run_dir)
                _write_run_json(run_dir, run)
                child = ForkedRun(run.scenario, run_dir, die_with_parent=True)
                active[child.fd] = (child, run)
            ready, _, _ = select.select(list(active), [], [])
            for fd in ready:
                child, run = active[fd]
                if child.read_available():
                    del active[fd]
                    try:
                        summary, error = child.finish(), None
                    except RunFailed as failure:
                        summary, error = None, str(failure)
                    report(run, summary, error)
    except BaseException:
        for child, _ in active.values():  # interrupted: stop the children, reap them
            child.kill()
        for child, _ in active.values():
            try:
                os.close(child.fd)
            except OSError:
                pass
            try:
                os.waitpid(child.pid, 0)
            except ChildProcessError:
                pass
        raise


def _run_dask(todo: list[RunSpec], out: Path, workers: int, address: str, report) -> None:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if address == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
        client = Client(cluster)
    else:
        client = Client(address)
    try:
        futures = {}
        for run in todo:
            run_dir = out / "runs" / run.run_id
            run_json = {"run_id": run.run_id, "params": run.params, "seed": run.seed, "scenario_hash": run.key(),
                        "scenario": run.scenario.model_dump(mode="json")}
            future = client.submit(dask_run, run.scenario, str(run_dir.resolve()), run_json,
                                   key=f"dtoee-run-{run.run_id}-{run.key()}-{time.time_ns()}", pure=False)
            futures[future] = run
        for future in as_completed(futures):
            run = futures[future]
            try:
                kind, payload = future.result()
            except Exception as error:  # noqa: BLE001 - the worker died
                kind, payload = "error", f"{type(error).__name__}: {error}"
            report(run, payload if kind == "ok" else None, None if kind == "ok" else payload)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# Convenience: from a TOML file -----------------------------------------------------------

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
