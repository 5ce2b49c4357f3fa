"""The scenario as the optimizer sees it: a :class:`optimizer.system.SystemModel`.

This is the *prior* every policy starts from: hosts H_k, service rates
mu_j^k = speed_factor_j x servers_j / stage_latency_jk (the stage's time on node j's device, or
the model's profile; c servers modelled as one server c
times faster), logical links i -> j for every pair of servers (capacity = the bottleneck rate
on the shortest backhaul path, propagation = the sum of its delays; links shared by several
paths are not modelled as shared), transfer sizes b_k (k = 1: the input sample; k > 1: the
stage k-1 activation; each plus the 16-byte frame header), external rates lambda_i (sum of
the Poisson rates of the UEs served by base station i) and the model's exit curves measured
on its VALIDATION split (the simulation draws from the test split: calibrate on one,
evaluate on another).
"""

from __future__ import annotations

import math

from dtoee.config import Scenario
from dtoee.topology import backhaul_graph, path_figures, routes
from dtoee.trace import measured_completed
from inference.exits import CALIBRATION_SPLIT
from dtoee.network import UePlacement
from optimizer.system import Link, SystemModel

FRAME_HEADER_BYTES = 16


def logical_links(scenario: Scenario) -> dict[tuple[str, str], Link]:
    """A logical link i -> j for every ordered pair of connected servers, along the backhaul
    route (``dtoee.topology``): capacity = its bottleneck rate / 8, propagation = its delay."""
    graph = backhaul_graph(scenario)
    links = {}
    for pair, path in routes(graph).items():
        bottleneck_bps, delay_s = path_figures(graph, path)
        links[pair] = Link(capacity_bytes_per_s=bottleneck_bps / 8.0, propagation_s=delay_s)
    return links


def system_from_scenario(scenario: Scenario, model, ues: list[UePlacement], figures,
                         ue_rates: dict[int, float] | None = None, split: str = CALIBRATION_SPLIT) -> SystemModel:
    """``figures``: ``dtoee.run.StageFigures`` (latencies and bytes as the simulation uses them).
    ``split``: the model's exit curves to use: the validation split (default; every policy
    is computed from it), or "test" to score policies on the split the simulation draws."""
    num_stages = scenario.model.num_stages
    stage_latency_s = figures.node_latency_s
    rates: dict[str, float] = {node.name: 0.0 for node in scenario.nodes}
    for ue in ues:
        rates[ue.serving_node] += ue_rates[ue.index] if ue_rates is not None else ue.rate_per_s
    transfer = {1: figures.input_bytes + FRAME_HEADER_BYTES}
    for k in range(2, num_stages + 1):
        transfer[k] = figures.activation_bytes[k - 2] + FRAME_HEADER_BYTES
    curves = {curve.stage: curve for curve in model.exit_curves(split=split)}
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
        calibration_samples=sample_table(model, split) if _has_split(model, split) else None,
    )


def _has_split(model, split: str) -> bool:
    labels = model.validation_labels if split == CALIBRATION_SPLIT else model.test_labels
    return len(labels) > 0


def sample_table(model, split: str = "test"):
    """The per-sample confidences and correctness of ``split``: "test" (default), the split
    the simulation draws its tasks from (the model's replay table), or "validation", the one
    the exit curves and every policy are calibrated on (``SystemModel.calibration_samples``).
    Pass another :class:`~optimizer.exit_curves.SampleTable` to :func:`predicted_figures` to
    predict from another split."""
    from optimizer.exit_curves import SampleTable

    if split == CALIBRATION_SPLIT:
        replay, labels = model.validation_replay, model.validation_labels
    elif split == "test":
        replay, labels = model.replay, model.test_labels
    else:
        raise ValueError(f"split={split!r}: must be {CALIBRATION_SPLIT!r} or 'test'")
    return SampleTable.from_predictions(replay.confidence, replay.predicted, labels)


