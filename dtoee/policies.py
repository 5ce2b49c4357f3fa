"""The policy a scenario's ``[policy]`` table names: its own ``static`` table, or a kind of
the registry (``optimizer.registry``) built on the scenario's SystemModel."""

from __future__ import annotations

from dtoee.config import Scenario
from optimizer.policy import Policy, StaticPolicy
from optimizer.registry import PolicyOptions, build_policy as build_registered


def default_offload(scenario: Scenario, node: str, stage: int) -> dict[str, float]:
    """Run locally when ``node`` hosts ``stage``; else split over the hosts of ``stage`` in
    proportion to their capacity (speed_factor x servers), i.e. load-proportional."""
    hosts = scenario.hosts(stage)
    if node in hosts:
        return {node: 1.0}
    capacity = {h: scenario.node(h).speed_factor * scenario.node(h).servers for h in hosts}
    total = sum(capacity.values())
    return {h: c / total for h, c in capacity.items()}


def static_policy(scenario: Scenario) -> StaticPolicy:
    names = [node.name for node in scenario.nodes]
    num_stages = scenario.model.num_stages
    offload = {}
    for name in names:
        given = scenario.policy.offload.get(name, {})
        for stage in range(1, num_stages + 1):
            offload[(name, stage)] = dict(given[str(stage)]) if str(stage) in given else default_offload(scenario, name, stage)
    thresholds = {(name, k + 1): theta for name, values in scenario.policy.thresholds.items()
                  for k, theta in enumerate(values)}
    return StaticPolicy(offload, thresholds, scenario.policy.fixed_threshold)


def build_policy(scenario: Scenario, system=None) -> Policy:
    """The policy named by ``scenario.policy.kind``; all but ``static`` need the scenario's
    :class:`~optimizer.system.SystemModel` (``dtoee.system_model.system_from_scenario``)."""
    config = scenario.policy
    if config.kind == "static":
        return static_policy(scenario)
    options = PolicyOptions(threshold=config.fixed_threshold, seed=scenario.simulation.seed,
                            period_s=config.period_s, message_bytes=config.control_message_bytes,
                            rounds_per_period=config.rounds_per_period)
    return build_registered(config.kind, system, options)


def is_adaptive(policy) -> bool:
    return hasattr(policy, "step") and hasattr(policy, "period_s")
