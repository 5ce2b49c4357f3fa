"""``dtoee`` command line: run, build, profile, optimize.

Exit codes: 0 success, 1 a run failed (partial traces are written), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dtoee.config import ScenarioError, load_scenario
from dtoee.trace import check_output_dir


def _scenario(args):
    overrides = list(args.set or [])
    if getattr(args, "seed", None) is not None:
        overrides.append(f"simulation.seed={args.seed}")
    return load_scenario(args.scenario, overrides)


def cmd_run(args) -> int:
    scenario = _scenario(args)
    if args.pcap:
        scenario = scenario.model_copy(update={"output": scenario.output.model_copy(update={"pcap": True})})
    out = Path(args.out) if args.out else Path("runs") / f"{scenario.name}-seed{scenario.simulation.seed}"
    check_output_dir(out, "--out")
    from dtoee.run import run_scenario

    summary = run_scenario(scenario, out, progress=not args.no_progress, allow_large=args.allow_large)
    delay = summary["delay_s"]
    mean = f"{delay['mean'] * 1e3:.1f} ms" if delay["mean"] is not None else "n/a"
    p95 = f"{delay['p95'] * 1e3:.1f} ms" if delay["p95"] is not None else "n/a"
    accuracy = f"{summary['accuracy']:.3f}" if summary["accuracy"] is not None else "n/a"
    print(f"{summary['scenario']} seed {summary['seed']}: {summary['tasks_generated']} tasks "
          f"{summary['counts_by_status']}, mean delay {mean}, p95 {p95}, accuracy {accuracy}, "
          f"wall {summary['wall_s']:.1f} s -> {out}")
    return 0


def cmd_build(args) -> int:
    from ns3_glue.build import build_library

    print(build_library(verbose=args.verbose))
    return 0


def cmd_validate(args) -> int:
    """The loader's checks, then every check ``run`` makes before ns-3 (``dtoee.run.preflight``)."""
    scenario = _scenario(args)
    import torch

    torch.set_num_threads(1)
    from dtoee.run import preflight

    preflight(scenario, allow_large=args.allow_large)
    print(json.dumps(scenario.model_dump(mode="json"), indent=2) if args.dump else f"{args.scenario}: valid "
          f"(hash {scenario.content_hash()})")
    return 0


def scenario_system(scenario, splits: tuple[str, ...] = ("validation",)):
    """The scenario's SystemModel (model trained/loaded, UEs placed by the scenario's seed),
    without ns-3, one per exit-curve split in ``splits`` (a tuple of them if several)."""
    import torch

    torch.set_num_threads(1)
    from dtoee.run import preflight
    from dtoee.system_model import system_from_scenario

    setup = preflight(scenario, allow_large=True)  # every check a run makes; no tasks are simulated here
    systems = tuple(system_from_scenario(scenario, setup.model, setup.ues, setup.planning, split=split)
                    for split in splits)
    return systems[0] if len(systems) == 1 else systems


def _ms(value) -> str:
    return f"{value * 1e3:9.2f}" if value is not None else "      n/a"


def _print_evaluation(evaluation: dict) -> None:
    """Every policy on one evaluation (raw curves), hull-model figures alongside where they differ."""
    print(f"every policy on one evaluation: {evaluation['name']}")
    print(f"  scored by {evaluation['definition']}")
    print(f"{'policy':<36} {'delay ms':>9} {'accuracy':>8} {'objective':>12} {'gap':>9} {'max rho':>7}   "
          f"hull model (what it optimised), where it differs")
    for name, entry in evaluation["policies"].items():
        objective = f"{entry['objective']:12.6f}" if entry["objective"] is not None else "  infeasible"
        gap = f"{entry['gap']:9.2%}" if entry["gap"] is not None else "      n/a"
        hull = entry["hull_model"]
        differs = hull is not None and any(
            (hull[key] is None) != (entry[key] is None)
            or (hull[key] is not None and abs(hull[key] - entry[key]) > 1e-9 * max(1.0, abs(entry[key])))
            for key in ("mean_delay_s", "accuracy", "objective"))
        side = (f"   objective {hull['objective']:.6f}, delay {_ms(hull['mean_delay_s']).strip()} ms, "
                f"accuracy {hull['accuracy']:.4f}") if differs and hull["objective"] is not None else ""
        print(f"{name:<36} {_ms(entry['mean_delay_s'])} {entry['accuracy']:8.4f} {objective} {gap} "
              f"{entry['max_rho']:7.3f}{side}")
    for name, why in evaluation.get("skipped", {}).items():
        print(f"{name:<36} not scored: {why}")
    print(f"gap: {evaluation['gap_definition']}")


