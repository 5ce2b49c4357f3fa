"""Start-up cost per run: forking from a parent that imported ns-3, against the import it avoids.

    .venv/bin/python bench/startup.py [--imports 3] [--forks 20] [--runs 3]

Measures, and appends to docs/benchmarks.md:
* the import a fresh interpreter would pay per run: ``from ns import ns`` + the C++ glue +
  ``dtoee.run`` (torch, pandas, the co-simulation), timed in new processes;
* a bare fork: from ``os.fork()`` to the child's first Python line (CLOCK_MONOTONIC is shared);
* a whole tiny run forked (radio off, 1 simulated s): wall time from fork to the result in
  the parent, and the part of it before ``Simulator::Run`` (setup: model, network, policy).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
import tempfile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import ROOT, append, machine, markdown_table  # noqa: E402

IMPORT_SNIPPET = (
    "import time; t = time.perf_counter(); from ns3_glue.build import load_glue; load_glue(); "
    "import dtoee.run; print(time.perf_counter() - t)"
)

TINY = {
    "name": "startup", "simulation": {"duration_s": 1.0, "drain_s": 0.5, "seed": 1, "progress": False},
    "model": {"family": "mlp", "num_stages": 3, "stage_latency_s": [0.02, 0.025, 0.025]},
    "radio": {"enabled": False},
    "nodes": [{"name": "bs0", "stages": [1, 2, 3]}, {"name": "bs1", "position_m": [500.0, 0.0], "stages": [1, 2, 3]}],
    "ue_groups": [{"node": "bs0", "count": 2, "rate_per_s": 5.0}],
}


def fmt(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    med = statistics.median(values) * scale
    return f"{med:.{digits}f} (min {min(values) * scale:.{digits}f}, max {max(values) * scale:.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imports", type=int, default=3, help="fresh interpreters timed")
    parser.add_argument("--forks", type=int, default=20, help="bare forks timed")
    parser.add_argument("--runs", type=int, default=3, help="tiny forked runs timed")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    text_machine = machine()

    imports = []
    for _ in range(args.imports):
        out = subprocess.run([sys.executable, "-c", IMPORT_SNIPPET], cwd=ROOT, capture_output=True, text=True, check=True)
        imports.append(float(out.stdout.strip().splitlines()[-1]))

    from dtoee.config import scenario_from_dict
    from dtoee.runner import ForkedRun, prepare_parent

    scenario = scenario_from_dict(TINY)
    prepare_parent([scenario])

    forks = []
    for _ in range(args.forks):
        read_fd, write_fd = os.pipe()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            os.write(write_fd, repr(time.monotonic()).encode())
            os._exit(0)
        os.close(write_fd)
        first_line = float(os.read(read_fd, 64).decode())
        os.close(read_fd)
        os.waitpid(pid, 0)
        forks.append(first_line - started)

    runs, setups = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(args.runs):
            started = time.perf_counter()
            summary = ForkedRun(scenario, Path(scratch) / str(index)).wait()
            runs.append(time.perf_counter() - started)
            setups.append(summary["setup_wall_s"])

    rows = [
        ["fresh interpreter: import ns-3 + glue + dtoee.run (paid per run without fork)", fmt(imports)],
        ["bare os.fork() to the child's first line", fmt(forks, 1e3, 3).replace(" (", " ms (") + ""],
        ["tiny forked run, fork to result (radio off, 1.5 simulated s)", fmt(runs)],
        ["  of which setup inside the child (model, network, policy)", fmt(setups)],
    ]
    table = markdown_table(["what (median of repeats)", "seconds"], rows)
    print(table)
    saved = statistics.median(imports) - statistics.median(forks)
    notes = (f"Forking saves ~{saved:.1f} s per run against a fresh interpreter; the fork itself costs "
             f"~{statistics.median(forks) * 1e3:.1f} ms. What a forked run still pays before simulating is its own "
             f"setup (building the ns-3 topology through cppyy, loading the cached model): "
             f"~{statistics.median(setups):.1f} s here. {args.imports} imports, {args.forks} forks, {args.runs} runs.")
    print(notes)
    if not args.no_append:
        append("Start-up cost per run", table, notes, "python bench/startup.py " + " ".join(sys.argv[1:]), text_machine)


if __name__ == "__main__":
    main()
