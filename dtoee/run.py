"""Run one scenario: build the model, the network and the co-simulation; write the traces.

``run_scenario`` runs in the calling process (one simulation per process: ns-3 keeps
process-wide state). ``run_isolated`` runs it in a child forked from the caller, which is
how tests and sweeps run many simulations after paying ns-3's import once.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
import math
import multiprocessing
import os
import signal
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

from dtoee.analysis import delay_breakdown
from dtoee.config import Scenario, ScenarioError, check_service_times
from dtoee.cosim import CoSimulation, FaultHandling, NodeState
from dtoee.execution import LiveExecutor, ReplayExecutor
from dtoee.control import POLICY_COLUMNS, ControlPlane, PolicyLog
from dtoee.policies import build_policy, is_adaptive
from dtoee.system_model import system_from_scenario
from dtoee.seeding import numpy_streams, torch_seed
from dtoee.trace import Trace, hops_frame, measured_completed, summarize, tasks_frame, write_outputs
from dtoee.topology import NextHops, backhaul_graph
from dtoee.workload import Workload
from dtoee.network import UePlacement, make_network, place_ues


def load_model(scenario: Scenario):
    from inference import load_staged_model

    model = load_staged_model(scenario.model.family, seed=scenario.model.train_seed)
    if model.num_stages != scenario.model.num_stages:
        raise ScenarioError(
            f"model.num_stages = {scenario.model.num_stages}; allowed: {model.num_stages} "
            f"(the {scenario.model.family!r} model has {model.num_stages} stages)"
        )
    return model


@dataclass(frozen=True)
class StageFigures:
    """Per stage k (index k-1): service time at speed 1, bytes offloaded after it, parameter
    bytes; plus the input size. Measured (the trained model's profile) or ESTIMATED (a named
    large model's architecture), then overridden by ``model.stage_latency_s`` if given.

    ``node_latency_s[node][k-1]``: the service time on that node at speed_factor 1: the
    roofline estimate on the node's device (``inference.devices``) when it names one, else
    ``latency_s``. ``working_bytes`` / ``kv_cache_bytes``: memory one task in service holds
    at stage k (``inference.placement``). ``devices``: node -> how its times were estimated."""

    latency_s: list[float]
    activation_bytes: list[int]
    param_bytes: list[int]
    input_bytes: int
    estimated: bool
    node_latency_s: dict[str, list[float]] = None
    working_bytes: list[int] = None
    kv_cache_bytes: list[int] = None
    devices: dict[str, str] = None


_WIRE_FIELD = {"fp32": "activation_bytes", "fp16": "activation_bytes_fp16", "int8": "activation_bytes_int8"}


def _large_profile(config, seq_len: int | None):
    from inference import large_model_profile

    return large_model_profile(config.large_model, config.num_stages, config.device_flops, seq_len=seq_len,
                               wire_dtype=config.activation_dtype)


def stage_figures(scenario: Scenario, model) -> StageFigures:
    """The model's figures at ``model.seq_len`` tokens (for a large decoder), each node's
    service times, and the memory a task in service holds at the longest prompt the
    workload can draw (the memory check's worst case)."""
    config = scenario.model
    field = _WIRE_FIELD[config.activation_dtype]
    from inference.large_models import LARGE_MODELS, is_vision

    if config.large_model is not None:
        from inference.devices import decoder_stage_costs

        estimated = True
        if is_vision(config.large_model):  # one image: tokens fixed by the architecture
            profile, input_bytes = _large_profile(config, None), LARGE_MODELS[config.large_model].input_bytes
            working, kv = None, [0] * config.num_stages  # no KV cache; working memory from activations below
        else:
            profile, input_bytes = _large_profile(config, config.seq_len), 4 * config.seq_len  # int32 token ids
            longest = (int(scenario.workload.prompt_tokens.bounds()[1]) if scenario.workload.prompt_tokens
                       else config.seq_len)
            worst = decoder_stage_costs(config.large_model, config.num_stages, min(longest, 4096))
            working, kv = [c.working_bytes for c in worst], [c.kv_cache_bytes for c in worst]
    else:
        profile, input_bytes, estimated = model.profile, model.input_bytes, False
        working, kv = None, [0] * len(profile)
    activation = [int(getattr(p, field)) for p in profile]
    if working is None:  # the largest activation in or out of the stage, one task at a time
        working = [max(input_bytes if k == 0 else activation[k - 1], activation[k]) for k in range(len(profile))]
    latency = list(config.stage_latency_s or [p.latency_s for p in profile])
    decoder = config.large_model is not None and not is_vision(config.large_model)
    node_latency = node_stage_latencies_s(scenario, config.seq_len, latency, None if decoder else profile,
                                          input_bytes)
    devices = {n.name: device_label(n.device, _efficiency(config)) for n in scenario.nodes if n.device is not None}
    return StageFigures(latency, activation, [int(p.param_bytes) for p in profile], int(input_bytes),
                        estimated or bool(devices), node_latency, working, kv, devices)


def _efficiency(config) -> float:
    from inference.devices import ROOFLINE_EFFICIENCY

    return config.roofline_efficiency or ROOFLINE_EFFICIENCY


def device_label(name: str, efficiency: float) -> str:
    from inference.devices import device_label as label

    return label(name, efficiency)


def node_stage_latencies_s(scenario: Scenario, tokens: int, default_s: list[float], profile=None,
                           input_bytes: int = 0) -> dict[str, list[float]]:
    """Service time of each stage at speed_factor 1 on every node, for a task of ``tokens``
    prompt tokens (large decoders) or the trained model's ``profile`` (FLOPs and bytes).

    A node that names a device: the roofline of the stage on it (``inference.devices``),
    plus, with the int8 wire format, the (de)quantisation of what the stage sends and
    receives as an elementwise roofline on the same device. Other nodes: ``default_s``."""
    from inference.devices import DEVICES, decoder_stage_costs, roofline_latency_s
    from inference.large_models import LARGE_MODELS, int8_codec_s

    config = scenario.model
    efficiency = _efficiency(config)
    k_max = config.num_stages
    if profile is None:
        costs = decoder_stage_costs(config.large_model, k_max, tokens)
        flops, moved = [c.flops for c in costs], [c.bytes_moved for c in costs]
        numel = tokens * LARGE_MODELS[config.large_model].dim
    else:
        flops = [p.flops for p in profile]
        ins = [input_bytes] + [p.activation_bytes for p in profile[:-1]]
        moved = [p.param_bytes + i + p.activation_bytes for p, i in zip(profile, ins)]
        numel = 0  # the small models' wire format is already in their measured profile
    out = {}
    for node in scenario.nodes:
        if node.device is None:
            out[node.name] = list(default_s)
            continue
        dev = DEVICES[node.device]
        times = [roofline_latency_s(f, b, dev, efficiency) for f, b in zip(flops, moved)]
        if config.activation_dtype == "int8" and numel:
            rate = dev.fp16_flops * efficiency
            for k in range(k_max):
                if k < k_max - 1:
                    times[k] += int8_codec_s(numel, rate, dev.memory_bandwidth_Bps, quantise=True)
                if k > 0:
                    times[k] += int8_codec_s(numel, rate, dev.memory_bandwidth_Bps, quantise=False)
        out[node.name] = times
    return out


def node_memory_bytes(scenario: Scenario) -> dict[str, int]:
    """Memory of each node that declares one: ``memory_bytes``, else its device's memory."""
    from inference.devices import DEVICES

    out = {}
    for node in scenario.nodes:
        if node.memory_bytes is not None:
            out[node.name] = int(node.memory_bytes)
        elif node.device is not None:
            out[node.name] = DEVICES[node.device].memory_bytes
    return out


def build_workload(scenario: Scenario, figures: StageFigures) -> Workload:
    """The per-task sizes of ``scenario.workload`` over the model's ``figures``."""
    config, workload = scenario.model, scenario.workload
    decoder = config.large_model is not None and config.large_model.startswith(("llama", "gpt"))
    figures_for_tokens = None
    if workload.prompt_tokens is not None:
        field = _WIRE_FIELD[config.activation_dtype]

        def figures_for_tokens(tokens: int) -> tuple[list[float], list[int]]:
            profile = _large_profile(config, tokens)
            return [p.latency_s for p in profile], [int(getattr(p, field)) for p in profile]

        high = workload.prompt_tokens.bounds()[1]
        try:
            figures_for_tokens(int(high))  # validated <= 4096: the model's context may be shorter
        except ValueError as error:
            raise ScenarioError(f"workload.prompt_tokens can reach {high!r} tokens: {error}") from None
    with_device = [n for n in scenario.nodes if n.device is not None]
    node_figures_for_tokens = None
    if figures_for_tokens is not None and with_device:
        def node_figures_for_tokens(tokens: int) -> dict[str, list[float]]:
            return {name: times for name, times in node_stage_latencies_s(scenario, tokens, []).items()
                    if scenario.node(name).device is not None}
    return Workload(sample_bytes=figures.input_bytes, stage_latency_s=figures.latency_s,
                    activation_bytes=figures.activation_bytes, input_bytes=workload.input_bytes,
                    prompt_tokens=workload.prompt_tokens, fixed_tokens=config.seq_len if decoder else 0,
                    figures_for_tokens=figures_for_tokens, node_latency_s=figures.node_latency_s,
                    node_figures_for_tokens=node_figures_for_tokens)


def mean_figures(figures: StageFigures, workload: Workload) -> StageFigures:
    """``figures`` with the workload's expected input bytes, service times and activation
    bytes (the prior the policies plan with, when task sizes vary)."""
    if not workload.varies:
        return figures
    node_latency = {name: [float(x) for x in workload.mean_stage_latency_s(name)] for name in figures.node_latency_s or {}}
    return StageFigures([float(x) for x in workload.mean_stage_latency_s()],
                        [round(b) for b in workload.mean_activation_bytes()], figures.param_bytes,
                        round(workload.mean_input_bytes()), figures.estimated, node_latency, figures.working_bytes,
                        figures.kv_cache_bytes, figures.devices)


def check_memory(scenario: Scenario, figures: StageFigures) -> None:
    """Each node with a memory figure (``memory_bytes`` or its device's) must hold its hosted
    stages' parameters plus, for each of its ``servers`` tasks in service at once, the working
    memory and KV cache of the stage that needs the most (``inference.placement``)."""
    from inference.placement import check_placement

    memory = node_memory_bytes(scenario)
    if not memory:
        return
    try:
        check_placement({name: scenario.node(name).stages for name in memory}, figures.param_bytes, memory,
                        figures.working_bytes, figures.kv_cache_bytes,
                        {name: scenario.node(name).servers for name in memory})
    except ValueError as error:
        if "hosted by no node" in str(error) or "hosted nowhere" in str(error):
            return  # stages on nodes without a memory figure: nothing to check there
        raise ScenarioError(f"nodes[*].memory_bytes: {error}") from None


# Memory a task holds until the traces are written: its Task object and hop rows, then its
# rows in the frames written at the end. Measured: ~5.1 kB per task, the peak RSS growth of a
# forked radio-off run of city_small (ue_groups.0.rate_per_s=4000, duration 5 s, stage
# latencies 1e-7 s: 80,799 tasks, each through three services) divided by its tasks.
TASK_MEMORY_BYTES = 6_000


def expected_tasks(scenario: Scenario) -> float:
    """Expected task count: sum over UEs of the integral of its Poisson rate over
    [0, duration_s), following the ``ue_rate`` events."""
    duration_s = scenario.simulation.duration_s
    total = 0.0
    for index, group in enumerate(scenario.ue_groups):
        changes = sorted((e.at_s, e.rate_per_s) for e in scenario.events if e.kind == "ue_rate" and e.ue_group == index)
        rate, since_s = group.rate_per_s, 0.0
        for at_s, new_rate in changes:
            if at_s >= duration_s:
                break
            total += group.count * rate * (at_s - since_s)
            rate, since_s = new_rate, at_s
        total += group.count * rate * (duration_s - since_s)
    return total


def available_memory_bytes() -> int:
    """MemAvailable from /proc/meminfo (Linux), else the physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_task_memory(scenario: Scenario, available_bytes: int | None = None) -> None:
    """Refuse a run whose expected tasks (rate x duration) would not fit in memory."""
    tasks = expected_tasks(scenario)
    need = tasks * TASK_MEMORY_BYTES
    available = available_memory_bytes() if available_bytes is None else available_bytes
    if need > available:
        raise ScenarioError(
            f"ue_groups[*].rate_per_s x simulation.duration_s: about {tasks:.3g} tasks expected, which need about "
            f"{need / 1e9:.3g} GB of memory ({TASK_MEMORY_BYTES} B each) and {available / 1e9:.3g} GB are available; "
            "allowed: fewer tasks (lower rates, fewer UEs or a shorter duration), or --allow-large to run anyway")


@dataclass
class Setup:
    """What a run builds before ns-3 is touched; :func:`preflight` makes it."""

    model: object
    figures: StageFigures
    rngs: dict
    ues: list[UePlacement]
    system: object
    policy: object
    workload: Workload = None           # per-task sizes (dtoee/workload.py)
    planning: StageFigures = None       # figures with the workload's expected sizes: what policies plan with


def preflight(scenario: Scenario, *, allow_large: bool = False) -> Setup:
    """Every check a run makes before ns-3 is touched, and what it builds on the way: the
    model (stage count), its stage figures (service times within ns-3's range, parameters and
    working memory inside each node's ``memory_bytes``), the expected task count against the
    memory available (unless ``allow_large``), UE placement and the policy. ``dtoee validate``
    calls this too, so what it accepts, ``run`` runs. Raises :class:`ScenarioError`."""
    model = load_model(scenario)
    figures = stage_figures(scenario, model)
    try:
        check_service_times(scenario, figures.latency_s)
    except ValueError as error:
        raise ScenarioError(f"{error} (stage latencies {'estimated' if figures.estimated else 'measured'})") from None
    check_memory(scenario, figures)
    if not allow_large:
        check_task_memory(scenario)
    rngs = numpy_streams(scenario.simulation.seed, sum(group.count for group in scenario.ue_groups))
    ues = place_ues(scenario, rngs["placement"])
    workload = build_workload(scenario, figures)
    planning = mean_figures(figures, workload)
    system = system_from_scenario(scenario, model, ues, planning) if scenario.policy.kind != "static" else None
    return Setup(model, figures, rngs, ues, system, build_policy(scenario, system), workload, planning)


@dataclass
class Simulation:
    """One run's world, built on ns-3 (:func:`build_simulation`)."""

    network: object                     # a dtoee.network.SimulatedNetwork (packet, hybrid or analytic)
    nodes: list[NodeState]
    cosim: CoSimulation
    control: ControlPlane
    executor: object
    trace: Trace
    policy_log: PolicyLog
    ue_distance_m: dict[int, float]     # each UE's distance from its serving eNB
    radio_model: object                 # hybrid/analytic: the calibrated per-cell radio model, else None
    predictor: object                   # summary -> the system model's prediction beside it (_predictor)


def build_simulation(scenario: Scenario, setup: Setup, out_dir: Path) -> Simulation:
    """The network, servers, co-simulation and control plane, started (nothing run yet)."""
    executor = (LiveExecutor if scenario.model.mode == "live" else ReplayExecutor)(setup.model, setup.figures)
    pcap_dir = out_dir / "pcap" if scenario.output.pcap else None
    network, radio_model = make_network(scenario, setup.ues, pcap_dir, run_packet=run_isolated)
    predictor = _predictor(scenario, setup.model, setup.ues, setup.planning, setup.system, setup.policy, radio_model,
                           workload=setup.workload)
    nodes = [NodeState(n.name, n.servers, n.speed_factor, n.queue_capacity) for n in scenario.nodes]
    trace = Trace()
    faults = FaultHandling(scenario.faults.on_crash, scenario.faults.reoffload_timeout_s,
                           scenario.faults.transfer_timeout_s)
    group_starts = np.cumsum([0] + [group.count for group in scenario.ue_groups])
    cosim = CoSimulation(
        network=network, executor=executor, policy=setup.policy, nodes=nodes, ues=setup.ues,
        stage_latency_s=setup.planning.node_latency_s,
        exponential_service=scenario.model.service_distribution == "exponential",
        duration_s=scenario.simulation.duration_s, rngs=setup.rngs, trace=trace, faults=faults, workload=setup.workload,
        next_hop=NextHops(backhaul_graph(scenario)),  # per source, when first asked
        ue_groups=[range(int(a), int(b)) for a, b in zip(group_starts[:-1], group_starts[1:])],
    )
    policy_log = PolicyLog()
    control = ControlPlane(cosim=cosim, policy=setup.policy, scenario=scenario,
                           stage_latency_s=setup.planning.node_latency_s,
                           network=network, policy_log=policy_log, adaptive=is_adaptive(setup.policy))
    ue_distance_m = {ue.index: math.dist(ue.position_m, scenario.node(ue.serving_node).position_m) for ue in setup.ues}
    cosim.start()
    control.start()
    return Simulation(network, nodes, cosim, control, executor, trace, policy_log, ue_distance_m, radio_model,
                      predictor)


def run_summary(scenario: Scenario, setup: Setup, sim: Simulation, tasks: pd.DataFrame, hops: pd.DataFrame, *,
                partial_reason: str | None, wall: dict[str, float]) -> dict:
    """summary.json of everything simulated so far (``wall``: wall_s, setup_wall_s, run_wall_s),
    with where the delay went (``dtoee.analysis.delay_breakdown`` of ``hops``) and the system
    model's prediction beside what was delivered."""
    breakdown = delay_breakdown(hops, tasks, scenario.simulation.warmup_s)
    reached_s = sim.network.now()
    horizon_s = scenario.simulation.duration_s + scenario.simulation.drain_s
    summary = summarize(
        tasks, {n.name: n.busy_time_s for n in sim.nodes}, {n.name: n.servers for n in sim.nodes},
        max(reached_s, 1e-12), scenario.model.num_stages, measured_from_s=scenario.simulation.warmup_s,
        scenario=scenario.name, scenario_hash=scenario.content_hash(), seed=scenario.simulation.seed,
        model=setup.model.name, data_splits=setup.model.data_splits(), mode=scenario.model.mode, stage_latency_s=setup.planning.latency_s,
        stage_latency_by_node_s=setup.planning.node_latency_s, devices=setup.planning.devices,
        large_model=scenario.model.large_model, stage_figures_estimated=setup.figures.estimated,
        activation_bytes=setup.figures.activation_bytes,
        max_queue_length_by_node={n.name: n.max_queue_length for n in sim.nodes},
        policy=scenario.policy.kind, control_messages_sent=sim.control.messages_sent,
        control_messages_delivered=sim.control.messages_delivered,
        simulated_s=reached_s, horizon_s=horizon_s, **wall,
        forward_wall_s=sim.executor.forward_time_s, python_callback_wall_s=sim.network.python_callback_wall_s,
        python_callbacks=sim.network.python_callbacks,
        partial=partial_reason is not None, partial_reason=partial_reason,
        fidelity=scenario.simulation.fidelity,
        radio_model_hash=sim.radio_model.config_hash if sim.radio_model is not None else None,
        delay_breakdown_s=_finite(breakdown["mean_s"]), delay_breakdown_share=_finite(breakdown["share"]),
    )
    summary.update(sim.predictor(summary, tasks, hops, sim.policy_log.rows))
    return summary


def run_scenario(scenario: Scenario, out_dir: str | Path, *, progress: bool | None = None,
                 allow_large: bool = False) -> dict:
    """Run ``scenario`` and write tasks/hops/summary into ``out_dir``; return the summary.

    If the run fails or is interrupted midway, the traces of everything up to then are still
    written, with ``summary["partial"] = True`` and the reason, and the error is re-raised.
    SIGTERM and SIGINT stop the simulation after the event in progress; further signals
    are ignored until those traces are written (then ``Terminated`` / ``KeyboardInterrupt``).
    """
    import torch

    torch.set_num_threads(1)  # fork-safe, and 1 thread per simulation is right on 2 cores
    torch.manual_seed(torch_seed(scenario.simulation.seed))
    out_dir = Path(out_dir)
    wall_start = time.perf_counter()
    setup = preflight(scenario, allow_large=allow_large)
    sim = build_simulation(scenario, setup, out_dir)
    horizon_s = scenario.simulation.duration_s + scenario.simulation.drain_s
    show = scenario.simulation.progress if progress is None else progress
    bar = _progress(sim.network, sim.cosim, horizon_s) if show else None
    setup_wall_s = time.perf_counter() - wall_start
    run_started = time.perf_counter()

    def write(partial_reason: str | None) -> dict:
        """Summarise and write everything simulated so far (each file replaced atomically)."""
        tasks = tasks_frame(sim.cosim.tasks, sim.ue_distance_m)
        hops = hops_frame(sim.trace)
        wall = {"wall_s": time.perf_counter() - wall_start, "setup_wall_s": setup_wall_s,
                "run_wall_s": time.perf_counter() - run_started}
        summary = run_summary(scenario, setup, sim, tasks, hops, partial_reason=partial_reason, wall=wall)
        write_outputs(out_dir, tasks, hops, summary, csv=scenario.output.csv,
                      policy=pd.DataFrame(sim.policy_log.rows, columns=POLICY_COLUMNS))
        return summary

    checkpoints = _Checkpoints(sim.network, horizon_s, scenario.simulation.checkpoint_wall_s,
                               lambda: write("checkpoint: the run was still in progress when this was written"))
    sim.cosim.before_arrival = checkpoints.due
    checkpoints.start()
    error: BaseException | None = None
    with _signals_stop(sim.network) as received:
        try:
            sim.network.run(horizon_s)
        except BaseException as caught:  # failed: keep what was simulated
            error = caught
        finally:
            if bar is not None:
                bar.close()
        if error is None and received:  # stopped by a signal before the horizon
            error = Terminated("SIGTERM") if received[0] == signal.SIGTERM else KeyboardInterrupt("SIGINT")
        try:
            summary = write(None if error is None else reason_of(error))
        except Exception as write_error:  # noqa: BLE001 - say that nothing was written
            raise TracesNotWritten(f"{out_dir}: {type(write_error).__name__}: {write_error}") from (error or write_error)
    sim.network.close()
    if error is not None:
        raise error
    return summary


def reason_of(error: BaseException) -> str:
    """``Type: message`` of the error that ended a run, on one line. cppyy re-raises a Python
    error that crossed C++ with the C++ call in front (``static void ns3::Simulator::Run() =>``,
    a newline, then ``Terminated: SIGTERM``): the reason is the last line."""
    text = str(error)
    if "=>" in text and "\n" in text:
        return " ".join(text.strip().splitlines()[-1].split())
    return " ".join(f"{type(error).__name__}: {text}".split())


class TracesNotWritten(RuntimeError):
    """The run's traces could not be written (the run itself may have finished)."""


#: the system model holds a logical link per ordered pair of servers; above this many nodes a
#: static policy's run skips the prediction rather than build it
PREDICTION_MAX_NODES = 200
#: the delay figures of ``predicted`` (:func:`optimizer.system.simulator_delay`'s parts)
DELAY_KEYS = ("mean_delay_s", "compute_delay_s", "service_delay_s", "queue_delay_s", "network_delay_s",
              "access_delay_s")


def _unavailable(reason: str):
    """A predictor (same call as :func:`_predictor`'s) for a run whose prediction cannot be made."""
    def predict(summary: dict, tasks=None, hops=None, policy_rows=None) -> dict:
        return {"predicted": {"unavailable": reason}, "prediction_error": {}}
    return predict


def _predictor(scenario: Scenario, model, ues, figures, system, policy, radio_model=None, *, workload=None):
    """(summary, tasks, hops) -> {"predicted": ..., "prediction_error": ...,
    "predicted_realised_split": ...}: what the system model predicts for the policy as it
    stands when the summary is written (for an adaptive policy, its latest state), beside what
    the run delivered. A per-task dispatcher's delay is not predicted (None, with why in
    ``delay_model``). ``predicted_realised_split``: the same delay model fed the split the run
    measured (:func:`dtoee.system_model.realised_offloading`), for every policy: a check of
    the queue, link and radio terms whatever rule routed the tasks."""
    from dtoee.network import cached_radio_model
    from dtoee.system_model import (RealisedSplit, delay_model, predicted_figures, prediction_error,
                                    realised_offloading, sample_table, strategies_from_log)

    if system is None and len(scenario.nodes) > PREDICTION_MAX_NODES:
        reason = f"not computed: {len(scenario.nodes)} nodes > {PREDICTION_MAX_NODES} (all-pairs logical links)"
        return _unavailable(reason)
    try:
        system = system or system_from_scenario(scenario, model, ues, figures)
        table = sample_table(model)
    except (ValueError, KeyError) as error:  # e.g. a static policy outside the model's reach
        reason = f"{type(error).__name__}: {error}"
        return _unavailable(reason)

    # radio legs: the run's own radio model (hybrid, analytic) or a cached calibration
    radio = radio_model or (cached_radio_model(scenario) if scenario.radio.enabled else None)
    radio_s = 0.0
    if radio is not None:  # mean uplink + result leg over the tasks' cells, weighted by rate
        total = sum(u.rate_per_s for u in ues) or 1.0
        radio_s = sum(u.rate_per_s * (radio.mean_s("uplink", u.serving_node)
                                      + radio.mean_s("downlink", u.serving_node)) for u in ues) / total
    delays = delay_model(scenario, access_delay_s=radio_s, workload=workload)

    per_task = hasattr(policy, "choose")  # a TaskDispatcher: its routing follows the queues, no fixed split

    def predict(summary: dict, tasks=None, hops=None, policy_rows=None) -> dict:
        """``tasks``, ``hops``: the run's task and hop frames, ``policy_rows``: policy.parquet's
        rows; the accuracy is also predicted on the samples of the tasks the summary measured
        (completed, after the warm-up), each with the strategy in force when it was created."""
        run = {}
        if tasks is not None and "sample" in tasks:
            measured = measured_completed(tasks, scenario.simulation.warmup_s)
            run = {"run_samples": measured["sample"].to_numpy(), "run_created_s": measured["created_s"].to_numpy(),
                   "strategies": strategies_from_log(policy_rows) if policy_rows else None}
        try:
            predicted = predicted_figures(system, policy, table, delays=delays, **run)
            predicted["radio_model_hash"] = radio.config_hash if radio is not None else None
        except (ValueError, KeyError) as error:
            return {"predicted": {"unavailable": f"{type(error).__name__}: {error}"}, "prediction_error": {}}
        realised = None
        if tasks is not None and hops is not None:
            try:  # a split off the model's targets (e.g. re-offloads after a crash) leaves this one out
                split = realised_offloading(system, tasks, hops, scenario.simulation.warmup_s)
                if split:
                    realised = predicted_figures(system, RealisedSplit(policy, split), table, delays=delays)
            except (ValueError, KeyError):
                realised = None
        if per_task:  # the shares of its last period are no model of a queue-aware rule: say so
            for key in DELAY_KEYS:
                predicted[key] = None
            predicted["delay_model"] = ("not predicted: a per-task dispatcher routes on queue reports, not by a "
                                        "fixed split (see predicted_realised_split)")
        out = {"predicted": predicted, "prediction_error": prediction_error(summary, predicted)}
        if realised is not None:
            out["predicted_realised_split"] = {key: realised[key] for key in DELAY_KEYS if key in realised}
            out["prediction_error"]["realised_split_mean_delay_rel"] = prediction_error(summary, realised)["mean_delay_rel"]
        return out

    return predict


def _finite(values: dict) -> dict:
    """NaN (no task measured) as None, as summary.json writes every missing figure."""
    return {k: (None if v is None or math.isnan(v) else v) for k, v in values.items()}


class Terminated(BaseException):
    """SIGTERM arrived during a run (like KeyboardInterrupt for SIGINT)."""


@contextlib.contextmanager
def _signals_stop(network):
    """While the run and its final write last, SIGTERM and SIGINT stop the simulation after
    the event in progress (nothing is raised inside ns-3's loop or inside a write) and are
    recorded in the yielded list; repeated signals change nothing more (main thread only)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum, frame):
        received.append(signum)
        if len(received) == 1:
            network.stop_now()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class _Checkpoints:
    """Every ``every_wall_s`` of wall time, write partial traces, so even a killed run leaves
    readable files marked partial (0 = never).

    The wall clock is read before every task arrival (tasks are what can swamp a run) and by
    an event of its own, for stretches without arrivals: its simulated step follows the
    measured pace (wall seconds per simulated second) so that it runs about every
    ``every_wall_s / 8`` of wall time: step = target / pace, at most 4x the last step,
    between 1 us and horizon / 200.
    """

    def __init__(self, network, horizon_s: float, every_wall_s: float, write) -> None:
        self.network, self.horizon_s, self.every_wall_s, self._write = network, horizon_s, every_wall_s, write
        self.written = self.checked = time.perf_counter()
        self.step_s = min(1e-3, horizon_s / 200)

    def start(self) -> None:
        if self.every_wall_s > 0:
            self.network.call_later(self.step_s, self._check)

    def due(self) -> None:
        """Write if ``every_wall_s`` has passed since the last write."""
        if self.every_wall_s > 0 and time.perf_counter() - self.written >= self.every_wall_s:
            self._write()
            self.written = time.perf_counter()

    def _check(self) -> None:
        pace = (time.perf_counter() - self.checked) / self.step_s  # wall s per simulated s
        self.due()
        wanted_s = self.every_wall_s / 8 / pace if pace > 0 else self.horizon_s
        self.step_s = min(max(wanted_s, 1e-6), 4 * self.step_s, self.horizon_s / 200)
        self.checked = time.perf_counter()
        if self.network.now() + self.step_s < self.horizon_s:
            self.network.call_later(self.step_s, self._check)


def _progress(network, cosim, horizon_s: float):
    from tqdm import tqdm

    bar = tqdm(total=round(horizon_s, 3), unit="sim s", desc="simulating", leave=False,
               bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} sim s [{elapsed}<{remaining}] {postfix}")
    step_s = horizon_s / 100

    def tick() -> None:
        bar.n = round(min(network.now(), horizon_s), 3)
        bar.set_postfix_str(f"tasks {cosim.done}/{len(cosim.tasks)} done", refresh=True)
        if network.now() + step_s <= horizon_s:
            network.call_later(step_s, tick)

    network.call_later(step_s, tick)
    return bar


def _child(scenario: Scenario, out_dir: str, progress: bool, conn) -> None:
    try:
        conn.send(("ok", run_scenario(scenario, out_dir, progress=progress)))
    except BaseException as error:  # noqa: BLE001 - reported to the parent
        conn.send(("error", f"{type(error).__name__}: {error}\n{traceback.format_exc()}"))
    finally:
        conn.close()


class RunFailed(RuntimeError):
    """A simulation child failed; the message carries its traceback."""


def run_isolated(scenario: Scenario, out_dir: str | Path, *, progress: bool = False) -> dict:
    """Run one simulation in a child forked from this process (which may have imported ns-3
    already: the child pays no import and inherits no simulation state)."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(scenario, str(out_dir), progress, sender))
    child.start()
    sender.close()
    try:
        status, payload = receiver.recv()
    except EOFError:
        status, payload = "error", "the simulation child died without a result"
    child.join()
    if status != "ok":
        raise RunFailed(payload)
    return payload
