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
import signal
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

from dtoee.analysis import delay_breakdown
from dtoee.config import Scenario, ScenarioError
from dtoee.cosim import CoSimulation, FaultHandling, NodeState
from dtoee.execution import LiveExecutor, ReplayExecutor
from dtoee.control import POLICY_COLUMNS, ControlPlane, PolicyLog
from dtoee.policies import build_policy, is_adaptive
from dtoee.system_model import system_from_scenario
from dtoee.seeding import numpy_streams, torch_seed
from dtoee.trace import Trace, hops_frame, summarize, tasks_frame, write_outputs
from dtoee.workload import Workload
from ns3_glue.network import Ns3Network, UePlacement


def place_ues(scenario: Scenario, rng: np.random.Generator) -> list[UePlacement]:
    """UE positions (around their group's node, uniform in a disk, or explicit); each UE is
    served by its nearest base station (by the group's node when radio is off)."""
    placements = []
    for group in scenario.ue_groups:
        centre = scenario.node(group.node).position_m
        for n in range(group.count):
            if group.placement == "explicit":
                position = tuple(group.positions_m[n])
            else:
                radius = group.radius_m * math.sqrt(rng.random())
                angle = 2 * math.pi * rng.random()
                position = (centre[0] + radius * math.cos(angle), centre[1] + radius * math.sin(angle))
            if scenario.radio.enabled:
                serving = min(scenario.nodes, key=lambda node: (math.dist(node.position_m, position), node.name)).name
            else:
                serving = group.node
            placements.append(UePlacement(len(placements), position, serving, group.rate_per_s))
    return placements


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


def _large_profile(config, seq_len: int):
    from inference import large_model_profile

    return large_model_profile(config.large_model, config.num_stages, config.device_flops, seq_len=seq_len,
                               wire_dtype=config.activation_dtype)


