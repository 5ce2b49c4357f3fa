"""city_small, scripted top to bottom with the Python API, like an ns-3 example.

    python scenarios/city_small.py [--seed N] [--out DIR]

1. load and validate the scenario (a TOML file; any field can be changed in code),
2. run it: ns-3 LTE/EPC + backhaul, real multi-exit inference at simulated times,
3. read the traces back with pandas and print what happened per stage and per node.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from dtoee.config import load_scenario
from dtoee.run import run_scenario

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="runs/city_small_script")
    args = parser.parse_args()

    # 1. Build: the scenario file, with two fields changed from Python.
    scenario = load_scenario(HERE / "city_small.toml", [f"simulation.seed={args.seed}", "output.pcap=true"])
    print(f"{scenario.name}: {len(scenario.nodes)} edge nodes, "
          f"{sum(g.count for g in scenario.ue_groups)} UEs, {scenario.model.num_stages} stages")

    # 2. Run.
    summary = run_scenario(scenario, args.out)

    # 3. Read results.
    tasks = pd.read_parquet(Path(args.out) / "tasks.parquet")
    hops = pd.read_parquet(Path(args.out) / "hops.parquet")
    completed = tasks[tasks["status"] == "completed"]
    print(f"tasks: {summary['counts_by_status']}; mean delay {summary['delay_s']['mean'] * 1e3:.1f} ms, "
          f"p95 {summary['delay_s']['p95'] * 1e3:.1f} ms, accuracy {summary['accuracy']:.3f}")
    print("\nby exit stage:")
    print(completed.groupby("exit_stage").agg(tasks=("task_id", "size"), mean_delay_s=("delay_s", "mean"),
                                              accuracy=("correct", "mean")).to_string())
    services = hops[hops["kind"] == "service"].assign(wait_s=lambda h: h["start_s"] - h["enqueue_s"])
    print("\nper node (services, mean queueing wait):")
    print(services.groupby("src").agg(services=("task_id", "size"), mean_wait_s=("wait_s", "mean")).to_string())
    transfers = hops[hops["kind"] != "service"].assign(duration_s=lambda h: h["end_s"] - h["start_s"])
    print("\nper transfer kind:")
    print(transfers.groupby("kind").agg(messages=("task_id", "size"), bytes=("bytes", "sum"),
                                        mean_duration_s=("duration_s", "mean")).to_string())
    print(f"\ntraces and pcap in {args.out}")


if __name__ == "__main__":
    main()
