"""Sweep speed-up: the same N runs serially (1 worker) and on W workers; prints a table and
appends it to docs/benchmarks.md.

    .venv/bin/python bench/sweep_speedup.py [--runs 8] [--workers 2] [--scenario scenarios/city_small.toml]
                                            [--duration 10] [--dask]

The runs are N seeds of the scenario (duration shortened with --duration). ns-3 is imported
once before the clock starts (both modes fork every run from a parent that imported it);
the import's cost is reported beside. With --dask the W-worker sweep runs on a Dask
LocalCluster instead (its workers import ns-3 themselves, inside the timed part).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import append, machine, markdown_table  # noqa: E402

from dtoee.config import apply_overrides, read_toml  # noqa: E402
from dtoee.grid import expand  # noqa: E402
from dtoee.runner import prepare_parent  # noqa: E402
from dtoee.sweep import run_sweep  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="scenarios/city_small.toml")
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0, help="simulation.duration_s of every run")
    parser.add_argument("--dask", action="store_true", help="W workers on a Dask LocalCluster")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    text_machine = machine()
    base = apply_overrides(read_toml(args.scenario), [f"simulation.duration_s={args.duration}"])
    runs = expand(base, [], range(1, args.runs + 1))
    started = time.perf_counter()
    prepare_parent([run.scenario for run in runs])
    import_s = time.perf_counter() - started
    timings = {}
    with tempfile.TemporaryDirectory() as scratch:
        for label, workers, dask in (("serial", 1, None), (f"{args.workers} workers" + (" (Dask)" if args.dask else ""),
                                                           args.workers, "local" if args.dask else None)):
            result = run_sweep(runs, Path(scratch) / label.replace(" ", "_"), workers=workers, dask=dask, progress=True)
            assert result.ok and len(result.executed) == len(runs), result.failed
            sim = result.results["wall_s"].sum()
            timings[label] = (result.wall_s, sim)
    serial = timings["serial"][0]
    rows = [[label, f"{wall:.1f}", f"{sim:.1f}", f"{serial / wall:.2f}x"] for label, (wall, sim) in timings.items()]
    table = markdown_table(["mode", "sweep wall s", "sum of runs' wall s", "speed-up vs serial"], rows)
    print(table)
    print(f"ns-3 import + glue + model, once, before the clock: {import_s:.1f} s")
    command = "python bench/sweep_speedup.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    notes = (f"{args.runs} runs of `{args.scenario}` (seeds 1-{args.runs}, duration_s = {args.duration:g}). "
             f"ns-3 import + glue + model cache, paid once before timing: {import_s:.1f} s.")
    if not args.no_append:
        append(f"Sweep speed-up, {args.runs} runs", table, notes, command.strip(), text_machine)


if __name__ == "__main__":
    main()
