"""Typed scenario configuration, loaded from TOML and validated before ns-3 is touched.

Every model is frozen and forbids unknown keys. :func:`load_scenario` turns any problem
(unreadable file, bad TOML, unknown key, wrong type, value out of range, inconsistent
topology or policy) into one :class:`ScenarioError` whose message names the field, the value
and what is allowed; the CLI prints it and exits with code 2.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,31}$"
# ns-3 keeps time in signed 64-bit nanoseconds (about 9.2e9 s): every delay scheduled in a run
# (service times, timeouts, periods) and the whole horizon stay far below that, and bit rates
# are whole bits per second (ns-3's DataRate truncates 0.5 bit/s to 0 and then divides by it).
MAX_DELAY_S = 1e6
MIN_RATE_BPS = 1.0
LTE_BANDWIDTHS_RB = (6, 15, 25, 50, 75, 100)
# Downlink EARFCNs in 0..6599 that ns-3 3.44's band table does not know (checked by calling
# LteSpectrumValueHelper::GetDownlinkCarrierFrequency on every value): they would abort ns-3.
EARFCN_GAPS = ((4950, 4999), (5380, 5729))
PATHLOSS_MODELS = {
    "friis": "ns3::FriisPropagationLossModel",
    "log_distance": "ns3::LogDistancePropagationLossModel",
    "three_log_distance": "ns3::ThreeLogDistancePropagationLossModel",
    "cost231": "ns3::Cost231PropagationLossModel",
    "okumura_hata": "ns3::OkumuraHataPropagationLossModel",
}
SCHEDULERS = {
    "pf": "ns3::PfFfMacScheduler",
    "rr": "ns3::RrFfMacScheduler",
    "fdmt": "ns3::FdMtFfMacScheduler",
    "tdmt": "ns3::TdMtFfMacScheduler",
}


class ScenarioError(ValueError):
    """A scenario that cannot run; the message names the field, the value and what is allowed.

    Always one line: control characters from the input are escaped.
    """

    def __init__(self, message: str) -> None:
        super().__init__("".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message)))


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, allow_inf_nan=False)


class SimulationConfig(_Frozen):
    """Time and randomness. One ``seed`` derives ns-3's run number, numpy's and torch's."""

    duration_s: float = Field(20.0, gt=0, le=1e6, description="arrivals are generated in [0, duration_s)")
    drain_s: float = Field(5.0, ge=0, le=1e6, description="extra time for tasks in flight to finish")
    seed: int = Field(1, ge=0, lt=2**31)
    progress: bool = True
    checkpoint_wall_s: float = Field(30.0, ge=0, le=1e6, description="write partial traces this often (wall s); 0 = never")
    warmup_s: float = Field(0.0, ge=0, le=1e6, description="tasks created before this are simulated and traced, "
                            "but left out of the summary's delay, accuracy and exit figures (start-up transient)")
    fidelity: Literal["packet", "hybrid", "analytic"] = Field(
        "packet", description="packet: ns-3 LTE + backhaul; hybrid: ns-3 backhaul, calibrated per-cell radio "
        "delays; analytic: pure-Python discrete-event network, no ns-3 (docs/fidelity.md)")
    radio_calibration_s: float = Field(10.0, gt=1, le=600, description="simulated seconds of the packet-level "
                                       "run that calibrates the radio model of hybrid/analytic (cached)")

    @model_validator(mode="after")
    def _warmup_inside_arrivals(self) -> "SimulationConfig":
        if self.warmup_s >= self.duration_s:
            raise ValueError(f"simulation.warmup_s = {self.warmup_s!r}; allowed: a number >= 0 and below "
                             f"simulation.duration_s = {self.duration_s!r}")
        return self


