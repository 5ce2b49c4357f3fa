"""The scenario as the optimizer sees it: a :class:`optimizer.system.SystemModel`.

This is the *prior* every policy starts from: hosts H_k, service rates
mu_j^k = speed_factor_j x servers_j / stage_latency_jk (the stage's time on node j's device, or
the model's profile; c servers modelled as one server c
times faster), logical links i -> j for every pair of servers (capacity = the bottleneck rate
on the shortest backhaul path, propagation = the sum of its delays; links shared by several
paths are not modelled as shared), transfer sizes b_k (k = 1: the input sample; k > 1: the
stage k-1 activation; each plus the 16-byte frame header), external rates lambda_i (sum of
the Poisson rates of the UEs served by base station i) and the model's exit curves measured
on its test split.
"""

from __future__ import annotations

from dtoee.config import Scenario, backhaul_pairs
from ns3_glue.network import UePlacement, backhaul_routes
from optimizer.system import Link, SystemModel

FRAME_HEADER_BYTES = 16


def logical_links(scenario: Scenario) -> dict[tuple[str, str], Link]:
    names = [node.name for node in scenario.nodes]
    pairs = backhaul_pairs(scenario)
    by_ends = {}
    for a, b, rate, delay, _loss in pairs:
        by_ends[(a, b)] = by_ends[(b, a)] = (rate, delay)
    next_hop = backhaul_routes(names, pairs)
    links = {}
    for (source, target) in next_hop:
        here, bottleneck_bps, delay_s = source, float("inf"), 0.0
        while here != target:
            hop = next_hop[(here, target)]
            rate, delay = by_ends[(here, hop)]
            bottleneck_bps, delay_s = min(bottleneck_bps, rate), delay_s + delay
            here = hop
        links[(source, target)] = Link(capacity_bytes_per_s=bottleneck_bps / 8.0, propagation_s=delay_s)
    return links


def system_from_scenario(scenario: Scenario, model, ues: list[UePlacement], figures,
                         ue_rates: dict[int, float] | None = None) -> SystemModel:
    """``figures``: ``dtoee.run.StageFigures`` (latencies and bytes as the simulation uses them)."""
    num_stages = scenario.model.num_stages
    stage_latency_s = figures.node_latency_s
    rates: dict[str, float] = {node.name: 0.0 for node in scenario.nodes}
    for ue in ues:
        rates[ue.serving_node] += ue_rates[ue.index] if ue_rates is not None else ue.rate_per_s
    transfer = {1: figures.input_bytes + FRAME_HEADER_BYTES}
    for k in range(2, num_stages + 1):
        transfer[k] = figures.activation_bytes[k - 2] + FRAME_HEADER_BYTES
    curves = {curve.stage: curve for curve in model.exit_curves()}
    return SystemModel(
        nodes=tuple(node.name for node in scenario.nodes),
        num_stages=num_stages,
        hosts={k: tuple(scenario.hosts(k)) for k in range(1, num_stages + 1)},
        external_rate_per_s=rates,
        service_rate_per_s={(node.name, k): node.speed_factor * node.servers / stage_latency_s[node.name][k - 1]
                            for node in scenario.nodes for k in node.stages},
        links=logical_links(scenario),
        transfer_bytes=transfer,
        exit_curves=curves,
        w=scenario.policy.w,
        result_bytes=model.result_bytes + FRAME_HEADER_BYTES,
    )