def size_variability(scenario: Scenario, workload) -> tuple[dict, dict]:
    """({(j, k): c_w^2}, {k: scv of b_k}): how much a stage's service time at node j and a
    stage's message vary over the tasks' sizes (``dtoee.workload.Workload``; a decoder's
    prompt lengths move both). c^2 = E[X^2] / E[X]^2 - 1 over the size distribution's
    support; all 0 when every task is alike."""
    from dtoee.workload import TOKEN_ID_BYTES, TaskSize, support

    if workload is None or workload.token_dist is None:
        return {}, {}
    tokens, weights = support(workload.token_dist)
    weights = [w / sum(weights) for w in weights]

    def scv(values) -> float:
        mean = sum(w * v for w, v in zip(weights, values))
        second = sum(w * v * v for w, v in zip(weights, values))
        return max(second / mean**2 - 1.0, 0.0) if mean > 0 else 0.0

    service = {}
    for node in scenario.nodes:
        latency = [workload.stage_latency_s(TaskSize(0, t), node.name) for t in tokens]
        for k in node.stages:
            service[(node.name, k)] = scv([row[k - 1] for row in latency])
    transfer = {1: scv([TOKEN_ID_BYTES * t + FRAME_HEADER_BYTES for t in tokens])}  # the prompt's token ids
    activation = [workload.activation_bytes(TaskSize(0, t)) for t in tokens]
    for k in range(2, scenario.model.num_stages + 1):
        transfer[k] = scv([row[k - 2] + FRAME_HEADER_BYTES for row in activation])
    return service, transfer


def delay_model(scenario: Scenario, *, access_delay_s: float = 0.0, workload=None):
    """The simulator's own delay mechanics for :func:`optimizer.system.simulator_delay`:
    service distribution, workers per node, the physical backhaul hops of every route (so
    links shared by several paths are one queue), TCP/IP header overhead, the mean radio
    legs ``access_delay_s``, and (``workload``) how much service times and messages vary
    with the tasks' sizes (:func:`size_variability`)."""
    from dtoee.network import SEGMENT_OVERHEAD_BYTES, SEGMENT_PAYLOAD_BYTES
    from optimizer.system import SimulatorDelayModel

    service_scv, transfer_scv = size_variability(scenario, workload)
    graph = backhaul_graph(scenario)
    capacity, propagation = {}, {}
    for a, b, data in graph.edges(data=True):
        for hop in ((a, b), (b, a)):
            capacity[hop], propagation[hop] = data["rate_bps"] / 8.0, data["delay_s"]
    hops = {pair: tuple(zip(path, path[1:])) for pair, path in routes(graph).items()}
    return SimulatorDelayModel(
        service_scv=1.0 if scenario.model.service_distribution == "exponential" else 0.0,
        servers={node.name: node.servers for node in scenario.nodes},
        routes=hops, hop_capacity_bytes_per_s=capacity, hop_propagation_s=propagation,
        hop_overhead=1.0 + SEGMENT_OVERHEAD_BYTES / SEGMENT_PAYLOAD_BYTES, access_delay_s=access_delay_s,
        service_scv_by_class=service_scv, transfer_scv=transfer_scv,
    )


def realised_offloading(system: SystemModel, tasks, hops, measured_from_s: float = 0.0) -> dict:
    """The offloading the run actually used, from its trace: x_ij^k = the share of the
    measured completed tasks that left node i for stage k and were served at j.

    For a task, the stage-k host j is its stage-k ``service`` hop's node; i is the stage k-1
    host (k > 1) or its ``entry_node`` (k = 1). Only tasks created at or after
    ``measured_from_s`` count (the summary's tasks). Decision points no measured task went
    through are left out (the caller keeps the policy's own there).
    Returns {(i, k): {j: x_ij^k}} over :meth:`SystemModel.decision_keys`.
    """
    import pandas as pd

    done = measured_completed(tasks, measured_from_s)
    service = hops[(hops["kind"] == "service") & hops["task_id"].isin(done["task_id"])]
    if service.empty:
        return {}
    host = service[["task_id", "stage", "src"]].drop_duplicates(["task_id", "stage"], keep="last")
    previous = host.assign(stage=host["stage"] + 1).rename(columns={"src": "from"})
    entry = done[["task_id", "entry_node"]].rename(columns={"entry_node": "from"}).assign(stage=1)
    decisions = host.merge(pd.concat([entry, previous], ignore_index=True), on=["task_id", "stage"], how="inner")
    counts = decisions.groupby(["from", "stage", "src"]).size()
    keys = set(system.decision_keys())
    x: dict = {}
    for (i, k, j), n in counts.items():
        if (i, int(k)) in keys:
            x.setdefault((i, int(k)), {})[j] = float(n)
    return {key: {j: n / sum(row.values()) for j, n in row.items()} for key, row in x.items()}