class ModelConfig(_Frozen):
    """The partitioned multi-exit model and how stages are executed."""

    family: Literal["mlp", "resnet", "vit", "llama"] = "mlp"
    num_stages: int = Field(3, ge=1, le=64)
    mode: Literal["replay", "live"] = "replay"
    train_seed: int = Field(0, ge=0, lt=2**31)
    stage_latency_s: list[float] | None = Field(
        None, description=f"override the measured profile (reproducible across machines); each in (0, {MAX_DELAY_S:g}]"
    )
    service_distribution: Literal["deterministic", "exponential"] = "deterministic"
    activation_dtype: Literal["fp32", "fp16", "int8"] = Field("fp32", description="wire format of offloaded activations")
    large_model: Literal["llama-2-7b", "llama-2-13b", "gpt2-xl", "gpt2", "vit-l-16", "vit-h-14"] | None = Field(
        None, description="take stage latencies, sizes and parameters from this real architecture "
        "(ESTIMATED from its FLOPs and device_flops); exits still come from the trained family; "
        "vit-* see one 224 px image per task (seq_len does not apply)")
    seq_len: int = Field(512, ge=1, le=4096, description="tokens per task, for large_model")
    device_flops: float = Field(1e14, gt=0, le=1e18, description="FLOP/s of a speed_factor-1 server, for large_model")
    roofline_efficiency: float | None = Field(
        None, gt=0, le=1, description="share of a device's fp16 peak reached, for nodes that name a device "
        "(None: inference.devices.ROOFLINE_EFFICIENCY)")

    @model_validator(mode="after")
    def _latencies(self) -> "ModelConfig":
        if self.stage_latency_s is not None:
            if len(self.stage_latency_s) != self.num_stages:
                raise ValueError(
                    f"model.stage_latency_s has {len(self.stage_latency_s)} values; "
                    f"allowed: exactly model.num_stages = {self.num_stages}"
                )
            for k, value in enumerate(self.stage_latency_s):
                if not (0 < value <= MAX_DELAY_S):
                    raise ValueError(f"model.stage_latency_s[{k}] = {value!r}; allowed: a number > 0 and <= {MAX_DELAY_S:g}")
        return self


class RadioConfig(_Frozen):
    """ns-3 LTE/EPC radio access. ``enabled = false`` puts tasks straight onto their node."""

    enabled: bool = True
    bandwidth_rb: int = Field(25, description=f"one of {LTE_BANDWIDTHS_RB}")
    enb_tx_power_dbm: float = Field(30.0, ge=-10, le=50)
    ue_tx_power_dbm: float = Field(23.0, ge=-40, le=30)
    pathloss_model: Literal["friis", "log_distance", "three_log_distance", "cost231", "okumura_hata"] = "log_distance"
    scheduler: Literal["pf", "rr", "fdmt", "tdmt"] = "pf"
    dl_earfcn: int = Field(100, ge=0, le=6599, description="downlink EARFCN (FDD); uplink = dl + 18000")
    access_loss: float = Field(0.0, ge=0, lt=1, description="extra packet loss on every UE <-> server packet "
                               "(on top of the LTE PHY's own SINR-based errors)")
    rlc_mode: Literal["um", "am"] = Field("um", description="RLC of the data bearers: unacknowledged (ns-3's "
                                          "default with EPC) or acknowledged mode (ARQ, as TCP bearers use)")
    rlc_buffer_bytes: int = Field(1 << 20, ge=1024, le=1 << 30, description="RLC transmit buffer per bearer "
                                  "(ns-3's 10 kB default drops most of any upload larger than that)")

    @model_validator(mode="after")
    def _bandwidth(self) -> "RadioConfig":
        if self.bandwidth_rb not in LTE_BANDWIDTHS_RB:
            raise ValueError(f"radio.bandwidth_rb = {self.bandwidth_rb}; allowed: one of {list(LTE_BANDWIDTHS_RB)}")
        if any(low <= self.dl_earfcn <= high for low, high in EARFCN_GAPS):
            raise ValueError(f"radio.dl_earfcn = {self.dl_earfcn}; allowed: an FDD downlink EARFCN in "
                             f"0..6599 outside {EARFCN_GAPS} (ns-3's band table)")
        return self


class LinkConfig(_Frozen):
    """One bidirectional backhaul link between two edge servers."""

    a: str
    b: str
    rate_bps: float | None = Field(None, ge=MIN_RATE_BPS, le=1e12)
    delay_s: float | None = Field(None, ge=0, le=10)
    loss: float | None = Field(None, ge=0, lt=1)


class BackhaulConfig(_Frozen):
    """The graph between edge servers. Defaults apply to links that do not set their own."""

    layout: Literal["full_mesh", "ring", "line", "explicit"] = "full_mesh"
    rate_bps: float = Field(1e9, ge=MIN_RATE_BPS, le=1e12)
    delay_s: float = Field(0.002, ge=0, le=10)
    loss: float = Field(0.0, ge=0, lt=1)
    links: list[LinkConfig] = Field(default_factory=list)
    core_rate_bps: float = Field(10e9, ge=MIN_RATE_BPS, le=1e12, description="server <-> PGW link")
    core_delay_s: float = Field(0.001, ge=0, le=10)