def stage_figures(scenario: Scenario, model) -> StageFigures:
    """The model's figures at ``model.seq_len`` tokens (for a large decoder), each node's
    service times, and the memory a task in service holds at the longest prompt the
    workload can draw (the memory check's worst case)."""
    config = scenario.model
    field = _WIRE_FIELD[config.activation_dtype]
    if config.large_model is not None:
        from inference.devices import decoder_stage_costs

        profile = _large_profile(config, config.seq_len)
        input_bytes, estimated = 4 * config.seq_len, True  # int32 token ids
        longest = int(scenario.workload.prompt_tokens.bounds()[1]) if scenario.workload.prompt_tokens else config.seq_len
        worst = decoder_stage_costs(config.large_model, config.num_stages, min(longest, 4096))
        working, kv = [c.working_bytes for c in worst], [c.kv_cache_bytes for c in worst]
    else:
        profile, input_bytes, estimated = model.profile, model.input_bytes, False
        working, kv = None, [0] * len(profile)
    activation = [int(getattr(p, field)) for p in profile]
    if working is None:  # the largest activation in or out of the stage, one task at a time
        working = [max(input_bytes if k == 0 else activation[k - 1], activation[k]) for k in range(len(profile))]
    latency = list(config.stage_latency_s or [p.latency_s for p in profile])
    node_latency = node_stage_latencies_s(scenario, config.seq_len, latency, None if config.large_model else profile,
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


def run_scenario(scenario: Scenario, out_dir: str | Path, *, progress: bool | None = None) -> dict:
    """Run ``scenario`` and write tasks/hops/summary into ``out_dir``; return the summary.

    If the run fails or is interrupted midway, the traces of everything up to then are still
    written, with ``summary["partial"] = True`` and the reason, and the error is re-raised.
    """
    import torch

    torch.set_num_threads(1)  # fork-safe, and 1 thread per simulation is right on 2 cores
    torch.manual_seed(torch_seed(scenario.simulation.seed))
    out_dir = Path(out_dir)
    wall_start = time.perf_counter()
    model = load_model(scenario)
    figures = stage_figures(scenario, model)
    check_memory(scenario, figures)
    executor = (LiveExecutor if scenario.model.mode == "live" else ReplayExecutor)(model, figures)
    workload = build_workload(scenario, figures)
    figures = mean_figures(figures, workload)  # what the policies plan with
    latencies = figures.node_latency_s
    total_ues = sum(group.count for group in scenario.ue_groups)
    rngs = numpy_streams(scenario.simulation.seed, total_ues)
    ues = place_ues(scenario, rngs["placement"])
    pcap_dir = out_dir / "pcap" if scenario.output.pcap else None
    system = system_from_scenario(scenario, model, ues, figures) if scenario.policy.kind != "static" else None
    policy = build_policy(scenario, system)
    network = Ns3Network(scenario, ues, pcap_dir)
    nodes = [NodeState(n.name, n.servers, n.speed_factor, n.queue_capacity) for n in scenario.nodes]
    trace = Trace()
    faults = FaultHandling(scenario.faults.on_crash, scenario.faults.reoffload_timeout_s,
                           scenario.faults.transfer_timeout_s)
    cosim = CoSimulation(
        network=network, executor=executor, policy=policy, nodes=nodes, ues=ues,
        stage_latency_s=latencies, exponential_service=scenario.model.service_distribution == "exponential",
        duration_s=scenario.simulation.duration_s, rngs=rngs, trace=trace, faults=faults, workload=workload,
    )
    ue_distance_m = {ue.index: math.dist(ue.position_m, scenario.node(ue.serving_node).position_m) for ue in ues}
    policy_log = PolicyLog()
    control = ControlPlane(cosim=cosim, policy=policy, scenario=scenario, stage_latency_s=latencies,
                           network=network, policy_log=policy_log, adaptive=is_adaptive(policy))
    cosim.path_was_down = control.path_was_down  # needs the event history
    horizon_s = scenario.simulation.duration_s + scenario.simulation.drain_s
    cosim.start()
    control.start()
    show = scenario.simulation.progress if progress is None else progress
    bar = _progress(network, cosim, horizon_s) if show else None
    setup_wall_s = time.perf_counter() - wall_start
    run_started = time.perf_counter()

    def write(partial_reason: str | None) -> dict:
        """Summarise and write everything simulated so far (each file replaced atomically)."""
        reached_s = network.now()
        tasks = tasks_frame(cosim.tasks, ue_distance_m)
        hops = hops_frame(trace)
        breakdown = delay_breakdown(hops, tasks, scenario.simulation.warmup_s)
        summary = summarize(
            tasks, {n.name: n.busy_time_s for n in nodes}, {n.name: n.servers for n in nodes},
            max(reached_s, 1e-12), scenario.model.num_stages, measured_from_s=scenario.simulation.warmup_s,
            scenario=scenario.name, scenario_hash=scenario.content_hash(), seed=scenario.simulation.seed,
            model=model.name, mode=scenario.model.mode, stage_latency_s=figures.latency_s,
            stage_latency_by_node_s=latencies, devices=figures.devices,
            large_model=scenario.model.large_model, stage_figures_estimated=figures.estimated,
            activation_bytes=figures.activation_bytes,
            max_queue_length_by_node={n.name: n.max_queue_length for n in nodes},
            policy=scenario.policy.kind, control_messages_sent=control.messages_sent,
            control_messages_delivered=control.messages_delivered,
            simulated_s=reached_s, horizon_s=horizon_s, wall_s=time.perf_counter() - wall_start,
            setup_wall_s=setup_wall_s, run_wall_s=time.perf_counter() - run_started,
            forward_wall_s=executor.forward_time_s, python_callback_wall_s=network.python_callback_wall_s,
            python_callbacks=network.python_callbacks,
            partial=partial_reason is not None, partial_reason=partial_reason,
            delay_breakdown_s=_finite(breakdown["mean_s"]), delay_breakdown_share=_finite(breakdown["share"]),
        )
        write_outputs(out_dir, tasks, hops, summary, csv=scenario.output.csv,
                      policy=pd.DataFrame(policy_log.rows, columns=POLICY_COLUMNS))
        return summary

    _checkpoints(network, horizon_s, scenario.simulation.checkpoint_wall_s,
                 lambda: write("checkpoint: the run was still in progress when this was written"))
    error: BaseException | None = None
    try:
        with _sigterm_raises():
            network.run(horizon_s)
    except BaseException as caught:  # interrupted or failed: keep what was simulated
        error = caught
    finally:
        if bar is not None:
            bar.close()
    summary = write(None if error is None else f"{type(error).__name__}: {error}")
    network.close()
    if error is not None:
        raise error
    return summary


def _finite(values: dict) -> dict:
    """NaN (no task measured) as None, as summary.json writes every missing figure."""
    return {k: (None if v is None or math.isnan(v) else v) for k, v in values.items()}


class Terminated(BaseException):
    """SIGTERM arrived during a run (like KeyboardInterrupt for SIGINT)."""


@contextlib.contextmanager
def _sigterm_raises():
    """Turn SIGTERM into a Terminated exception inside the run (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated("SIGTERM")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _checkpoints(network, horizon_s: float, every_wall_s: float, write) -> None:
    """Every ``every_wall_s`` of wall time (checked 200 times per run), write partial traces,
    so even a killed run leaves readable files marked partial."""
    if every_wall_s <= 0:
        return
    step_s = horizon_s / 200
    last = [time.perf_counter()]

    def check() -> None:
        if time.perf_counter() - last[0] >= every_wall_s:
            write()
            last[0] = time.perf_counter()
        if network.now() + step_s < horizon_s:
            network.call_later(step_s, check)

    network.call_later(step_s, check)


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