def _baselines_as_simulated(scenario, system) -> dict:
    """Every baseline built exactly as ``dtoee run`` would build it for this scenario (its
    ``policy.fixed_threshold``, its seed), from the calibration system."""
    from dtoee.policies import build_policy
    from optimizer.baselines import BASELINES

    return {kind: build_policy(scenario.model_copy(update={"policy": scenario.policy.model_copy(update={"kind": kind})}),
                               system)
            for kind in BASELINES}


def cmd_optimize(args) -> int:
    from inference.exits import CALIBRATION_SPLIT, EVALUATION_SPLIT
    from optimizer.report import optimize_report

    scenario = _scenario(args)
    out = Path(args.out) if args.out else Path("runs") / f"{scenario.name}-seed{scenario.simulation.seed}-optimize"
    check_output_dir(out, "--out")
    calibration, evaluation = scenario_system(scenario, (CALIBRATION_SPLIT, EVALUATION_SPLIT))
    report = optimize_report(calibration, rounds=args.rounds, evaluation_system=evaluation,
                             baseline_policies=_baselines_as_simulated(scenario, calibration),
                             evaluation_name=f"per-sample confidences of the {EVALUATION_SPLIT} split "
                                             f"(every policy calibrated on the {CALIBRATION_SPLIT} split)")
    report["data_splits"] = {"policies_computed_from": CALIBRATION_SPLIT, "evaluation": EVALUATION_SPLIT,
                             "rounds_and_gap": f"{CALIBRATION_SPLIT} split, concave-hull model of the exit "
                                               "curves conditional on survival"}
    print(f"DTO-EE rounds on the concave-hull model of the {CALIBRATION_SPLIT} curves conditional on survival "
          "(what it optimises)")
    print(f"{'round':>5} {'objective':>12} {'delay ms':>9} {'accuracy':>8} {'gap':>9}")
    for row in report["rounds"]:
        if row["round"] <= 10 or row["round"] % args.every == 0 or row["round"] == args.rounds:
            gap = f"{row['gap']:9.4%}" if row["gap"] is not None else "      n/a"
            print(f"{row['round']:5d} {row['objective']:12.6f} {row['mean_delay_s'] * 1e3:9.2f} "
                  f"{row['accuracy']:8.4f} {gap}")
    optimum, final = report["optimum"], report["dtoee"]
    print(f"optimum (cvxpy, {optimum['status']}): objective {optimum['objective']:.6f}, delay "
          f"{optimum['mean_delay_s'] * 1e3:.2f} ms, accuracy {optimum['accuracy']:.4f}")
    if final["gap"] is not None:
        print(f"DTO-EE after {args.rounds} rounds: gap {final['gap']:.4%} ({report['gap_definition']}); "
              f"within {final['gap_target']:.0%} after {final['rounds_to_gap']} rounds")
    _print_evaluation(report["evaluation"])
    out.mkdir(parents=True, exist_ok=True)
    path = out / "optimize.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"-> {path}")
    return 0


def cmd_profile(args) -> int:
    import torch

    torch.set_num_threads(1)
    from inference.report import write_profile

    check_output_dir(args.out, "--out")
    try:
        paths = write_profile(args.model, args.out, seed=args.seed, num_stages=args.stages,
                              device_flops=args.device_flops, seq_len=args.seq_len, device=args.device)
    except ValueError as error:  # bad model name, stage count, sequence length
        raise ScenarioError(f"dtoee profile: {error}") from None
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


