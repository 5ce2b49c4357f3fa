"""CLI commands for experiments: sweeps, comparisons and plots (registered by dtoee.cli).

``dtoee sweep SCENARIO.toml --grid key=v1,v2 [--grid ...] [--seeds 1-5] [--workers W]
[--dask ADDRESS|local] --out DIR``: every combination x seed, resumable (dtoee/sweep.py: the
grid in dtoee/grid.py, the runner in dtoee/runner.py, the results table in dtoee/results.py).

``dtoee compare [SCENARIO.toml] [--loads 0.6,1,1.4] [--seeds 1-3] [--policies ...] --out DIR``:
DTO-EE against every baseline over loads and seeds; comparison.csv and plots (dtoee/compare.py).

``dtoee plot DIR``: the plots of a run directory, a sweep directory or a comparison directory.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path


def check_workers(workers: int) -> None:
    from dtoee.config import ScenarioError

    if workers < 1:
        raise ScenarioError(f"--workers {workers}; allowed: an integer >= 1")


def parse_loads(text: str) -> list[float]:
    """``"0.6,1,1.4"`` -> [0.6, 1.0, 1.4]; one clear error for anything else."""
    from dtoee.config import ScenarioError

    loads = []
    for part in str(text).split(","):
        try:
            value = float(part)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value >= 0):
            raise ScenarioError(f"--loads {text!r}: {part.strip()!r}; allowed: comma-separated numbers >= 0")
        loads.append(value)
    return loads


def cmd_sweep(args) -> int:
    from dtoee.sweep import sweep_file
    from dtoee.trace import check_output_dir

    check_output_dir(args.out, "--out")  # before any work: refusing creates nothing
    check_workers(args.workers)

    result = sweep_file(args.scenario, args.grid or [], args.seeds, args.out, overrides=args.set,
                        workers=args.workers, dask=args.dask, progress=not args.no_progress)
    _print_sweep(result)
    return 0 if result.ok else 1


def _print_sweep(result) -> None:
    frame = result.results
    print(f"{len(frame)} runs: {len(result.executed)} run now, {len(result.skipped)} already complete, "
          f"{len(result.failed)} failed; wall {result.wall_s:.1f} s -> {result.out / 'results.parquet'}")
    for run_id, error in result.failed.items():
        print(f"FAILED {run_id}: {error.strip().splitlines()[-1] if error.strip() else error}", file=sys.stderr)


def cmd_compare(args) -> int:
    from dtoee.compare import run_comparison
    from dtoee.trace import check_output_dir

    check_output_dir(args.out, "--out")
    check_workers(args.workers)
    result = run_comparison(args.scenario, args.out, loads=parse_loads(args.loads), seeds=args.seeds, policies=args.policies,
                            overrides=args.set, workers=args.workers, dask=args.dask,
                            progress=not args.no_progress, step=not args.no_step, plots=not args.no_plots)
    _print_sweep(result["sweep"])
    print(result["table_text"])
    print(f"-> {result['csv']}")
    for path in result["plots"]:
        print(f"   {path}")
    return 0 if result["sweep"].ok else 1


def plot_directory(directory: Path, out: Path | None = None) -> list[Path]:
    """Draw whatever ``directory`` holds: a comparison (its table is written again too), a
    sweep, or a single run."""
    import json

    import pandas as pd

    from dtoee.compare import write_comparison
    from dtoee.plots import run_plots, sweep_plots

    directory = Path(directory)
    given_out, out = out, out or directory / "plots"
    if (directory / "results.parquet").exists():
        results = pd.read_parquet(directory / "results.parquet")
        info_path = directory / "sweep.json"
        info = json.loads(info_path.read_text()) if info_path.exists() else None
        if (directory / "comparison.json").exists() or (info or {}).get("kind") == "comparison":
            return write_comparison(directory, results, plots=True, plots_dir=given_out)["plots"]
        return sweep_plots(results, out, info)
    if (directory / "summary.json").exists():
        return run_plots(directory, out)
    raise FileNotFoundError(f"{directory}: neither a run (summary.json) nor a sweep (results.parquet)")


def cmd_plot(args) -> int:
    from dtoee.trace import check_output_dir

    if args.out:
        check_output_dir(args.out, "--out")
    try:
        paths = plot_directory(Path(args.directory), out=Path(args.out) if args.out else None)
    except FileNotFoundError as error:
        print(f"dtoee: error: {error}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0 if paths else 1


def register(sub) -> None:
    """Add this module's subcommands to the ``dtoee`` argument parser."""
    from dtoee.compare import DEFAULT_LOADS, DEFAULT_POLICIES, DEFAULT_SCENARIO, DEFAULT_SEEDS

    sweep = sub.add_parser("sweep", help="run a scenario over a grid of values and seeds (resumable)")
    sweep.add_argument("scenario")
    sweep.add_argument("--grid", action="append", metavar="KEY=V1,V2,...",
                       help="a scenario field and its values (repeatable); 'load' scales every UE rate; "
                            "'*' stands for every list item, e.g. ue_groups.*.count=2,4")
    sweep.add_argument("--seeds", "--seed", help="N, N-M or N,M,...; default: the scenario's seed")
    sweep.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a field in every run (same keys as --grid, '*' and 'load' too)")
    sweep.add_argument("--workers", type=int, default=1, help="simulations at once (default 1)")
    sweep.add_argument("--dask", metavar="ADDRESS", help="run on a Dask scheduler; 'local' starts a LocalCluster")
    sweep.add_argument("--out", required=True, help="sweep directory (rerun to resume)")
    sweep.add_argument("--no-progress", action="store_true")
    sweep.set_defaults(func=cmd_sweep)

    compare = sub.add_parser("compare", help="DTO-EE vs every baseline over loads and seeds: comparison.csv + plots")
    compare.add_argument("scenario", nargs="?", default=DEFAULT_SCENARIO)
    compare.add_argument("--loads", default=",".join(str(v) for v in DEFAULT_LOADS),
                         help="load factors: multipliers of every UE rate in the scenario")
    compare.add_argument("--seeds", "--seed", default=DEFAULT_SEEDS, help="N, N-M or N,M,...")
    compare.add_argument("--policies", default=",".join(DEFAULT_POLICIES),
                         help="policy.kind values; the first is compared against the others")
    compare.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a field in every run")
    compare.add_argument("--workers", type=int, default=2)
    compare.add_argument("--dask", metavar="ADDRESS")
    compare.add_argument("--no-step", action="store_true", help="skip the runs with the scenario's [[events]]")
    compare.add_argument("--no-plots", action="store_true")
    compare.add_argument("--out", default="runs/paper_comparison")
    compare.add_argument("--no-progress", action="store_true")
    compare.set_defaults(func=cmd_compare)

    plot = sub.add_parser("plot", help="draw the plots of a run, sweep or comparison directory")
    plot.add_argument("directory")
    plot.add_argument("--out", help="folder for the PNGs (default DIR/plots)")
    plot.set_defaults(func=cmd_plot)