class NodeConfig(_Frozen):
    """A base station with its co-located edge server."""

    name: str = Field(pattern=NAME_PATTERN)
    position_m: tuple[float, float] = (0.0, 0.0)
    speed_factor: float = Field(1.0, gt=0, le=1e6, description="service time = profiled latency / speed_factor")
    servers: int = Field(1, ge=1, le=1024)
    stages: list[int] = Field(min_length=1, description="1-based stages this server hosts")
    queue_capacity: int | None = Field(None, ge=0, le=10**7, description="tasks waiting (not in service); None = unbounded")
    memory_bytes: float | None = Field(None, gt=0, le=1e15, description="server memory for stage parameters + working "
                                       "memory + KV cache (default: the device's memory when a device is named)")
    device: str | None = Field(None, description="a named device of inference/devices.py (e.g. 'l4'): service "
                               "times from its roofline (ESTIMATED), divided by speed_factor")

    @model_validator(mode="after")
    def _device(self) -> "NodeConfig":
        if self.device is not None:
            from inference.devices import DEVICES  # only scenarios that name a device pay the import

            if self.device not in DEVICES:
                raise ValueError(f"device = {self.device!r}; allowed: one of {sorted(DEVICES)}")
        return self


class UeGroupConfig(_Frozen):
    """UEs with Poisson task arrivals; placed around a node or at explicit positions."""

    node: str
    count: int = Field(1, ge=1, le=10000)
    rate_per_s: float = Field(1.0, ge=0, le=1e6, description="Poisson task rate of each UE")
    placement: Literal["around_node", "explicit"] = "around_node"
    radius_m: float = Field(100.0, gt=0, le=1e5)
    positions_m: list[tuple[float, float]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _positions(self) -> "UeGroupConfig":
        if self.placement == "explicit" and len(self.positions_m) != self.count:
            raise ValueError(
                f"ue_groups.positions_m has {len(self.positions_m)} positions; "
                f"allowed: exactly count = {self.count} when placement = 'explicit'"
            )
        return self


POLICY_KINDS = (
    "static", "dtoee", "dtoee-converged", "optimum",
    "static-load-proportional", "static-greedy-sed", "static-no-early-exit", "static-random",
    "dispatch-sed", "dispatch-jsq", "dispatch-po2", "dispatch-sed-tuned",
    # former names of the static baselines (optimizer.registry.ALIASES)
    "fixed-threshold-load-proportional", "fixed-threshold-greedy-sed", "no-early-exit", "random-offloading",
)


class PolicyConfig(_Frozen):
    """Which policy decides offloading and thresholds.

    ``kind = "static"``: ``thresholds[node]`` lists theta_j^k for k = 1..K and
    ``offload[node][stage]`` maps hosts of that stage to x_ij^k. Missing offload entries: run
    locally when the node hosts the stage, else split over its hosts in proportion to their
    speed (load-proportional). ``"dtoee"``: the distributed optimizer, every ``period_s``,
    with its messages on the simulated backhaul. The other kinds are the baselines and the
    centralised optimum of ``optimizer/`` (``optimizer.registry`` lists them). The adaptive
    kinds (``dtoee``, ``dispatch-*``) also probe every idle path each period with a message of
    ``probe_bytes``.

    ``fixed_threshold``: theta wherever no per-node threshold is given: every threshold of the
    fixed-threshold baselines and dispatchers, and the static policy's value for nodes not in
    ``thresholds``. ``default_threshold`` is its deprecated alias (the same field; giving both
    with different values is an error).
    """

    kind: Literal[POLICY_KINDS] = "static"
    w: float = Field(0.5, ge=0, le=1e6, description="seconds of mean delay worth one unit of accuracy")
    period_s: float = Field(1.0, gt=0, le=1e6, description="DTO-EE update period")
    rounds_per_period: int = Field(4, ge=1, le=100, description="DTO-EE message rounds per measurement period "
                                   "(4: within 5% of the oracle sooner, docs/dtoee-online.md)")
    control_message_bytes: int = Field(64, ge=1, le=1 << 20, description=(
        "size of a control message's fixed fields; a DTO-EE report adds 28 bytes per listed "
        "out-flow and 12 per accepted swap (optimizer.dtoee.OUT_FLOW_BYTES, ACCEPTED_BYTES)"))
    probe_bytes: int = Field(64, ge=1, le=1 << 20, description="size of a path probe (adaptive kinds)")
    fixed_threshold: float = Field(0.8, ge=0, le=1, validation_alias=AliasChoices("fixed_threshold", "default_threshold"),
                                   description="theta wherever no per-node threshold is given")
    thresholds: dict[str, list[float]] = Field(default_factory=dict)
    offload: dict[str, dict[str, dict[str, float]]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _one_threshold(cls, data: Any) -> Any:
        if not (isinstance(data, dict) and "fixed_threshold" in data and "default_threshold" in data):
            return data
        if data["fixed_threshold"] == data["default_threshold"]:
            return {key: value for key, value in data.items() if key != "default_threshold"}
        raise ValueError(f"fixed_threshold = {data['fixed_threshold']!r} and default_threshold = "
                         f"{data['default_threshold']!r}: default_threshold is the deprecated name of "
                         "fixed_threshold; give fixed_threshold only")

    @property
    def default_threshold(self) -> float:
        """Deprecated name of :attr:`fixed_threshold`."""
        return self.fixed_threshold


class EventConfig(_Frozen):
    """A change at simulated time ``at_s``.

    * ``kind = "ue_rate"``: every UE of ``ue_groups[ue_group]`` now sends ``rate_per_s``;
    * ``kind = "link_rate"``: the backhaul link ``a``-``b`` now runs at ``rate_bps``;
    * ``kind = "node_speed"``: ``node`` now has ``speed_factor``;
    * ``kind = "node_crash"`` / ``"node_recover"``: ``node``'s server stops / starts again;
    * ``kind = "link_down"`` / ``"link_up"``: backhaul link ``a``-``b`` fails / is repaired.
    """

    at_s: float = Field(ge=0, le=1e6)
    kind: Literal["ue_rate", "link_rate", "node_speed", "node_crash", "node_recover", "link_down", "link_up"]
    ue_group: int | None = Field(None, ge=0)
    rate_per_s: float | None = Field(None, ge=0, le=1e6)
    a: str | None = None
    b: str | None = None
    rate_bps: float | None = Field(None, ge=MIN_RATE_BPS, le=1e12)
    node: str | None = None
    speed_factor: float | None = Field(None, gt=0, le=1e6)

    def required(self) -> tuple[str, ...]:
        return {"ue_rate": ("ue_group", "rate_per_s"), "link_rate": ("a", "b", "rate_bps"),
                "node_speed": ("node", "speed_factor"), "node_crash": ("node",), "node_recover": ("node",),
                "link_down": ("a", "b"), "link_up": ("a", "b")}[self.kind]


class FaultsConfig(_Frozen):
    """What happens to tasks when servers crash or transfers stall (see ``[[events]]``).

    on_crash: "lose" (tasks at a crashed server are lost, reason node_crash) or "reoffload"
        (the node that sent a task there routes it again, avoiding the crashed server, after
        ``reoffload_timeout_s`` from sending it).
    transfer_timeout_s: a message not delivered within this time loses its task (reason
        link_down if a backhaul link on its path was down meanwhile, else timeout).
    """

    on_crash: Literal["lose", "reoffload"] = "lose"
    reoffload_timeout_s: float = Field(0.5, ge=0, le=1e6)
    transfer_timeout_s: float | None = Field(None, gt=0, le=1e6)


class OutputConfig(_Frozen):
    pcap: bool = False
    csv: bool = True


class SizeDistribution(_Frozen):
    """One positive integer per task (bytes or tokens), drawn from a distribution.

    * ``"fixed"``: always ``value``;
    * ``"uniform"``: an integer uniform in [``low``, ``high``];
    * ``"lognormal"``: exp(N(ln ``median``, ``sigma``^2)), rounded, truncated to
      [``low``, ``high``] when given (drawn by inverse CDF inside the bounds: no clipped atoms);
    * ``"empirical"``: one of ``values``, with probabilities ``weights`` (default equal).
    """

    distribution: Literal["fixed", "uniform", "lognormal", "empirical"] = "fixed"
    value: float | None = Field(None, ge=1, le=1e12)
    low: float | None = Field(None, ge=1, le=1e12)
    high: float | None = Field(None, ge=1, le=1e12)
    median: float | None = Field(None, ge=1, le=1e12)
    sigma: float | None = Field(None, gt=0, le=10)
    values: list[float] = Field(default_factory=list)
    weights: list[float] | None = None

    @model_validator(mode="after")
    def _parameters(self) -> "SizeDistribution":
        need = {"fixed": ("value",), "uniform": ("low", "high"), "lognormal": ("median", "sigma"),
                "empirical": ()}[self.distribution]
        for name in need:
            if getattr(self, name) is None:
                raise ValueError(f"{name} is missing; required when distribution = {self.distribution!r}")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"low = {self.low!r} > high = {self.high!r}; allowed: low <= high")
        if self.distribution == "lognormal" and self.low is not None and self.high is not None:
            if not self.low <= self.median <= self.high:
                raise ValueError(f"median = {self.median!r}; allowed: within [low, high] = [{self.low!r}, {self.high!r}]")
        if self.distribution == "empirical":
            if not self.values:
                raise ValueError("values is empty; required (a list of numbers >= 1) when distribution = 'empirical'")
            for k, v in enumerate(self.values):
                if not (1 <= v <= 1e12):
                    raise ValueError(f"values[{k}] = {v!r}; allowed: a number in [1, 1e12]")
            if self.weights is not None:
                if len(self.weights) != len(self.values):
                    raise ValueError(f"weights has {len(self.weights)} entries; allowed: one per value ({len(self.values)})")
                if any(not (w >= 0 and math.isfinite(w)) for w in self.weights) or sum(self.weights) <= 0:
                    raise ValueError(f"weights = {self.weights!r}; allowed: numbers >= 0 with a positive sum")
        return self

    def bounds(self) -> tuple[float, float]:
        """The smallest and largest value a draw can take (inf when unbounded)."""
        if self.distribution == "fixed":
            return self.value, self.value
        if self.distribution == "empirical":
            return min(self.values), max(self.values)
        return (self.low if self.low is not None else 1.0), (self.high if self.high is not None else math.inf)


class WorkloadConfig(_Frozen):
    """What each task carries, drawn per task from its own random stream (``task_sizes``),
    independent of the sample that decides its exits.

    input_bytes: bytes each task uploads (e.g. a JPEG camera frame). For a large decoder it is
        what is uploaded besides the prompt's token ids (e.g. an image); unset: the model's own
        sample (or 4 bytes per prompt token for a decoder).
    prompt_tokens: prompt length per task, for a ``model.large_model`` decoder (replaces
        ``model.seq_len``): the task's token-id bytes, activation bytes (tokens x hidden x
        wire-format bytes) and stage service times follow its own length.
    """

    input_bytes: SizeDistribution | None = None
    prompt_tokens: SizeDistribution | None = None


class Scenario(_Frozen):
    name: str = Field("scenario", pattern=NAME_PATTERN, description="names the default run directory")
    simulation: SimulationConfig = SimulationConfig()
    model: ModelConfig = ModelConfig()
    radio: RadioConfig = RadioConfig()
    backhaul: BackhaulConfig = BackhaulConfig()
    nodes: list[NodeConfig] = Field(min_length=1)
    ue_groups: list[UeGroupConfig] = Field(min_length=1)
    policy: PolicyConfig = PolicyConfig()
    events: list[EventConfig] = Field(default_factory=list)
    faults: FaultsConfig = FaultsConfig()
    output: OutputConfig = OutputConfig()
    workload: WorkloadConfig = WorkloadConfig()

    @model_validator(mode="after")
    def _consistent(self) -> "Scenario":
        names = [node.name for node in self.nodes]
        known = set(names)
        for index, name in enumerate(names):
            if names.index(name) != index:
                raise ValueError(f"nodes[{index}].name = {name!r} is used twice; allowed: unique names")
        num_stages = self.model.num_stages
        for index, node in enumerate(self.nodes):
            for stage in node.stages:
                if not 1 <= stage <= num_stages:
                    raise ValueError(
                        f"nodes[{index}].stages contains {stage}; allowed: 1..model.num_stages = {num_stages}"
                    )
        devices = [i for i, node in enumerate(self.nodes) if node.device is not None]
        if devices and self.model.stage_latency_s is not None:
            raise ValueError(f"nodes[{devices[0]}].device = {self.nodes[devices[0]].device!r} with model.stage_latency_s "
                             "set; allowed: one of them (a device's latency comes from the model's FLOPs and bytes)")
        for stage in range(1, num_stages + 1):
            if not any(stage in node.stages for node in self.nodes):
                raise ValueError(f"nodes[*].stages: no node hosts stage {stage}; allowed: every stage 1..{num_stages} hosted")
        for index, group in enumerate(self.ue_groups):
            if group.node not in known:
                raise ValueError(f"ue_groups[{index}].node = {group.node!r}; allowed: one of {names}")
        for index, link in enumerate(self.backhaul.links):
            for end in ("a", "b"):
                value = getattr(link, end)
                if value not in known:
                    raise ValueError(f"backhaul.links[{index}].{end} = {value!r}; allowed: one of {names}")
            if link.a == link.b:
                raise ValueError(f"backhaul.links[{index}] joins {link.a!r} to itself; allowed: two different nodes")
        if len(self.nodes) > 1 and not _connected(names, backhaul_pairs(self)):
            raise ValueError(
                f"backhaul.layout = {self.backhaul.layout!r} leaves the nodes disconnected; "
                "allowed: a connected graph (add backhaul.links or choose another layout)"
            )
        self._check_policy(names, num_stages)
        self._check_events(names)
        if self.model.stage_latency_s is not None:
            check_service_times(self, self.model.stage_latency_s)
        self._check_workload()
        return self

    def _check_workload(self) -> None:
        tokens = self.workload.prompt_tokens
        if tokens is None:
            return
        if self.model.large_model is None or not self.model.large_model.startswith(("llama", "gpt")):
            raise ValueError(f"workload.prompt_tokens is set but model.large_model = {self.model.large_model!r}; "
                             "allowed: only with a decoder large_model (llama-*, gpt2*)")
        if self.model.stage_latency_s is not None:
            raise ValueError("workload.prompt_tokens: service times follow each task's prompt length; "
                             "allowed: only without model.stage_latency_s")
        low, high = tokens.bounds()
        if high > 4096:
            raise ValueError(f"workload.prompt_tokens can reach {high!r} tokens; allowed: at most 4096 "
                             "(set high, or values, within the model's context)")

    def _check_events(self, names: list[str]) -> None:
        links = {frozenset((a, b)) for a, b, *_ in backhaul_pairs(self)}
        for index, event in enumerate(self.events):
            field = f"events[{index}]"
            for required in event.required():
                if getattr(event, required) is None:
                    raise ValueError(f"{field}.{required} is missing; required when kind = {event.kind!r}")
            if event.kind == "ue_rate" and event.ue_group >= len(self.ue_groups):
                raise ValueError(f"{field}.ue_group = {event.ue_group}; allowed: 0..{len(self.ue_groups) - 1}")
            if event.kind in ("node_speed", "node_crash", "node_recover") and event.node not in names:
                raise ValueError(f"{field}.node = {event.node!r}; allowed: one of {names}")
            if event.kind in ("link_rate", "link_down", "link_up") and frozenset((event.a, event.b)) not in links:
                raise ValueError(f"{field}: no backhaul link {event.a!r}-{event.b!r}; allowed: an existing link")

    def _check_policy(self, names: list[str], num_stages: int) -> None:
        known = set(names)
        for node, values in self.policy.thresholds.items():
            if node not in known:
                raise ValueError(f"policy.thresholds.{node}: unknown node; allowed: one of {names}")
            if len(values) != num_stages:
                raise ValueError(
                    f"policy.thresholds.{node} has {len(values)} values; allowed: exactly {num_stages} (one per stage)"
                )
            for k, value in enumerate(values):
                if not (0.0 <= value <= 1.0):
                    raise ValueError(f"policy.thresholds.{node}[{k}] = {value!r}; allowed: a number in [0, 1]")
        for node, by_stage in self.policy.offload.items():
            if node not in known:
                raise ValueError(f"policy.offload.{node}: unknown node; allowed: one of {names}")
            for stage_key, probabilities in by_stage.items():
                field = f"policy.offload.{node}.{stage_key}"
                if not stage_key.isdigit() or not 1 <= int(stage_key) <= num_stages:
                    raise ValueError(f"{field}: stage {stage_key!r}; allowed: 1..{num_stages}")
                hosts = self.hosts(int(stage_key))
                for host, probability in probabilities.items():
                    if host not in hosts:
                        raise ValueError(f"{field}.{host}: {host!r} does not host stage {stage_key}; allowed: one of {hosts}")
                    if not (0.0 <= probability <= 1.0):
                        raise ValueError(f"{field}.{host} = {probability!r}; allowed: a probability in [0, 1]")
                total = sum(probabilities.values())
                if abs(total - 1.0) > 1e-6:
                    raise ValueError(f"{field} sums to {total:.6g}; allowed: probabilities summing to 1")

    # Derived views (pure functions of the configuration) ---------------------------------
    def hosts(self, stage: int) -> list[str]:
        """H_k: names of the nodes hosting ``stage`` (1-based), in scenario order."""
        return [node.name for node in self.nodes if stage in node.stages]

    def node(self, name: str) -> NodeConfig:
        return next(node for node in self.nodes if node.name == name)

    def content_hash(self) -> str:
        """SHA-256 of the validated scenario (all defaults filled in), first 16 hex digits."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def check_service_times(scenario: Scenario, stage_latency_s: list[float]) -> None:
    """Service time = stage latency / speed_factor (every speed a node has, [[events]]
    included) must stay within ``MAX_DELAY_S`` (ns-3 schedules it in 64-bit nanoseconds)."""
    speeds = [(f"nodes[{i}].speed_factor", node.name, node.speed_factor) for i, node in enumerate(scenario.nodes)]
    speeds += [(f"events[{i}].speed_factor", event.node, event.speed_factor) for i, event in enumerate(scenario.events)
               if event.kind == "node_speed" and event.speed_factor is not None]
    for field, name, speed in speeds:  # event nodes are known: _check_events ran first
        for k in scenario.node(name).stages:
            service_s = stage_latency_s[k - 1] / speed
            if not service_s <= MAX_DELAY_S:
                raise ValueError(f"{field} = {speed!r} makes stage {k}'s service time {stage_latency_s[k - 1]!r} / "
                                 f"{speed!r} = {service_s:.3g} s; allowed: a service time <= {MAX_DELAY_S:g} s "
                                 "(ns-3 keeps time in 64-bit nanoseconds)")


def backhaul_pairs(scenario: Scenario) -> list[tuple[str, str, float, float, float]]:
    """Backhaul links as (a, b, rate_bps, delay_s, loss), from the layout plus explicit links."""
    names = [node.name for node in scenario.nodes]
    bh = scenario.backhaul
    pairs: list[tuple[str, str]] = []
    if bh.layout == "full_mesh":
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    elif bh.layout in ("ring", "line"):
        pairs = list(zip(names, names[1:]))
        if bh.layout == "ring" and len(names) > 2:
            pairs.append((names[-1], names[0]))
    links: dict[frozenset, tuple[str, str, float, float, float]] = {
        frozenset(p): (p[0], p[1], bh.rate_bps, bh.delay_s, bh.loss) for p in pairs
    }
    for link in bh.links:  # explicit links add to the layout or override its defaults
        links[frozenset((link.a, link.b))] = (
            link.a,
            link.b,
            link.rate_bps if link.rate_bps is not None else bh.rate_bps,
            link.delay_s if link.delay_s is not None else bh.delay_s,
            link.loss if link.loss is not None else bh.loss,
        )
    return list(links.values())


def _connected(names: list[str], links: list[tuple]) -> bool:
    import networkx as nx  # here: a ~0.1 s import that commands without a scenario skip

    graph = nx.Graph()
    graph.add_nodes_from(names)
    graph.add_edges_from((a, b) for a, b, *_ in links)
    return nx.is_connected(graph)


# Keys and values of --set and --grid: one parser, one setter ----------------------------

LOAD_KEY = "load"  # shorthand, not a field: multiplies every UE group's rate (and every ue_rate event's)


def parse_value(raw: str) -> Any:
    """A TOML value (``50``, ``1e9``, ``true``, ``"pf"``, ``[1, 2]``); anything that is not
    valid TOML is taken as a plain string (``pf``, ``dtoee``)."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def split_assignment(assignment: str, flag: str = "--set", example: str = "radio.bandwidth_rb=50") -> tuple[str, str]:
    """``"key=raw"`` -> (key, raw text), the key checked: dotted parts, none empty."""
    if "=" not in assignment:
        expected = "key=value" if flag == "--set" else "key=v1,v2,..."
        raise ScenarioError(f"{flag} {assignment!r}: expected {expected}, e.g. {example}")
    key, raw = assignment.split("=", 1)
    key = key.strip()
    if not key or not all(key.split(".")):
        raise ScenarioError(f"{flag} {assignment!r}: empty part in key {key!r}")
    return key, raw


def parse_override(assignment: str) -> tuple[list[str], Any]:
    """``"radio.bandwidth_rb=50"`` -> (["radio", "bandwidth_rb"], 50) (value: :func:`parse_value`)."""
    key, raw = split_assignment(assignment)
    return key.split("."), parse_value(raw)


def scale_load(data: dict, factor: float) -> dict:
    """Multiply every UE group's rate and every ``ue_rate`` event's rate by ``factor``."""
    given = factor
    try:
        factor = float(factor) if not isinstance(factor, bool) else math.nan
    except (TypeError, ValueError):
        factor = math.nan
    if not (factor >= 0 and math.isfinite(factor)):
        raise ScenarioError(f"load = {given!r}; allowed: a finite number >= 0 (multiplies every UE rate)")
    for group in data.get("ue_groups", []):
        group["rate_per_s"] = float(group.get("rate_per_s", 1.0)) * factor
    for event in data.get("events", []):
        if event.get("kind") == "ue_rate" and "rate_per_s" in event:
            event["rate_per_s"] = float(event["rate_per_s"]) * factor
    return data


def set_value(data: dict, key: str | list[str], value: Any, *, context: str | None = None) -> dict:
    """Set a dotted ``key`` of a scenario dict to ``value`` (the rules of ``--set`` and ``--grid``):

    * ``load`` scales every UE rate (:func:`scale_load`);
    * a number indexes a list (``nodes.0.speed_factor``); a ``*`` stands for every item of a
      list (``ue_groups.*.rate_per_s``);
    * a missing table is created (``policy.thresholds.bs0``).

    ``context`` starts error messages (default ``--set KEY``)."""
    path = key.split(".") if isinstance(key, str) else list(key)
    dotted = ".".join(path)
    context = context or f"--set {dotted!r}"
    if path == [LOAD_KEY]:
        return scale_load(data, value)
    if "*" in path:
        star = path.index("*")
        prefix = path[:star]
        target: Any = data
        for part in prefix:
            target = target[int(part)] if isinstance(target, list) and part.isdigit() and int(part) < len(target) \
                else target.get(part) if isinstance(target, dict) else None
            if target is None:
                break
        if not isinstance(target, list):
            raise ScenarioError(f"{context}: {'.'.join(prefix)} is not a list; '*' stands for every item of a list")
        for index in range(len(target)):
            set_value(data, [*prefix, str(index), *path[star + 1:]], value, context=context)
        return data
    target = data
    for depth, part in enumerate(path[:-1]):
        where = ".".join(path[: depth + 1])
        if isinstance(target, list):
            if not part.isdigit() or int(part) >= len(target):
                raise ScenarioError(f"{context}: {where} is not an index of a list of {len(target)}")
            target = target[int(part)]
        elif isinstance(target, dict):
            target = target.setdefault(part, {})
        else:
            raise ScenarioError(f"{context}: {where} is not a table")
    last = path[-1]
    value = copy.deepcopy(value)  # the same grid value goes into many runs: never share it
    if isinstance(target, list):
        if not last.isdigit() or int(last) >= len(target):
            raise ScenarioError(f"{context}: {last} is not an index of a list of {len(target)}")
        target[int(last)] = value
    elif isinstance(target, dict):
        target[last] = value
    else:
        raise ScenarioError(f"{context}: cannot set {last!r} inside a {type(target).__name__}")
    return data


def apply_overrides(data: dict, assignments: list[str]) -> dict:
    """Apply ``--set key=value`` assignments in order (:func:`parse_override`, :func:`set_value`)."""
    for assignment in assignments:
        path, value = parse_override(assignment)
        set_value(data, path, value, context=f"--set {assignment!r}")
    return data


def read_toml(path: str | Path) -> dict:
    """The TOML file as a dict; :class:`ScenarioError` if unreadable or not TOML."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))  # a byte-order mark is allowed
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(f"scenario file {str(path)!r} cannot be read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"scenario file {str(path)!r} is not valid TOML: {error}") from None


def _location(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "scenario"


def _allowed_keys(loc: tuple) -> list[str] | None:
    """Field names allowed at ``loc`` (for unknown-key messages)."""
    model: Any = Scenario
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return None
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        model = next((a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return None
    return sorted(model.model_fields)


def format_validation_error(error: ValidationError) -> str:
    """One line for the first problem: field, value, what is allowed."""
    first = error.errors()[0]
    loc = tuple(first.get("loc", ()))
    where = _location(loc)
    value = first.get("input")
    kind = first.get("type", "")
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc)
        allowed_text = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        return f"{where}: unknown key{allowed_text}"
    if kind == "value_error":
        # Our own cross-field checks already name field, value and what is allowed.
        message = str(first.get("ctx", {}).get("error", first.get("msg", "")))
        return message if where == "scenario" else f"{where}: {message}"
    if kind == "missing":
        return f"{where}: required key is missing"
    return f"{where} = {value!r}: {first.get('msg')}"


def scenario_from_dict(data: dict) -> Scenario:
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(format_validation_error(error)) from None


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Read, override (``--set``) and validate a TOML scenario; raise :class:`ScenarioError`."""
    return scenario_from_dict(apply_overrides(read_toml(path), overrides or []))