ALLOW_LARGE_HELP = "run even if the expected tasks (rate x duration) would not fit in the memory available"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dtoee", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a scenario and write traces")
    run.add_argument("scenario")
    run.add_argument("--seed", type=int, help="simulation.seed (same as --set simulation.seed=N)")
    run.add_argument("--out")
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a scenario field")
    run.add_argument("--pcap", action="store_true", help="write pcap per device into OUT/pcap")
    run.add_argument("--no-progress", action="store_true")
    run.add_argument("--allow-large", action="store_true", help=ALLOW_LARGE_HELP)
    run.set_defaults(func=cmd_run)

    validate = sub.add_parser("validate", help="check a scenario without running it")
    validate.add_argument("scenario")
    validate.add_argument("--seed", type=int, help="simulation.seed")
    validate.add_argument("--set", action="append", metavar="KEY=VALUE")
    validate.add_argument("--dump", action="store_true", help="print it with every default filled in")
    validate.add_argument("--allow-large", action="store_true", help=ALLOW_LARGE_HELP)
    validate.set_defaults(func=cmd_validate)

    optimize = sub.add_parser("optimize", help="DTO-EE in memory vs the centralised cvxpy optimum and the baselines")
    optimize.add_argument("scenario")
    optimize.add_argument("--seed", type=int, help="simulation.seed (places the UEs)")
    optimize.add_argument("--set", action="append", metavar="KEY=VALUE")
    optimize.add_argument("--rounds", type=int, default=200)
    optimize.add_argument("--every", type=int, default=20, help="print every N-th round after the first 10")
    optimize.add_argument("--out", help="directory for optimize.json (default runs/NAME-seedS-optimize)")
    optimize.set_defaults(func=cmd_optimize)

    profile = sub.add_parser("profile", help="exit curves and per-stage profile of a model (plots too)")
    profile.add_argument("--model", required=True,
                         help="mlp, resnet, vit, llama (trained here) or llama-2-7b, llama-2-13b, gpt2-xl, gpt2 (ESTIMATED)")
    profile.add_argument("--out", default="profile")
    profile.add_argument("--seed", type=int, default=0)
    profile.add_argument("--stages", type=int, default=3, help="stages of a large model")
    profile.add_argument("--device-flops", type=float, default=None,
                         help="FLOP/s for large-model latency estimates (default: measured here)")
    profile.add_argument("--seq-len", type=int, default=512)
    profile.add_argument("--device", help="a named device of inference/devices.py (e.g. l4, t4, "
                         "jetson-agx-orin-64gb): large-model latency from its roofline (ESTIMATED)")
    profile.set_defaults(func=cmd_profile)

    build = sub.add_parser("build", help="compile the ns3_glue C++ library (done on first use anyway)")
    build.add_argument("--verbose", action="store_true")
    build.set_defaults(func=cmd_build)

    # Further commands register themselves here (one line each).
    from dtoee import experiments

    experiments.register(sub)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ScenarioError as error:
        print(f"dtoee: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dtoee: interrupted (SIGINT); partial traces written, summary.json says partial", file=sys.stderr)
        return 130
    except (SystemExit, GeneratorExit):
        raise
    except BaseException as error:  # noqa: BLE001 - a failed run: traces are written, say why
        if type(error).__name__ == "Terminated":  # dtoee.run.Terminated, from SIGTERM
            print("dtoee: terminated (SIGTERM); partial traces written", file=sys.stderr)
            return 143
        if type(error).__name__ == "TracesNotWritten":  # dtoee.run.TracesNotWritten: nothing to point to
            print(f"dtoee: the traces could not be written: {error}", file=sys.stderr)
            return 1
        import traceback

        traceback.print_exc()
        print(f"dtoee: the run failed: {type(error).__name__}: {error}; partial traces written", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
