"""Fidelity against speed: the same scenario, seed and policy in packet, hybrid and analytic mode.

    .venv/bin/python bench/fidelity.py [--cases city_small,paper_comparison,city20x200,city1000]
                                       [--duration 20] [--warmup 5] [--seed 2]
                                       [--big-duration 8] [--big-warmup 3] [--big-calibration 8]
                                       [--keep DIR]

Per case and mode: mean and p95 delay, accuracy, the error of the mean and p95 against
packet level, the run's wall time (``run_wall_s``: the simulation itself, after set-up) and
the speed-up over packet level (packet run wall / mode run wall). The radio calibration that
hybrid and analytic use is made first (one packet-level run of
``simulation.radio_calibration_s``, always seed 1, cached by the radio configuration's hash);
its wall time is reported on its own row. The compared runs use ``--seed`` (default 2), so
hybrid and analytic are scored on traffic their calibration did not see (with seed 1 the
calibration run and the packet reference would be the same simulation). ``city20x200``:
20 base stations, 200 UEs; ``--big-warmup`` leaves LTE's attach transient out of the
figures, ``--big-calibration`` is its calibration length (the first 40% skipped). ``--keep``
keeps every run's directory (tasks.parquet for the per-second transient analysis), and a
run already complete there for the same scenario is read, not run again (so a long packet
reference can run once, beside the calibration, ``--modes packet``); ``--modes`` restricts
the modes run.
``city1000``: 1,000 base stations on a ring, 2,000 UEs, 60 simulated seconds, analytic only, radio off (a packet-level calibration of 1,000 cells is
what the analytic mode exists to avoid). Appends to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import ROOT, append, machine, markdown_table  # noqa: E402
from scaling import scenario_dict  # noqa: E402


def city(nodes: int, ues: int, duration: float, rate: float, radio: bool, calibration_s: float) -> dict:
    data = scenario_dict(nodes, ues, duration, rate, radio)
    data["name"] = f"city_{nodes}x{ues}"
    # stages split so that tasks cross the backhaul: even nodes host 1-2, odd nodes 2-3
    for i, node in enumerate(data["nodes"]):
        node["stages"] = [1, 2] if i % 2 == 0 else [2, 3]
    data["backhaul"] = {"layout": "ring" if nodes > 2 else "line"}
    data["simulation"]["radio_calibration_s"] = calibration_s
    return data


def cases(args) -> dict:
    from dtoee.config import load_scenario, scenario_from_dict

    short = [f"simulation.duration_s={args.duration}", f"simulation.warmup_s={args.warmup}", "simulation.progress=false",
             f"simulation.seed={args.seed}"]
    out = {}
    for name in args.cases.split(","):
        if name == "city_small":
            out[name] = (load_scenario(ROOT / "scenarios" / "city_small.toml", short), ("packet", "hybrid", "analytic"))
        elif name == "paper_comparison":
            out[name] = (load_scenario(ROOT / "scenarios" / "paper_comparison.toml", short + ["events=[]"]),
                         ("packet", "hybrid", "analytic"))
        elif name == "city20x200":
            data = city(20, 200, args.big_duration, 1.0, True, args.big_calibration)
            data["simulation"].update({"warmup_s": args.big_warmup, "seed": args.seed, "drain_s": 1.0})
            out[name] = (scenario_from_dict(data), ("packet", "hybrid", "analytic"))
        elif name == "city1000":
            data = city(1000, 2000, args.city_duration, 1.0, False, 10.0)
            data["simulation"]["drain_s"] = 2.0
            out[name] = (scenario_from_dict(data), ("analytic",))
        else:
            raise SystemExit(f"unknown case {name!r}")
    return out


def _children_cpu_s() -> float:
    """User + system CPU seconds of every reaped child so far (the forked runs): on a shared
    machine, wall time measures the neighbours too."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="city_small,paper_comparison,city20x200,city1000")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=2, help="seed of the compared runs (calibration: seed 1)")
    parser.add_argument("--big-duration", type=float, default=8.0, help="simulated s of city20x200")
    parser.add_argument("--big-warmup", type=float, default=3.0, help="warm-up of city20x200 (attach transient)")
    parser.add_argument("--big-calibration", type=float, default=8.0, help="radio calibration s of city20x200")
    parser.add_argument("--keep", help="keep every run's directory here; reuse complete runs found there")
    parser.add_argument("--modes", default="packet,hybrid,analytic", help="modes to run, of those each case has")
    parser.add_argument("--city-duration", type=float, default=60.0, help="simulated s of the 1,000-node city")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    text_machine = machine()
    from dtoee.network import cached_radio_model, calibrated_radio_model
    from dtoee.run import run_isolated
    from dtoee.results import is_complete, read_summary
    from dtoee.sweep import fork_run, prepare_parent

    chosen = cases(args)
    prepare_parent([scenario for scenario, _ in chosen.values()])
    rows = []
    with tempfile.TemporaryDirectory(prefix="dtoee-fidelity-") as tmp:
        scratch = args.keep or tmp
        for name, (scenario, case_modes) in chosen.items():
            modes = [m for m in case_modes if m in args.modes.split(",")]
            if scenario.radio.enabled and any(m != "packet" for m in modes):
                cached = cached_radio_model(scenario) is not None
                started = time.perf_counter()
                model = calibrated_radio_model(scenario, run_isolated)
                rows.append([name, "radio calibration", "", "", "", "", "", "", "cached" if cached else
                             f"{time.perf_counter() - started:.1f}", "", "", model.config_hash])
                print(rows[-1], flush=True)
            reference = None
            for mode in modes:
                sc = scenario.model_copy(update={"simulation": scenario.simulation.model_copy(update={"fidelity": mode})})
                run_dir = Path(scratch) / f"{name}-{mode}"
                if args.keep and is_complete(run_dir, sc.content_hash()):
                    summary, cpu_s = read_summary(run_dir), float("nan")
                    print(f"{name} {mode}: reused {run_dir}", flush=True)
                else:
                    cpu_before = _children_cpu_s()
                    summary = fork_run(sc, run_dir)
                    cpu_s = _children_cpu_s() - cpu_before
                mean, p95 = summary["delay_s"]["mean"], summary["delay_s"]["p95"]
                if mode == "packet":
                    reference = summary
                error = speedup = ""
                if reference is not None and mode != "packet":
                    ref_mean, ref_p95 = reference["delay_s"]["mean"], reference["delay_s"]["p95"]
                    error = f"{100 * (mean - ref_mean) / ref_mean:+.1f} / {100 * (p95 - ref_p95) / ref_p95:+.1f}"
                    speedup = f"{reference['run_wall_s'] / summary['run_wall_s']:.0f}x"
                predicted = summary.get("predicted", {}).get("mean_delay_s")
                rows.append([name, mode, summary["tasks_generated"], f"{1e3 * mean:.1f}", f"{1e3 * p95:.1f}",
                             f"{summary['accuracy']:.3f}", error,
                             f"{1e3 * predicted:.1f}" if predicted else "", f"{summary['run_wall_s']:.2f}", f"{cpu_s:.1f}", speedup,
                             summary.get("radio_model_hash") or ""])
                print(rows[-1], flush=True)
    table = markdown_table(["case", "mode", "tasks", "mean delay (ms)", "p95 (ms)", "accuracy",
                            "error vs packet, mean / p95 (%)", "predicted mean (ms)", "run wall (s)", "CPU s (whole child)",
                            "speed-up vs packet", "radio model hash"], rows)
    print(table)
    if not args.no_append:
        append("Fidelity: packet, hybrid and analytic mode", table,
               notes=f"Same scenario, seed {args.seed} and policy in each mode (the radio calibration: seed 1; "
                     "CPU s nan: a run reused from --keep). Run wall = the simulation after set-up "
                     "(model, network build); speed-up = packet run wall / mode run wall, measured in the same "
                     "invocation unless reused. Radio calibration: one packet-level run, then cached by the radio "
                     "configuration's hash. CPU s: user + system time of the forked run, set-up included "
                     "(on a shared machine wall time also measures the neighbours).",
               command="python bench/fidelity.py " + " ".join(sys.argv[1:]), machine_text=text_machine)


if __name__ == "__main__":
    main()
