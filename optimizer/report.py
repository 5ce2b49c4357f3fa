"""``optimize_report``: DTO-EE's rounds against the centralised optimum, as plain JSON data."""

from __future__ import annotations

import math
from typing import Any

from optimizer.baselines import BASELINES
from optimizer.centralized import CentralizedSolver, gap_to_optimum
from optimizer.dtoee import DtoeeConfig, run_in_memory
from optimizer.system import Evaluation, SystemModel, evaluate, evaluate_policy

GAP_DEFINITION = "(J - J*) / D*, J = D - w A, J* and D* at the centralised cvxpy optimum"


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _evaluation_dict(ev: Evaluation) -> dict[str, Any]:
    return {
        "mean_delay_s": _finite(ev.mean_delay_s),
        "accuracy": _finite(ev.accuracy),
        "objective": _finite(ev.objective),
        "feasible": ev.feasible,
        "max_rho": max(ev.rho.values()),
        "exit_distribution": {str(k): v for k, v in sorted(ev.exit_distribution.items())},
    }


def _strategy_dict(x, theta) -> dict[str, Any]:
    return {
        "x": {f"{i}/{k}": dict(p) for (i, k), p in sorted(x.items())},
        "theta": {f"{j}/{k}": t for (j, k), t in sorted(theta.items())},
    }


def optimize_report(
    system: SystemModel,
    rounds: int = 200,
    *,
    config: DtoeeConfig | None = None,
    baselines: bool = True,
    gap_target: float = 0.01,
) -> dict[str, Any]:
    """DTO-EE objective after each round, the centralised optimum, and the gap.

    Returns a JSON-serialisable dict: ``rounds`` (per round: objective, mean_delay_s,
    accuracy, gap), ``optimum`` (D*, A*, J*, solve time, status), ``dtoee`` (final values,
    its strategy, ``rounds_to_gap``, the model accuracy at the read-back thresholds),
    ``gap_definition``, and, if ``baselines``, each baseline's analytical evaluation.
    """
    optimum = CentralizedSolver(system).solve()
    history = run_in_memory(system, rounds, config=config)
    solved = bool(optimum.x)
    per_round = []
    for t in range(rounds):
        objective = float(history.objective[t])
        per_round.append(
            {
                "round": t + 1,
                "objective": _finite(objective),
                "mean_delay_s": _finite(float(history.mean_delay_s[t])),
                "accuracy": float(history.accuracy[t]),
                "gap": _finite(gap_to_optimum(objective, optimum)) if solved else None,
            }
        )
    final = evaluate(system, history.x, history.theta)
    report: dict[str, Any] = {
        "gap_definition": GAP_DEFINITION,
        "w_s_per_accuracy": system.w,
        "rounds": per_round,
        "optimum": {
            "status": optimum.status,
            "mean_delay_s": _finite(optimum.mean_delay_s),
            "accuracy": _finite(optimum.accuracy),
            "objective": _finite(optimum.objective),
            "solve_time_s": optimum.solve_time_s,
            **(_strategy_dict(optimum.x, optimum.theta) if solved else {}),
        },
        "dtoee": {
            "objective": _finite(float(history.objective[-1])),
            "mean_delay_s": _finite(float(history.mean_delay_s[-1])),
            "accuracy": float(history.accuracy[-1]),
            "gap": _finite(gap_to_optimum(float(history.objective[-1]), optimum)) if solved else None,
            "rounds_to_gap": (
                history.rounds_to_gap(optimum.objective, optimum.mean_delay_s, gap_target) if solved else None
            ),
            "gap_target": gap_target,
            "curve_evaluation": _evaluation_dict(final),
            **_strategy_dict(history.x, history.theta),
        },
    }
    if baselines:
        report["baselines"] = {}
        for name, factory in BASELINES.items():
            ev = evaluate_policy(system, factory(system))
            entry = _evaluation_dict(ev)
            entry["gap"] = _finite(gap_to_optimum(ev.objective, optimum)) if solved else None
            report["baselines"][name] = entry
    return report
