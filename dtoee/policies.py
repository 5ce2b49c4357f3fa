"""The policy a scenario's ``[policy]`` table names: its own ``static`` table, or a kind of
the registry (``optimizer.registry``) built on the scenario's SystemModel."""

from __future__ import annotations

from dtoee.config import Scenario
from optimizer.policy import Policy, StaticPolicy
from optimizer.registry import PolicyOptions, build_policy as build_registered


def _load_proportional(capacity: dict[str, float]) -> dict[str, float]:
    total = sum(capacity.values())
    return {h: c / total for h, c in capacity.items()} if total > 0 else {}


def static_policy(scenario: Scenario) -> StaticPolicy:
    """The scenario's ``[policy]`` tables; where a node has none for a stage: run locally when
    it hosts the stage, else split over the stage's hosts in proportion to their capacity
    (speed_factor x servers), i.e. load-proportional."""
    names = [node.name for node in scenario.nodes]
    num_stages = scenario.model.num_stages
    # the load-proportional split of each stage, computed once (not once per node: a
    # 1,000-server city has 1,000 nodes to fill)
    split = {k: _load_proportional({n.name: n.speed_factor * n.servers for n in scenario.nodes if k in n.stages})
             for k in range(1, num_stages + 1)}
    offload = {}
    for name in names:
        given = scenario.policy.offload.get(name, {})
        hosted = set(scenario.node(name).stages)
        for stage in range(1, num_stages + 1):
            if str(stage) in given:
                offload[(name, stage)] = dict(given[str(stage)])
            else:
                offload[(name, stage)] = {name: 1.0} if stage in hosted else dict(split[stage])
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