class RealisedSplit:
    """``policy``'s thresholds with the offloading a run measured (:func:`realised_offloading`)
    where it measured one: what a fixed-split model is given to check its queue, link and
    radio terms against the run, whatever rule made the split."""

    def __init__(self, policy, offloading: dict) -> None:
        self._policy, self._offloading = policy, offloading

    def offload_probabilities(self, node, stage):
        return self._offloading.get((node, stage)) or self._policy.offload_probabilities(node, stage)

    def threshold(self, node, stage):
        return self._policy.threshold(node, stage)


def predicted_figures(system: SystemModel, policy, table, *, delays=None, run_samples=None, run_created_s=None,
                      strategies=None) -> dict:
    """What the system model predicts for ``policy`` (its offloading and thresholds now).

    Exit shares and accuracy are exact over ``table`` (conditional on survival,
    :func:`optimizer.system.sample_flows`). ``mean_delay_s`` is
    :func:`optimizer.system.simulator_delay` at those flows with ``delays``
    (:func:`delay_model`: P-K queues, shared links, radio legs) when given;
    ``optimizer_mean_delay_s`` is the optimizer's own M/M/1 figure
    (:func:`optimizer.system.assess_flows`), and ``accuracy_unconditional_curves`` what the
    unconditional exit curves give (the selection effect), both for comparison.

    Accuracy, two ways. With q_s = P(sample s is answered right) under the policy's routing
    and thresholds (:attr:`optimizer.system.SampleFlows.correct_by_sample`):

    * ``accuracy`` = mean of q_s over the whole ``table`` (the split the run draws from): what
      the model predicts before the run. A run of n tasks delivers it up to sampling noise,
      ``accuracy_sampling_se`` = sqrt(A (1 - A) / n).
    * ``accuracy_on_run_samples`` = mean of q_s over ``run_samples`` (the sample index of
      each task the run measured, tasks.parquet's ``sample``): the model's prediction given
      the inputs the run drew, each task scored with the thresholds and offloading in force
      when it was created (``strategies``: [(time_s, x, theta)] in time order, e.g.
      :func:`strategies_from_log` of policy.parquet, with ``run_created_s``; default: the
      policy's current ones for every task). Only the routing draws are left:
      ``accuracy_routing_se`` = sqrt(sum q (1 - q)) / n (0 where every host of a stage has
      one threshold: then each sample's exit is determined and the prediction checks that
      the model's exit rule and thresholds are the simulator's).
    """
    from optimizer.system import assess_flows, evaluate, sample_flows, simulator_delay, strategy_of_policy

    x, theta = strategy_of_policy(system, policy)
    exact = sample_flows(system, x, theta, table)
    evaluation = assess_flows(system, exact.flows, exact.correct_share)
    unconditional = evaluate(system, x, theta)
    parts = simulator_delay(system, exact.flows, delays) if delays is not None else {
        "mean_delay_s": evaluation.mean_delay_s, "compute_delay_s": evaluation.compute_delay_s,
        "network_delay_s": evaluation.network_delay_s, "access_delay_s": 0.0}
    finite = {key: (value if math.isfinite(value) else None) for key, value in parts.items()}
    return {
        **finite,
        "delay_model": "simulator (P-K, shared links, radio legs)" if delays is not None else "optimizer (M/M/1)",
        "optimizer_mean_delay_s": evaluation.mean_delay_s if evaluation.feasible else None,
        "feasible": bool(evaluation.feasible),
        "accuracy": exact.accuracy,
        "accuracy_unconditional_curves": unconditional.accuracy,
        **_on_run_samples(system, table, (x, theta), exact.correct_by_sample, run_samples, run_created_s, strategies),
        "exit_share_by_stage": {str(k): v for k, v in exact.exit_stage_share.items()},
        "utilisation_by_node": {j: float(r) for j, r in evaluation.rho.items()},
    }


