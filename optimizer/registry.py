"""The one registry of policy kinds: name -> how to build it from a :class:`SystemModel`.

Every policy a scenario can name (except ``static``, which is the scenario's own table and
is built in ``dtoee.policies``) is here, with the options it takes. To add a policy, write
its factory ``f(system, **options)`` and add one :class:`PolicyEntry`.

Options (``PolicyOptions``) common to the kinds: ``threshold`` (the fixed threshold of the
baselines and dispatchers), ``seed``, ``period_s`` and ``message_bytes`` (of the adaptive
ones' control messages). Each entry names which it takes; ``build_policy`` passes just those.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Callable

from optimizer.baselines import BASELINES
from optimizer.centralized import InfeasibleProblem, solve_centralized, solve_self_consistent
from optimizer.dispatchers import Dispatcher, tuned_threshold
from optimizer.dtoee import DtoeePolicy, converged_policy
from optimizer.policy import StaticPolicy
from optimizer.system import SystemModel


@dataclass(frozen=True)
class PolicyOptions:
    threshold: float = 0.8
    seed: int = 0
    period_s: float = 1.0
    message_bytes: int = 64
    rounds_per_period: int = 1      # DTO-EE message rounds per measurement period


@dataclass(frozen=True)
class PolicyEntry:
    """factory(system, **options) -> policy; ``options``: the PolicyOptions fields it takes;
    ``adaptive``: it runs in the control plane every period; ``group``: what it stands for."""

    factory: Callable[..., Any]
    options: tuple[str, ...]
    adaptive: bool
    group: str


#: above this many nodes DTO-EE keeps the all-sample curves: the calibration solves the
#: centralised program (all-pairs links) a few times, which DTO-EE itself never needs
CONDITIONAL_CURVES_MAX_NODES = 64
#: halvings of the offered load tried when calibrating the conditional curves of an
#: overloaded system (2^-8: any load a validated scenario can offer)
OVERLOAD_HALVINGS = 8


def conditional_curves(system: SystemModel) -> SystemModel:
    """``system`` with the exit curves DTO-EE optimises: conditional on survival, measured on
    the calibration (validation) samples at the self-consistent optimum
    (:func:`optimizer.centralized.solve_self_consistent`): an offline calibration of model
    properties, nothing a node measures at run time. Unchanged if the system carries no
    calibration samples or has more than ``CONDITIONAL_CURVES_MAX_NODES`` nodes."""
    if system.calibration_samples is None or len(system.nodes) > CONDITIONAL_CURVES_MAX_NODES:
        return system
    scaled = system
    for _ in range(OVERLOAD_HALVINGS + 1):
        try:
            curves = solve_self_consistent(scaled).system
        except InfeasibleProblem:
            # offered load above capacity: no optimum to calibrate at. Calibrate at a load the
            # nodes can serve (what admission lets in is below it) and keep the real rates.
            scaled = replace(scaled, external_rate_per_s={i: lam / 2 for i, lam in scaled.external_rate_per_s.items()})
            continue
        return replace(curves, external_rate_per_s=system.external_rate_per_s)
    return system



def _optimum(system: SystemModel, **kw: Any) -> StaticPolicy:
    """The cvxpy optimum, with exit curves conditional on survival where the system carries
    its calibration samples (:func:`optimizer.centralized.solve_self_consistent`)."""
    if kw:
        raise ValueError(f"'optimum' takes no options, got {sorted(kw)}")
    if system.calibration_samples is not None:
        solution = solve_self_consistent(system).solution
    else:
        solution = solve_centralized(system)
        if not solution.x:
            raise ValueError(f"the centralised problem was not solved: {solution.status}")
    return StaticPolicy(solution.x, solution.theta, default_threshold=0.0)


def _dtoee(system: SystemModel, **kw: Any) -> DtoeePolicy:
    return DtoeePolicy(conditional_curves(system), **kw)


def _dtoee_converged(system: SystemModel, **kw: Any) -> StaticPolicy:
    return converged_policy(conditional_curves(system), **kw)


def _tuned_sed(system: SystemModel, **kw: Any) -> Dispatcher:
    threshold, _scores = tuned_threshold(system)
    return Dispatcher(system, rule="sed", threshold=threshold, **kw)


_DISPATCH = ("period_s", "message_bytes")
POLICIES: dict[str, PolicyEntry] = {
    "dtoee": PolicyEntry(_dtoee, _DISPATCH + ("rounds_per_period",), True, "distributed optimizer"),
    "dtoee-converged": PolicyEntry(_dtoee_converged, (), False, "reference"),
    "optimum": PolicyEntry(_optimum, (), False, "reference"),
    "static-load-proportional": PolicyEntry(BASELINES["static-load-proportional"], ("threshold",), False, "static"),
    "static-greedy-sed": PolicyEntry(BASELINES["static-greedy-sed"], ("threshold",), False, "static"),
    "static-no-early-exit": PolicyEntry(BASELINES["static-no-early-exit"], (), False, "static"),
    "static-random": PolicyEntry(BASELINES["static-random"], ("threshold", "seed"), False, "static"),
    "dispatch-sed": PolicyEntry(partial(Dispatcher, rule="sed"), ("threshold",) + _DISPATCH, True, "dispatcher"),
    "dispatch-jsq": PolicyEntry(partial(Dispatcher, rule="jsq"), ("threshold",) + _DISPATCH, True, "dispatcher"),
    "dispatch-po2": PolicyEntry(partial(Dispatcher, rule="po2"), ("threshold",) + _DISPATCH, True, "dispatcher"),
    "dispatch-sed-tuned": PolicyEntry(_tuned_sed, _DISPATCH, True, "dispatcher"),
}

ALIASES: dict[str, str] = {
    "fixed-threshold-load-proportional": "static-load-proportional",
    "fixed-threshold-greedy-sed": "static-greedy-sed",
    "no-early-exit": "static-no-early-exit",
    "random-offloading": "static-random",
}
"""Former names, still accepted (scenario files, sweeps and tables that use them)."""


def canonical(name: str) -> str:
    """The registry name of ``name`` (an alias resolves to its entry); ValueError if unknown."""
    name = ALIASES.get(name, name)
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; allowed: {sorted(POLICIES) + sorted(ALIASES)}")
    return name


def make_policy(name: str, system: SystemModel, **kw: Any):
    """Build policy ``name`` (or an alias) on ``system`` with the keyword options given."""
    return POLICIES[canonical(name)].factory(system, **kw)


def build_policy(name: str, system: SystemModel, options: PolicyOptions = PolicyOptions()):
    """Build policy ``name`` with those of ``options`` that its entry takes."""
    entry = POLICIES[canonical(name)]
    return entry.factory(system, **{option: getattr(options, option) for option in entry.options})
