"""Tasks simulated per wall-second against the number of nodes (eNB + server) and UEs.

    .venv/bin/python bench/scaling.py [--sizes 2x4,4x16,8x32] [--duration 5] [--rate 4] [--no-radio]

Each size NxU: N base stations 500 m apart on a line (every server hosts every stage, speeds
alternating 1 and 2), U UEs spread evenly over them, each sending ``--rate`` tasks/s, DTO-EE
policy off (static). One forked run per size, one after the other; appends to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import append, machine, markdown_table  # noqa: E402


def scenario_dict(nodes: int, ues: int, duration: float, rate: float, radio: bool) -> dict:
    per = [ues // nodes + (1 if i < ues % nodes else 0) for i in range(nodes)]
    return {
        "name": f"scale_{nodes}x{ues}",
        "simulation": {"duration_s": duration, "drain_s": 2.0, "seed": 1, "progress": False},
        "model": {"family": "mlp", "num_stages": 3, "stage_latency_s": [0.005, 0.006, 0.006]},
        "radio": {"enabled": radio},
        "backhaul": {"layout": "line"},
        "nodes": [{"name": f"bs{i}", "position_m": [500.0 * i, 0.0], "speed_factor": 1.0 + (i % 2),
                   "stages": [1, 2, 3]} for i in range(nodes)],
        "ue_groups": [{"node": f"bs{i}", "count": count, "rate_per_s": rate, "radius_m": 150.0}
                      for i, count in enumerate(per) if count],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2x4,4x16,8x32")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=4.0)
    parser.add_argument("--no-radio", action="store_true")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    text_machine = machine()
    from dtoee.config import scenario_from_dict
    from dtoee.runner import fork_run, prepare_parent

    sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes.split(",")]
    scenarios = [scenario_from_dict(scenario_dict(n, u, args.duration, args.rate, not args.no_radio)) for n, u in sizes]
    prepare_parent(scenarios)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for (nodes, ues), scenario in zip(sizes, scenarios):
            summary = fork_run(scenario, Path(scratch) / scenario.name)
            run_s = summary["run_wall_s"]
            rows.append([nodes, ues, summary["tasks_generated"], f"{summary['simulated_s']:.1f}", f"{run_s:.1f}",
                         f"{run_s / summary['simulated_s']:.2f}", f"{summary['tasks_generated'] / run_s:.0f}",
                         f"{summary['setup_wall_s']:.1f}"])
            print(rows[-1], flush=True)
    table = markdown_table(["nodes", "UEs", "tasks", "simulated s", "run wall s", "wall s per sim s",
                            "tasks per wall s", "setup wall s"], rows)
    print(table)
    notes = (f"radio {'off' if args.no_radio else 'LTE'}; {args.rate:g} tasks/s per UE; duration {args.duration:g} s "
             "+ 2 s drain; 'run wall s' is Simulator::Run only.")
    if not args.no_append:
        append("Scaling: tasks per wall-second vs nodes and UEs", table, notes,
               "python bench/scaling.py " + " ".join(sys.argv[1:]), text_machine)


if __name__ == "__main__":
    main()