def strategies_from_log(rows) -> list[tuple[float, dict, dict]]:
    """[(time_s, x, theta)] from policy.parquet's rows (``dtoee.control.POLICY_COLUMNS``:
    time_s, node, stage, kind, target, value), one per snapshot time, in time order."""
    by_time: dict[float, tuple[dict, dict]] = {}
    for time_s, node, stage, kind, target, value in rows:
        x, theta = by_time.setdefault(float(time_s), ({}, {}))
        if kind == "offload":
            x.setdefault((node, int(stage)), {})[target] = float(value)
        elif kind == "threshold":
            theta[(node, int(stage))] = float(value)
    return [(t, *by_time[t]) for t in sorted(by_time)]


def _on_run_samples(system, table, now, correct_now, run_samples, run_created_s, strategies) -> dict:
    """The accuracy figures of :func:`predicted_figures` that depend on the run's samples.
    ``now``: the policy's current (x, theta), filling whatever a logged strategy lacks."""
    import numpy as np

    from optimizer.system import sample_flows

    accuracy = float(np.mean(correct_now))
    n = 0 if run_samples is None else len(run_samples)
    if n == 0:
        return {"accuracy_on_run_samples": None, "accuracy_routing_se": None, "accuracy_sampling_se": None,
                "run_samples": n, "run_strategies": 0}
    samples = np.asarray(run_samples, dtype=int)
    if not strategies or run_created_s is None:
        q, used = np.asarray(correct_now)[samples], 1
    else:  # each task with the strategy in force when it was created
        times = np.array([t for t, _, _ in strategies])
        index = np.clip(np.searchsorted(times, np.asarray(run_created_s, float), side="right") - 1, 0, None)
        q = np.empty(n)
        previous, q_by_sample, used = None, None, 0
        for m in np.unique(index):
            _, logged_x, logged_theta = strategies[m]
            x = {**now[0], **{key: value for key, value in logged_x.items() if value}}
            theta = {**now[1], **logged_theta}
            if (x, theta) != previous:
                q_by_sample, previous, used = sample_flows(system, x, theta, table).correct_by_sample, (x, theta), used + 1
            q[index == m] = q_by_sample[samples[index == m]]
    q = np.clip(q, 0.0, 1.0)  # sums of routing probabilities: round-off can leave 1 + 1e-16
    return {"accuracy_on_run_samples": float(q.mean()),
            "accuracy_routing_se": float(np.sqrt(np.sum(q * (1.0 - q))) / n),
            "accuracy_sampling_se": float(np.sqrt(accuracy * (1.0 - accuracy) / n)),
            "run_samples": n, "run_strategies": used}


def prediction_error(summary: dict, predicted: dict) -> dict:
    """Delivered minus predicted: delay in seconds and as a share of delivered, accuracy and
    exit shares in points."""
    delivered_delay = (summary.get("delay_s") or {}).get("mean")
    error: dict = {"mean_delay_s": None, "mean_delay_rel": None, "accuracy_pts": None,
                   "accuracy_on_run_samples_pts": None, "exit_share_pts": {}}
    if delivered_delay is not None and predicted.get("mean_delay_s") is not None:
        error["mean_delay_s"] = delivered_delay - predicted["mean_delay_s"]
        error["mean_delay_rel"] = error["mean_delay_s"] / delivered_delay
    if summary.get("accuracy") is not None:
        error["accuracy_pts"] = 100.0 * (summary["accuracy"] - predicted["accuracy"])
        if predicted.get("accuracy_on_run_samples") is not None:
            error["accuracy_on_run_samples_pts"] = 100.0 * (summary["accuracy"] - predicted["accuracy_on_run_samples"])
    for k, share in predicted["exit_share_by_stage"].items():
        delivered = summary.get("exit_share_by_stage", {}).get(k)
        if delivered is not None:
            error["exit_share_pts"][k] = 100.0 * (delivered - share)
    return error
