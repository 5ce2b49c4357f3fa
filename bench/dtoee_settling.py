"""Simulated time online DTO-EE needs to come within 5% of the oracle's windowed mean delay.

    python bench/dtoee_settling.py [--scenario scenarios/paper_comparison.toml] [--load 1.4]
                                   [--duration 20] [--rounds 1 4] [--window 2]
                                   [--step] [--step-at S] [--reference] [--set KEY=VALUE ...]
                                   [--figure PNG] [--no-append]

Runs the scenario (warm-up 0, every UE rate times ``--load``) once with the oracle and once
per ``--rounds`` value with online DTO-EE (``policy.rounds_per_period``), same seed, so the
same tasks arrive at the same times. The oracle is policy kind ``optimum``: the centralised
cvxpy strategy from the configured rates, fixed from t = 0.

Without ``--step`` the scenario's events are dropped and the settling time is counted from
the start. With ``--step`` they are kept (``--step-at`` moves the first one, so a short run
holds it; a ``ue_rate`` event's rate is scaled by ``--load`` too) and there are two oracles:
the optimum for the configured rates (compared before the step) and the optimum for the
rates after it, held by a static policy from t = 0 and run with the same event (compared
from the step on): DTO-EE gets a settling time after the start and one after the step.

``--reference N ...`` adds, per N, a static policy (from t = 0) holding the strategy in-memory
DTO-EE (the online tuning, :class:`optimizer.dtoee.DtoeePolicy`'s config) reaches after N
synchronous rounds on the configured rates, with its model objective's distance from the
300-round one: the same criterion applied to a strategy that is (nearly) converged, i.e. how
much of a "not within 5%" a small, model-wise negligible difference of strategy causes.

Windowed mean delay by creation time (``--window`` s windows every ``window/4`` s); the
settling time is the end of the first window after which every window's mean delay (up to
the step, or to the end) is within 5% of the oracle's mean delay over the same window.
Writes docs/img/dtoee_settling.png (``--figure`` to change) and appends a table to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import copy
import shlex
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from _report import append, machine, markdown_table  # noqa: E402

from dtoee.analysis import windowed_mean_delay  # noqa: E402
from dtoee.config import apply_overrides, read_toml, scenario_from_dict  # noqa: E402


def run(data: dict, out: Path) -> pd.DataFrame:
    """One simulation of the scenario ``data`` in a forked child; its tasks."""
    from dtoee.run import run_isolated

    run_isolated(scenario_from_dict(copy.deepcopy(data)), out)
    return pd.read_parquet(out / "tasks.parquet")


def optimum_as_static(data: dict) -> dict:
    """The ``[policy]`` table of a static policy holding the cvxpy optimum for ``data``'s
    configured rates (the same solver as policy kind ``optimum``)."""
    from dtoee.run import preflight
    from optimizer.centralized import solve_centralized

    setup = preflight(scenario_from_dict({**copy.deepcopy(data), "events": [],
                                          "policy": {**data.get("policy", {}), "kind": "optimum"}}))
    solution = solve_centralized(setup.system)
    K = setup.system.num_stages
    offload: dict[str, dict[str, dict[str, float]]] = {}
    for (node, stage), probs in solution.x.items():
        offload.setdefault(node, {})[str(stage)] = {h: float(p) for h, p in probs.items()}
    thresholds = {node: [float(solution.theta.get((node, k), 0.0)) for k in range(1, K + 1)]
                  for node in setup.system.nodes}
    policy = {k: v for k, v in data.get("policy", {}).items() if k not in ("offload", "thresholds")}
    return {**policy, "kind": "static", "offload": offload, "thresholds": thresholds}


def in_memory_as_static(data: dict, rounds: int) -> tuple[dict, float]:
    """(the ``[policy]`` table of a static policy holding in-memory DTO-EE's strategy after
    ``rounds`` rounds on ``data``'s configured rates, with DtoeePolicy's default config; its
    model objective's relative distance from the 300-round strategy's)."""
    from dtoee.run import preflight
    from optimizer.dtoee import DtoeePolicy, run_in_memory
    from optimizer.registry import conditional_curves

    setup = preflight(scenario_from_dict({**copy.deepcopy(data), "events": [],
                                          "policy": {**data.get("policy", {}), "kind": "dtoee"}}))
    system = conditional_curves(setup.system)
    config = DtoeePolicy(system).config
    history = run_in_memory(system, rounds, config=config)
    reference = run_in_memory(system, 300, config=config).objective[-1]
    K = system.num_stages
    offload: dict[str, dict[str, dict[str, float]]] = {}
    for (node, stage), probs in history.x.items():
        offload.setdefault(node, {})[str(stage)] = {h: float(p) for h, p in probs.items()}
    thresholds = {node: [float(history.theta.get((node, k), 0.0)) for k in range(1, K + 1)]
                  for node in system.nodes}
    policy = {k: v for k, v in data.get("policy", {}).items() if k not in ("offload", "thresholds", "rounds_per_period")}
    gap = float(history.objective[-1] - reference) / abs(reference)
    return {**policy, "kind": "static", "offload": offload, "thresholds": thresholds}, gap


def settling_s(dtoee: pd.DataFrame, oracle: pd.DataFrame, window_s: float, tolerance: float = 0.05,
               from_s: float = 0.0, until_s: float | None = None):
    """(first window end after which every window in [from_s, until_s] is within tolerance,
    or None; the ratio series indexed by window start). Windows start at ``from_s``."""
    step = window_s / 4
    a = windowed_mean_delay(dtoee, window_s, step).set_index("start_s")["mean_delay_s"]
    b = windowed_mean_delay(oracle, window_s, step).set_index("start_s")["mean_delay_s"]
    ratio = (a / b).dropna()
    ratio = ratio[ratio.index >= from_s - 1e-9]
    if until_s is not None:
        ratio = ratio[ratio.index + window_s <= until_s + 1e-9]
    within = (ratio <= 1.0 + tolerance).to_numpy()
    for n in range(len(within)):
        if within[n:].all():
            return float(ratio.index[n] + window_s), ratio
    return None, ratio


def scaled(data: dict, load: float, duration: float, keep_events: bool, step_at: float | None) -> dict:
    data = copy.deepcopy(data)
    data.setdefault("simulation", {}).update(duration_s=duration, warmup_s=0.0)
    for group in data.get("ue_groups", []):
        group["rate_per_s"] = float(group.get("rate_per_s", 1.0)) * load
    if not keep_events:
        data["events"] = []
        return data
    events = data.get("events", [])
    if not events:
        raise SystemExit("--step: the scenario has no [[events]]")
    for event in events:
        if event.get("kind") == "ue_rate":
            event["rate_per_s"] = float(event["rate_per_s"]) * load
    if step_at is not None:
        shift = step_at - float(events[0]["at_s"])
        for event in events:
            event["at_s"] = float(event["at_s"]) + shift
    if not 0 < float(events[0]["at_s"]) < duration:
        raise SystemExit(f"--step: the event at {events[0]['at_s']} s is not inside the {duration} s run")
    return data


def after_step(data: dict) -> dict:
    """``data`` with every ``ue_rate`` event applied from t = 0 (the load after the step)."""
    data = copy.deepcopy(data)
    for event in data["events"]:
        if event.get("kind") == "ue_rate":
            data["ue_groups"][event["ue_group"]]["rate_per_s"] = float(event["rate_per_s"])
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="scenarios/paper_comparison.toml")
    parser.add_argument("--load", type=float, default=1.4)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--reference", type=int, nargs="*", default=[], metavar="ROUNDS",
                        help="also score, static from t = 0, the strategy in-memory DTO-EE (online tuning) "
                        "reaches after ROUNDS synchronous rounds on the configured rates: what the criterion "
                        "says about a strategy that is (nearly) converged")
    parser.add_argument("--step", action="store_true", help="keep the scenario's events; settling after the first too")
    parser.add_argument("--step-at", type=float, help="move the first event (and the others with it) to this time")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a scenario field for every run (e.g. policy.period_s=0.5)")
    parser.add_argument("--figure", default="docs/img/dtoee_settling.png")
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    from ns3_glue.build import load_glue

    load_glue()  # import ns-3 once here; every run is a forked child
    data = apply_overrides(read_toml(ROOT / args.scenario), args.set)
    data = scaled(data, args.load, args.duration, args.step, args.step_at)
    step_s = float(data["events"][0]["at_s"]) if args.step else None
    started = time.perf_counter()
    rows, curves = [], {}
    with tempfile.TemporaryDirectory(prefix="dtoee-settling-") as tmp:
        oracle = run({**data, "policy": {**data.get("policy", {}), "kind": "optimum"}}, Path(tmp) / "oracle")
        oracle_after = None
        if args.step:
            post = optimum_as_static(after_step(data))
            oracle_after = run({**data, "policy": post}, Path(tmp) / "oracle-after")
        variants: list[tuple[str, int | None]] = [(f"dtoee{r}", r) for r in args.rounds]
        variants += [(f"reference{n}", -n) for n in args.reference]
        gaps: dict[int, float] = {}
        for name, r in variants:
            if r is not None and r < 0:
                policy, gaps[-r] = in_memory_as_static(data, -r)
            else:
                policy = {**data.get("policy", {}), "kind": "dtoee", "rounds_per_period": r}
            tasks = run({**data, "policy": policy}, Path(tmp) / name)
            settled, ratio = settling_s(tasks, oracle, args.window, until_s=step_s)
            label = (f"static: in-memory DTO-EE after {-r} rounds (objective {100 * gaps[-r]:+.3f}% from 300 rounds')"
                     if r < 0 else r)
            row = [label, float(policy.get("period_s", 1.0)), "not within the run" if settled is None else f"{settled:.1f}"]
            if args.step:
                again, ratio_after = settling_s(tasks, oracle_after, args.window, from_s=step_s)
                row.append("not within the run" if again is None else f"{again - step_s:.1f}")
                ratio = pd.concat([ratio, ratio_after])
            curves[name] = (r, ratio)
            done = tasks["status"] == "completed"
            row += [f"{1e3 * tasks.loc[done, 'delay_s'].mean():.1f}",
                    f"{1e3 * oracle.loc[oracle.status == 'completed', 'delay_s'].mean():.1f}",
                    int((tasks["loss_reason"] == "rejected").sum())]
            rows.append(row)
    wall = time.perf_counter() - started
    header = ["rounds per period", "period (s)", "within 5% of oracle after start (simulated s)"]
    if args.step:
        header.append(f"within 5% of the new oracle after the step at {step_s:g} s (s after it)")
    header += ["DTO-EE mean delay (ms)", "oracle mean delay (ms)", "rejected"]
    table = markdown_table(header, rows)
    print(table)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    for name, (r, ratio) in curves.items():
        label = f"static, in-memory DTO-EE after {-r} rounds" if r < 0 else f"DTO-EE, {r} round(s)/period"
        ax.plot(ratio.index + args.window, ratio.to_numpy(), label=label, ls=":" if r < 0 else "-")
    ax.axhline(1.05, color="grey", ls="--", lw=1, label="oracle + 5%")
    if step_s is not None:
        ax.axvline(step_s, color="k", ls=":", lw=1, label="load step")
    ax.set_xlabel("simulated time (s), window end")
    ax.set_ylabel("windowed delay / oracle's")
    ax.set_title(f"{Path(args.scenario).stem}, load {args.load:g}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    figure = ROOT / args.figure
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=90)
    if not args.no_append:
        what = "after the start and a load step" if args.step else "after the start"
        append(f"DTO-EE online: time to within 5% of the oracle {what} ({Path(args.scenario).stem}, load {args.load:g})",
               table, notes=f"{args.duration:g} simulated s, seed from the scenario, {args.window:g} s windows; "
               f"figure {args.figure}; wall {wall:.0f} s.",
               command="python " + " ".join(shlex.quote(a) for a in ["bench/dtoee_settling.py", *sys.argv[1:]]),
               machine_text=machine())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
