"""Overhead of the co-simulation's Python task logic over the network it drives.

Runs the default scenario (full co-simulation), then the same traffic on the same network
with no Python task logic: every uplink, offload and result message of the first run is
re-sent from C++ at its recorded start time. Both run in children forked from this
process (ns-3 imported once) and the wall time of ``Simulator::Run`` alone is compared.
The full run also reports the wall time spent inside Python callbacks, measured around
each call in the dispatcher: the direct figure of what the task logic costs.

    python bench/overhead.py [SCENARIO.toml] [--repeats N] [--live] [--no-append]

Prints a table and appends it, with the machine described, to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import ROOT, append, machine, markdown_table  # noqa: E402


def _network_only(scenario, hops_path: str, conn) -> None:
    import numpy as np

    from dtoee.run import place_ues
    from dtoee.seeding import numpy_streams
    from dtoee.network import describe
    from ns3_glue.network import Ns3Network

    rngs = numpy_streams(scenario.simulation.seed, sum(g.count for g in scenario.ue_groups))
    network = Ns3Network(describe(scenario, place_ues(scenario, rngs["placement"])))
    hops = pd.read_parquet(hops_path)
    transfers = hops[hops["kind"].isin(["uplink", "offload", "result"])]
    for row in transfers.itertuples():
        network.send_at(row.start_s, row.src, row.dst, row.bytes)
    started = time.perf_counter()
    network.run(scenario.simulation.duration_s + scenario.simulation.drain_s)
    conn.send((time.perf_counter() - started, len(transfers)))
    conn.close()


def _full(scenario, out: str, conn) -> None:
    from dtoee.run import run_scenario

    summary = run_scenario(scenario, out, progress=False)
    conn.send((summary["run_wall_s"], summary["tasks_generated"], summary["forward_wall_s"],
               summary["python_callback_wall_s"], summary["python_callbacks"]))
    conn.close()


def in_child(target, *args):
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=target, args=(*args, sender))
    child.start()
    sender.close()
    result = receiver.recv()
    child.join()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default=str(ROOT / "scenarios" / "city_small.toml"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-append", action="store_true", help="print only; do not append to docs/benchmarks.md")
    parser.add_argument("--live", action="store_true",
                        help="live mode: real forward passes in the callbacks; compare with network-only + torch time")
    args = parser.parse_args()
    text_machine = machine()

    import torch

    torch.set_num_threads(1)
    from dtoee.config import load_scenario
    from dtoee.run import load_model
    from ns3_glue.build import load_glue

    overrides = ["simulation.progress=false", "simulation.checkpoint_wall_s=0"]
    scenario = load_scenario(args.scenario, overrides + (['model.mode="live"'] if args.live else []))
    load_model(scenario)  # train/profile once, before any fork
    started = time.perf_counter()
    load_glue()
    import_s = time.perf_counter() - started
    full_s, bare_s, forward_s, python_s = [], [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            out = Path(scratch) / f"run{repeat}"
            wall, tasks, forward, python, callbacks = in_child(_full, scenario, str(out))
            full_s.append(wall)
            forward_s.append(forward)
            python_s.append(python)
            wall, messages = in_child(_network_only, scenario, str(out / "hops.parquet"))
            bare_s.append(wall)
    full, bare, forward = statistics.median(full_s), statistics.median(bare_s), statistics.median(forward_s)
    python = statistics.median(python_s)
    rows = [[f"full co-simulation ({scenario.model.mode})", f"{full:.2f}"],
            [f"  of which inside Python callbacks ({callbacks} calls, measured in the dispatcher)",
             f"{python:.2f} ({100 * python / full:.1f}%)"],
            ["same traffic, no Python task logic", f"{bare:.2f}"],
            ["ratio", f"{full / bare:.3f}"]]
    if args.live:
        rows += [["torch forward passes inside the live run", f"{forward:.2f}"],
                 ["live / (network only + torch forward)", f"{full / (bare + forward):.3f}"]]
    table = markdown_table(["run", f"Simulator::Run wall s (median of {args.repeats})"], rows)
    notes = (f"`{Path(args.scenario).name}`: {tasks} tasks, {messages} messages, "
             f"{scenario.simulation.duration_s + scenario.simulation.drain_s:.0f} simulated s; "
             f"ns-3 import {import_s:.1f} s (paid once, not in the table).")
    print(notes)
    print(table)
    if not args.no_append:
        command = "python bench/overhead.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        append(f"Co-simulation overhead ({scenario.model.mode})", table, notes, command.strip(), text_machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
