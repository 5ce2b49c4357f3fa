"""``optimize_report``: DTO-EE's rounds against the centralised optimum, and every policy
scored by one function, as plain JSON data.

Two models of accuracy are in play, and the report keeps them apart:

* the CONCAVE-HULL model (``evaluate_exit_shares``: exit shares e_j^k as variables, A_k(e) the
  upper concave hull of the correct share) is what the convex program and DTO-EE optimise;
  the per-round ``gap`` measures DTO-EE's convergence on it, on the calibration curves;
* what a deployed policy gets: the thresholds theta_j^k it would deploy, scored on
  ``evaluation_system``'s SAMPLES where it carries them (``calibration_samples``:
  ``optimizer.system.evaluate_on_samples``, exit shares and accuracy conditional on survival,
  no selection effect), else on its raw exit curves (``optimizer.system.evaluate``).
  ``evaluation`` scores EVERY policy (optimum, DTO-EE, each baseline) with this one function
  (``dtoee optimize``: the TEST split, while every policy was calibrated on the VALIDATION
  split), with the hull-model figure alongside for the two policies that optimised it.

Where ``system`` carries its calibration samples, the optimum and DTO-EE's rounds use the
exit curves conditional on survival (``optimizer.registry.conditional_curves``), as the
``optimum`` and ``dtoee`` policies of a run do.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from optimizer.baselines import BASELINES
from optimizer.centralized import CentralizedSolver, gap_to_optimum
from optimizer.dtoee import DtoeeConfig, run_in_memory
from optimizer.system import (Evaluation, SystemModel, evaluate, evaluate_exit_shares, evaluate_on_samples,
                              strategy_of_policy)

GAP_DEFINITION = "(J - J*) / D*, J = D - w A, J* and D* at the centralised cvxpy optimum"
EVALUATION_GAP_DEFINITION = ("(J - J_opt) / D_opt, all three from the one scoring function of the evaluation "
                             "(its samples, or its raw curves), J_opt and D_opt of the centralised optimum's strategy")


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
    evaluation_system: SystemModel | None = None,
    evaluation_name: str = "calibration curves",
    baseline_policies: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """DTO-EE objective after each round, the centralised optimum, the gap, and every policy
    on one evaluation.

    ``system``: what every policy is computed from (its exit curves are the calibration ones).
    ``evaluation_system``: the same system with the exit curves to score on (default:
    ``system``); it must differ from ``system`` in nothing but its exit curves.
    ``baseline_policies``: {name: policy} to score as the baselines (``dtoee optimize`` passes
    the scenario's own, built as a simulation would, with its threshold and seed); default:
    every entry of ``optimizer.baselines.BASELINES`` with its default options.

    Returns a JSON-serialisable dict: ``rounds`` (per round, hull model: objective,
    mean_delay_s, accuracy, gap), ``optimum`` (D*, A*, J*, solve time, status), ``dtoee``
    (final hull-model values, its strategy, ``rounds_to_gap``, ``curve_evaluation`` on the
    calibration curves), ``gap_definition``, and ``evaluation``: ``name``, ``definition``,
    ``gap_definition`` and ``policies`` {name: raw-curve evaluation on ``evaluation_system``
    + ``gap`` + ``hull_model`` (the hull-model figures the policy optimised, or None)};
    baselines are there if ``baselines``.
    """
    from optimizer.registry import conditional_curves  # registry imports this package's modules

    evaluation_system = system if evaluation_system is None else evaluation_system
    _check_same_system(system, evaluation_system)
    system = conditional_curves(system)  # the model the optimum policy and DTO-EE optimise
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
    strategies: dict[str, tuple[Any, Any, Evaluation | None]] = {}
    if solved:
        hull = evaluate_exit_shares(system, optimum.x, optimum.exit_share)
        strategies["optimum"] = (optimum.x, optimum.theta, hull)
    strategies["dtoee"] = (history.x, history.theta, evaluate_exit_shares(system, history.x, history.exit_share))
    skipped: dict[str, str] = {}
    if baselines:
        policies = baseline_policies if baseline_policies is not None else {
            name: factory(system) for name, factory in BASELINES.items()}
        for name, policy in policies.items():
            try:
                x, theta = strategy_of_policy(system, policy)
            except (AttributeError, NotImplementedError) as error:  # decides per task: no (x, theta)
                skipped[name] = f"no analytical strategy: {error}"
                continue
            strategies[name] = (x, theta, None)
    report["evaluation"] = score_policies(evaluation_system, strategies, evaluation_name)
    if skipped:
        report["evaluation"]["skipped"] = skipped
    return report


def score_policies(system: SystemModel, strategies: dict[str, tuple[Any, Any, Evaluation | None]],
                   name: str) -> dict[str, Any]:
    """Score every ``(x, theta, hull_evaluation_or_None)`` with ONE function: the deployed
    thresholds on ``system``'s samples (:func:`optimizer.system.evaluate_on_samples`) where
    it carries them, else on its raw exit curves (:func:`optimizer.system.evaluate`);
    ``gap`` is relative to the entry named "optimum" on this same evaluation."""
    table = system.calibration_samples
    if table is not None:
        scored = {label: evaluate_on_samples(system, x, theta, table) for label, (x, theta, _) in strategies.items()}
        definition = ("optimizer.system.evaluate_on_samples: each policy's deployed thresholds theta_j^k and "
                      "offloading x_ij^k on the per-sample confidences named here (exit shares and accuracy "
                      "conditional on survival; no concave hull)")
    else:
        scored = {label: evaluate(system, x, theta) for label, (x, theta, _) in strategies.items()}
        definition = ("optimizer.system.evaluate: each policy's deployed thresholds theta_j^k and offloading "
                      "x_ij^k on the raw exit curves named here (no concave hull)")
    reference = scored.get("optimum")
    policies = {}
    for label, ev in scored.items():
        entry = _evaluation_dict(ev)
        entry["gap"] = (_finite((ev.objective - reference.objective) / reference.mean_delay_s)
                        if reference is not None and reference.feasible else None)
        hull = strategies[label][2]
        entry["hull_model"] = None if hull is None else {
            "mean_delay_s": _finite(hull.mean_delay_s), "accuracy": _finite(hull.accuracy),
            "objective": _finite(hull.objective)}
        policies[label] = entry
    return {
        "name": name,
        "definition": definition,
        "gap_definition": EVALUATION_GAP_DEFINITION,
        "policies": policies,
    }


def _check_same_system(system: SystemModel, other: SystemModel) -> None:
    if other is system:
        return
    for field in ("nodes", "num_stages", "hosts", "external_rate_per_s", "service_rate_per_s", "links",
                  "transfer_bytes", "w"):
        if getattr(system, field) != getattr(other, field):
            raise ValueError(f"evaluation_system differs from system in {field}: only the exit curves may differ")
