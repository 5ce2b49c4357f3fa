"""Running simulations: each in a child forked from a parent that has imported ns-3 once.

Every simulation runs in its own child, forked (``os.fork`` + a pipe) from a parent that has
already imported ns-3 and loaded the C++ glue: no run pays the 10-20 s import and no run
inherits another's ns-3 state. Locally the sweep process is that parent and keeps up to
``workers`` children running at once (:func:`run_local`). With Dask (:func:`run_dask`) each
Dask worker process becomes such a parent: it imports ns-3 once, on its first run, and forks a
child per run. Dask worker processes may be daemonic, which forbids ``multiprocessing``
children; a plain ``os.fork`` is allowed.
"""

from __future__ import annotations

import json
import os
import pickle
import select
import shutil
import signal
import sys
import time
import traceback
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable

from dtoee.config import Scenario
from dtoee.grid import RunSpec

Report = Callable[[RunSpec, "dict | None", "str | None"], None]  # (run, summary, error) when a run ends


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


def _write_run_json(run_dir: Path, run_json: dict) -> None:
    (run_dir / "run.json").write_text(json.dumps(run_json, indent=2, default=str) + "\n")


def dask_run(scenario: Scenario, run_dir: str, run_json: dict) -> tuple[str, Any]:
    """Task executed on a Dask worker: make the worker process a fork parent (first time
    only), then fork one child for this run. Returns ("ok", summary) or ("error", text)
    rather than raising, so Dask does not retry a deterministic failure elsewhere."""
    try:
        prepare_parent([scenario])
        path = Path(run_dir)
        _clear_run_dir(path)
        _write_run_json(path, run_json)
        return "ok", fork_run(scenario, path)
    except BaseException as error:  # noqa: BLE001
        return "error", f"{type(error).__name__}: {error}\n{traceback.format_exc()}"


def run_local(todo: list[RunSpec], out: Path, workers: int, report: Report) -> None:
    """Up to ``workers`` forked children at once from this process; ``report(run, summary,
    error)`` as each finishes. Interrupted: the children are stopped and reaped."""
    prepare_parent([run.scenario for run in todo])
    pending = deque(todo)
    active: dict[int, tuple[ForkedRun, RunSpec]] = {}
    try:
        while pending or active:
            while pending and len(active) < workers:
                run = pending.popleft()
                run_dir = out / "runs" / run.run_id
                _clear_run_dir(run_dir)
                _write_run_json(run_dir, run.info())
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


def run_dask(todo: list[RunSpec], out: Path, workers: int, address: str, report: Report) -> None:
    """The runs as Dask tasks (:func:`dask_run`) on ``address`` (``"local"``: a LocalCluster of
    ``workers`` processes, one thread each); ``report`` as each finishes."""
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
            future = client.submit(dask_run, run.scenario, str(run_dir.resolve()), run.info(),
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
