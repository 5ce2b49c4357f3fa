"""Cost of the default large-model scenario: wall seconds per simulated second of city_llm,
and backhaul bytes per simulated second (LLaMA-2-7B hidden states between edge GPUs).

    .venv/bin/python bench/city_llm.py [--scenario scenarios/city_llm.toml] [--set key=value ...]
    .venv/bin/python bench/city_llm.py --run-dir runs/city_llm-seed1   # figures of a finished run

Runs the scenario once (forked from a parent that imported ns-3, like a sweep does), or
reads a run already made (e.g. by the README's first command), and appends to
docs/benchmarks.md:
* Simulator::Run wall seconds per simulated second (``run_wall_s / simulated_s``), and the
  same for the whole run including set-up (model, topology, policy);
* backhaul bytes per simulated second: every message between edge servers (offloaded
  activations and DTO-EE control packets), each with its 16-byte frame header, from
  hops.parquet; and the LTE uplink bytes per simulated second for comparison.
The machine's load average at the start is recorded: on a shared machine the wall figures
are upper bounds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import ROOT, append, machine, markdown_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(ROOT / "scenarios" / "city_llm.toml"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--run-dir", help="read this finished run instead of running the scenario")
    parser.add_argument("--note", default="", help="added to the entry (e.g. the load while --run-dir ran)")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    text_machine = machine()

    import json

    import pandas as pd

    from ns3_glue.build import load_glue

    _, glue = load_glue()
    if args.run_dir:
        summary = json.loads((Path(args.run_dir) / "summary.json").read_text())
        hops = pd.read_parquet(Path(args.run_dir) / "hops.parquet")
    else:
        from dtoee.config import load_scenario
        from dtoee.run import run_isolated
        from dtoee.sweep import prepare_parent

        scenario = load_scenario(args.scenario, args.set + ["simulation.progress=false"])
        prepare_parent([scenario])
        with tempfile.TemporaryDirectory() as tmp:
            summary = run_isolated(scenario, tmp)
            hops = pd.read_parquet(Path(tmp) / "hops.parquet")
    simulated_s = summary["simulated_s"]
    between_servers = hops[hops["kind"].isin(["offload", "control"])]
    backhaul_bytes = int((between_servers["bytes"] + glue.kHeaderBytes).sum())
    offload_bytes = int((hops.loc[hops["kind"] == "offload", "bytes"] + glue.kHeaderBytes).sum())
    uplink_bytes = int((hops.loc[hops["kind"] == "uplink", "bytes"] + glue.kHeaderBytes).sum())
    rows = [
        ["Simulator::Run wall s per simulated s", f"{summary['run_wall_s'] / simulated_s:.2f}"],
        ["whole run (set-up included) wall s per simulated s", f"{summary['wall_s'] / simulated_s:.2f}"],
        ["backhaul bytes per simulated s (activations + control, with frame headers)",
         f"{backhaul_bytes / simulated_s / 1e6:.2f} MB/s ({backhaul_bytes / simulated_s * 8 / 1e6:.0f} Mbit/s)"],
        ["  of which offloaded activations", f"{offload_bytes / simulated_s / 1e6:.2f} MB/s"],
        ["LTE uplink bytes per simulated s (prompts)", f"{uplink_bytes / simulated_s / 1e3:.1f} kB/s"],
    ]
    table = markdown_table(["figure", "value"], rows)
    source = f"run {args.run_dir}" if args.run_dir else f"`{Path(args.scenario).name}` {' '.join(args.set)}"
    notes = (f"{source}: {summary['tasks_generated']} tasks, "
             f"{len(hops[hops['kind'] == 'offload'])} offloads, {simulated_s:.1f} simulated s, "
             f"Simulator::Run {summary['run_wall_s']:.1f} s, set-up {summary['setup_wall_s']:.1f} s "
             f"({'the CLI run: set-up includes the ns-3 import' if args.run_dir else 'ns-3 import paid once by the parent, not counted'}).")
    notes += f" {args.note}" if args.note else ""
    print(table)
    print(notes)
    if not args.no_append:
        append("city_llm: wall time and backhaul bytes per simulated second", table, notes,
               command="python bench/city_llm.py " + (f"--run-dir {args.run_dir}" if args.run_dir else
                                                       " ".join(f"--set {s}" for s in args.set)),
               machine_text=text_machine)


if __name__ == "__main__":
    main()
