"""DTO-EE as per-node agents: DTO-R (receivers) and DTO-O (offloaders).

The problem (see :mod:`optimizer.system`, :mod:`optimizer.centralized`)::

    min_{x, theta}  J = D(x, theta) - w A(x, theta)
    s.t.  x_i^k in the simplex over the stage-k hosts i reaches,  theta_j^k in [0, 1],
          rho_j < 1,  u_ij < 1      (capacity; exterior-point penalty, below)

is convex in the flows ``f_ij^k = phi_i^k x_ij^k`` and continuing flows ``g_j^k =
Lambda_j^k (1 - e_k(theta_j^k))``. Each node agent holds only its own variables (its
outgoing offloading probabilities per stage, its exit thresholds, kept as exit shares
``e_j^k``), its local measurements (Lambda_j^k, phi_j^k, mu_j^k, its outgoing links) and the
last reports its downstream neighbours sent it. One round:

1. **DTO-R** (every host j of stage k, stages K..1): from its queue and the reports of its
   own stage-(k+1) hosts it computes (see :mod:`optimizer.marginals`)::

       delta_j^k = N_r'(rho_j)/mu_j^k - w A_k(e_j^k) + (1 - e_j^k) Delta_j^{k+1}
       h_j^k     = N_r''(rho_j)/mu_j^k^2 + (1 - e_j^k)^2 H_j^{k+1}

   and sends ``(delta_j^k, h_j^k, n_j^k, headroom, out-flows)`` to each node that may
   offload stage k to it. ``n_j^k`` = number of such senders: a Jacobi safeguard (the
   offloader uses ``n_j^k h_j^k`` as the curvature), so simultaneous steps of all senders
   together make about one Newton step at j; ``headroom`` = spare rate up to ``rho_bar``,
   shared among the nodes that can send j work of any stage it hosts (a stage no node can
   send to j counts none: counted as one, as in ``n_j^k``, it kept part of the spare
   unoffered, which near saturation made the warm-up crawl), and never more than ``1 / (1 - e_j^k)``
   times the room its own stage-(k+1) hosts reported to it (more stage-k work at j is
   ``(1 - e_j^k)`` as much more stage-(k+1) work downstream: without this bound the stages
   overshoot one after the other); ``out-flows`` = ``(l, f_jl^k, l_jl^k, l''_jl^k)`` for
   the hosts l that j itself sends stage-k work to (for the transit swaps, 2a), and the
   part of the recipient's last swap offers that j accepted. (H_j^{k+1} is built from the
   raw h of the hosts j sends to.)
2. **DTO-O** (every offloader i of stage k), in three parts:

   a. *Exchange cancellation.* If i sends stage-k flow to j while j sends stage-k flow back
      (j's report carries ``f_ji^k``), both keep ``c = min(f_ij^k, f_ji^k)`` local. The pair
      of moves leaves every node load unchanged and lowers both link flows, so J falls by
      at least ``c (p_ij + p_ji)`` whatever the queues' curvature. This is the direction the
      diagonal step below cannot see: near saturation the node terms dominate each path's
      curvature, so a per-path Newton step moves a circulation by ``l / (h_i + h_j)`` per
      round (h ~ 2/(1 - rho)^3), which is what stalled DTO-EE at high load.

      *Transit swaps* (the same direction through three hosts: i -> j while j -> l of the
      same stage, which includes every cycle i -> j -> l -> i). If i also reaches l, moving
      c from i->j to i->l while j keeps c of its own flow to l local leaves every node load
      unchanged and changes only link flows; J_r's derivative along it is
      ``d1 = l_il - l_ij - l_jl`` and its curvature ``d2 = l''_il + l''_ij + l''_jl`` (link
      terms only: the node terms cancel exactly). When d1 < 0, i offers j (``dtoee/swap``)
      the 1-D Newton step ``c = -d1 / d2``, capped by f_ij^k (over all its offers), f_jl^k and
      the room on link i->l up to rho_bar; next round j accepts, per l, at most f_jl^k less
      the flow l sends back to j (left to the exchange cancellation), scaled down in
      proportion when several offerers ask for the same flow, and says so in its reports;
      both sides then move the accepted amount in the same round. (Online, where the
      offerer acts one period after j, j accepts only within its own spare.)
   b. *Scaled projected-gradient step* on its own outgoing flows, with path marginals
      ``a_j = l_ij^k + delta_j^k`` and curvatures ``H_j = m_i l''_ij^k + sqrt(n_j) h_j^k``
      (exact solve of the diagonal Newton model on the capped simplex,
      :func:`optimizer.marginals.scaled_simplex_step`)::

          f_i^k+ = argmin_{f in phi_i^k Simplex, f_j <= U_j}
                   a.(f - f_i^k) + 1/2 (f - f_i^k)' diag(H) (f - f_i^k)
          x_i^k  = P_U[ x_i^k + beta (f_i^k+ / phi_i^k - x_i^k) + m v_i^k ]

      (``m_i`` = number of stages i sends over that link; ``sqrt(n_j)``: a softened Jacobi
      factor for the n_j senders moving at once, ``n_j ** jacobi_power``; online
      (:class:`DtoeePolicy`) the full ``n_j``, where the marginals are noisy; ``beta`` adapted locally: halved when a step
      reverses the previous one, grown by ``step_growth`` (1.5x in memory, 1.1x online, where
      gradients are noisy) otherwise; ``v_i^k`` the node's own last move,
      heavy-ball momentum ``m = 0.8`` dropped after a reversal; ``P_U`` the projection on
      the capped simplex). Caps ``U_j``: ``f_ij^k + headroom_j`` normally; when host j is
      past ``rho_bar`` it asks every sender to cut its flow by the share
      ``1 - rho_bar/rho_j`` (``shed_share``), and a link past ``rho_bar`` (i is its only
      sender) is cut to ``rho_bar`` by i; a sender that cannot place its cut within its
      share of the other hosts' headroom may fill their whole spare rate (``spare_per_s``;
      an overshoot there is shed in turn next round); what still finds no room is cut in
      the same share everywhere (a link's cut first).
   c. every host j of stage k < K moves its exit share by an exact 1-D proximal Newton
      step on ``-w A_k(e) + (1 - e) Delta_j^{k+1}`` with the raw downstream curvature
      ``H_j^{k+1}`` (one actor: the Jacobi factor belongs to the offloading step; with it
      the exit shares crawled near saturation) (the threshold is set where the marginal
      delay saved by exiting equals w times the marginal accuracy lost), damped by its own
      adaptive beta, never below the share that keeps its continuing flow within the
      downstream hosts' headroom (or their shed), then reads ``theta_j^k = e_k^{-1}(e_j^k)``.

Capacity constraints: queues are costed with the exterior-point penalty
``N_r`` (:class:`optimizer.queueing.PenalizedQueue`), ``r`` multiplied by
``penalty_growth`` every ``penalty_period`` rounds (each agent counts its own rounds).

What the update guarantees, and under which assumptions:

* always: each ``x_i^k`` is a probability distribution and each threshold lies in [0, 1]
  after every round (every step is a projection on the simplex / a clip to [E0, 1]);
* part (a) never raises J when both sides act on the same round's numbers (synchronous
  rounds; in the co-simulation only reports from the last period are used). A transit
  swap keeps every node load exactly (both sides move the amount j accepted, in the same
  in-memory round) and is a Newton step on J_r restricted to that direction, whose only
  curvature is the three links': a descent step whenever the link model holds along it
  (links below rho_bar, which the cap on i->l keeps); several swaps and the step (b) in
  the same round are not jointly guaranteed to descend (a safeguard, not a proof);
* part (b) is a descent step for J_r (the penalised objective, convex in the flows) for one
  offloader moving alone with exact marginals: the diagonal model with the exact path
  second derivatives majorises J_r along the step as long as the queues stay below
  rho_bar; simultaneous moves of several offloaders are kept in check by the Jacobi factor
  and the reversal-halved beta, a safeguard, not a proof. The fixed points are Gallager's
  optimality conditions (every offloader sends only to hosts of least marginal cost, every
  exit share minimises its 1-D problem), which are sufficient for the optimum of J_r;
* feasibility: a host or link past ``rho_bar`` is brought back to ``rho_bar`` in one
  round whenever the other hosts the senders can reach have that much room (measured
  load = actual load); the warm-up from the capacity-proportional start may overload for a
  few rounds. Not guaranteed in general: when an overloaded host's own work can only go to
  hosts that are full, it stays overloaded until their other senders move on, each within
  its share of the spare of the hosts it reaches (the headroom), so at worst by ordinary
  gradient steps. Measured, not proved: on the 68-instance acceptance set no node or link
  is overloaded after round 5 (``tests/optimizer/test_dtoee.py``, docs/benchmarks.md);
  the one instance that was (high_load seed 14, rounds 6-8) needed the headroom shared
  among the nodes that really can send a host work (``headroom_real_senders``).

:func:`run_in_memory` runs synchronous rounds over an in-memory exchange; :class:`DtoeePolicy`
runs the same agents inside the co-simulation, one step per node every ``period_s``, from
:class:`~optimizer.policy.NodeMeasurements` and :class:`~optimizer.policy.ControlMessage`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

import numpy as np

from optimizer.exit_curves import exit_share_at, threshold_for_exit_share
from optimizer.marginals import (
    MIN_CURVATURE,
    best_exit_share,
    link_marginal,
    node_marginal,
    receiver_marginal,
    scaled_simplex_step,
)
from optimizer.policy import ControlMessage, NodeMeasurements
from optimizer.queueing import PenalizedQueue
from optimizer.system import NodeName, SystemModel, evaluate_exit_shares, propagate

MESSAGE_KIND = "dtoee/marginal"
SWAP_KIND = "dtoee/swap"  # offloader -> host: a transit-swap offer (NodeAgent._offer_swaps)
FLOW_KIND = "dtoee/flow"  # offloader -> host: its stage-k flow to the host (rounds_per_period > 1)
#: wire bytes of one entry a report lists: a node index (4 bytes) and its float64 figures
OUT_FLOW_BYTES = 4 + 3 * 8  # (l, f_jl^k, l_jl^k, l''_jl^k)
ACCEPTED_BYTES = 4 + 8  # (l, c)
_EPS_FLOW = 1e-12
ADMIT_MARGIN = 0.9  # admission cuts to this share of what the stage-1 hosts can take (drains the backlog)
ADMIT_STEP = 0.05   # largest rise of an admitted share per period (additive increase)
BACKLOG_KIND = "dtoee/backlog"  # stage-1 host -> its senders: the time to serve the tasks it holds
BACKLOG_S = 0.5     # a stage-1 host holding more than this much work tells its senders


@dataclass(frozen=True)
class DtoeeConfig:
    """Tuning of the agents (defaults are what the acceptance tests use).

    step: beta_max in (0, 1], the largest damping factor of a step (offloading and exit share).
    min_step: beta_min, the smallest one. Each agent adapts its own beta per stage: halved
        when its step reverses the previous one (negative inner product: an oscillation),
        grown by ``step_growth`` otherwise (a local, message-free safeguard).
    initial_step: beta of an agent's first steps (cautious start; grows to ``step``).
    rho_bar: utilisation where the capacity penalty starts.
    penalty_start, penalty_growth, penalty_period: exterior-penalty weight r schedule.
    initial_threshold: theta at start (every host, k < K).
    start: "capacity" (x_ij^k proportional to mu_j^k) or "local" (run here when possible).
    zero_flow_step: share moved toward the cheapest host by an offloader with no flow.
    early_exit: False freezes every threshold at 1 (no early exit) and only routes.
    max_report_age_s: reports older than this are ignored (DtoeePolicy); None = 3 periods.
    cancel_exchanges: cancel two-way exchanges of the same stage's work between two hosts
        (:meth:`NodeAgent._cancel_exchange`); False only to measure what it buys.
    transit_swaps: offer and accept transit swaps (:meth:`NodeAgent._offer_swaps`); False
        only to measure what they buy.
    downstream_headroom: a host's headroom is bounded by its downstream hosts' room divided
        by its continuing share (False only to measure what it buys).
    headroom_real_senders: a host shares its spare rate among the nodes that can send it
        work (False: every hosted stage counts at least one sender, as n_j^k does, even one
        that no node can send to; only to measure what it buys).
    shed_into_spare: a sender shedding an overloaded host may fill the other hosts' whole
        spare rate (not only its per-sender share of it).
    momentum: heavy-ball weight m of an offloader's own last move (0 = none); dropped for a
        round after a reversal.
    jacobi_power: the offloader scales a host's curvature h_j by n_j ** jacobi_power
        (n_j senders; 1 = full Jacobi safeguard, 0 = none).
    """

    step: float = 1.0
    min_step: float = 0.05
    initial_step: float = 1.0
    step_growth: float = 1.5
    rho_bar: float = 0.99
    penalty_start: float = 1.0
    penalty_growth: float = 10.0
    penalty_period: int = 50
    initial_threshold: float = 0.8
    start: str = "capacity"
    zero_flow_step: float = 0.5
    early_exit: bool = True
    max_report_age_s: float | None = None
    cancel_exchanges: bool = True
    transit_swaps: bool = True
    downstream_headroom: bool = True
    headroom_real_senders: bool = True
    momentum: float = 0.8
    shed_into_spare: bool = True
    jacobi_power: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.step <= 1:
            raise ValueError(f"step must lie in (0, 1], got {self.step!r}")
        if not 0 < self.min_step <= self.step:
            raise ValueError(f"min_step must lie in (0, step], got {self.min_step!r}")
        if not self.min_step <= self.initial_step <= self.step:
            raise ValueError(f"initial_step must lie in [min_step, step], got {self.initial_step!r}")
        if not self.step_growth >= 1:
            raise ValueError(f"step_growth must be >= 1, got {self.step_growth!r}")
        if not 0 < self.rho_bar < 1:
            raise ValueError(f"rho_bar must lie in (0, 1), got {self.rho_bar!r}")
        if self.penalty_start < 0 or self.penalty_growth < 1 or self.penalty_period < 1:
            raise ValueError(
                "need penalty_start >= 0, penalty_growth >= 1, penalty_period >= 1, got "
                f"{self.penalty_start!r}, {self.penalty_growth!r}, {self.penalty_period!r}"
            )
        if not 0 <= self.initial_threshold <= 1:
            raise ValueError(f"initial_threshold must lie in [0, 1], got {self.initial_threshold!r}")
        if self.start not in ("capacity", "local"):
            raise ValueError(f"start must be 'capacity' or 'local', got {self.start!r}")
        if not 0 < self.zero_flow_step <= 1:
            raise ValueError(f"zero_flow_step must lie in (0, 1], got {self.zero_flow_step!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum!r}")
        if not 0 <= self.jacobi_power <= 1:
            raise ValueError(f"jacobi_power must lie in [0, 1], got {self.jacobi_power!r}")
        if self.max_report_age_s is not None and not self.max_report_age_s > 0:
            raise ValueError(f"max_report_age_s must be > 0, got {self.max_report_age_s!r}")

    def penalty(self, round_index: int) -> float:
        """r at a given round: penalty_start * penalty_growth ** (round // penalty_period)."""
        return self.penalty_start * self.penalty_growth ** min(round_index // self.penalty_period, 12)


@dataclass(frozen=True)
class ReceiverReport:
    """DTO-R message from host ``src`` about stage ``stage`` (what goes upstream).

    marginal_s: delta_j^k; curvature: h_j^k; senders: n_j^k (the offloader scales h by it);
    headroom_per_s: spare stage-k rate per sender; sent_s: time it was computed;
    reverse_flow_per_s: f_ji^k, the stage-k flow ``src`` itself sends to the recipient (so the
    two can cancel a two-way exchange of the same work, see :meth:`NodeAgent.update`);
    shed_share: ``1 - rho_bar / rho_j`` when the host is past ``rho_bar`` (else 0): every sender
    cuts its flow to it by this share, which brings rho_j back to rho_bar in one round;
    spare_per_s: the host's whole spare stage-k rate up to rho_bar (what a sender shedding
    an overloaded host may use when the per-sender headroom is not enough).
    out_flows: ``(l, f_jl^k, l_jl^k, l''_jl^k)`` per host l that ``src`` sends its own stage-k
    work to (flow, link marginal, link curvature: what a transit swap needs);
    accepted: ``(l, c)``: the part of the recipient's last swap offers ``src`` accepted.
    """

    src: NodeName
    stage: int
    marginal_s: float
    curvature: float
    senders: int
    headroom_per_s: float
    sent_s: float
    reverse_flow_per_s: float = 0.0
    shed_share: float = 0.0
    spare_per_s: float = 0.0
    out_flows: tuple[tuple[NodeName, float, float, float], ...] = ()
    accepted: tuple[tuple[NodeName, float], ...] = ()

    def to_payload(self) -> dict[str, Any]:
        return {
            "kind": MESSAGE_KIND,
            "stage": self.stage,
            "delta_s": self.marginal_s,
            "curv": self.curvature,
            "n": self.senders,
            "headroom": self.headroom_per_s,
            "sent_s": self.sent_s,
            "back": self.reverse_flow_per_s,
            "shed": self.shed_share,
            "spare": self.spare_per_s,
            "out": [list(v) for v in self.out_flows],
            "acc": [list(v) for v in self.accepted],
        }

    @classmethod
    def from_payload(cls, src: NodeName, payload: Mapping[str, Any]) -> "ReceiverReport | None":
        """Parse a payload; None if it is not a well-formed DTO-EE report."""
        try:
            if payload.get("kind") != MESSAGE_KIND:
                return None
            report = cls(
                src=src,
                stage=int(payload["stage"]),
                marginal_s=float(payload["delta_s"]),
                curvature=float(payload["curv"]),
                senders=max(1, int(payload.get("n", 1))),
                headroom_per_s=float(payload["headroom"]),
                sent_s=float(payload["sent_s"]),
                reverse_flow_per_s=max(0.0, float(payload.get("back", 0.0))),
                shed_share=min(1.0, max(0.0, float(payload.get("shed", 0.0)))),
                spare_per_s=max(0.0, float(payload.get("spare", 0.0))),
                out_flows=tuple((str(l), float(f), float(a), float(h)) for l, f, a, h in payload.get("out", ())),
                accepted=tuple((str(l), float(c)) for l, c in payload.get("acc", ())),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        values = (report.marginal_s, report.curvature, report.sent_s, report.reverse_flow_per_s,
                  *(v for o in report.out_flows for v in o[1:]), *(c for _, c in report.accepted))
        if not all(math.isfinite(v) for v in values):
            return None
        return report


@dataclass(frozen=True)
class SwapOffer:
    """Transit-swap offer from offloader ``src`` to host ``dst`` (see NodeAgent._offer_swaps):
    ``src`` would move ``flow_per_s`` of its stage-``stage`` flow from ``dst`` straight to
    ``via`` if ``dst`` keeps as much of its own flow to ``via`` local."""

    src: NodeName
    dst: NodeName
    stage: int
    via: NodeName
    flow_per_s: float
    sent_s: float

    def to_payload(self) -> dict[str, Any]:
        return {"kind": SWAP_KIND, "stage": self.stage, "via": self.via, "flow": self.flow_per_s, "sent_s": self.sent_s}

    @classmethod
    def from_payload(cls, src: NodeName, dst: NodeName, payload: Mapping[str, Any]) -> "SwapOffer | None":
        try:
            if payload.get("kind") != SWAP_KIND:
                return None
            offer = cls(src, dst, int(payload["stage"]), str(payload["via"]), float(payload["flow"]),
                        float(payload["sent_s"]))
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        return offer if math.isfinite(offer.flow_per_s) and math.isfinite(offer.sent_s) else None


@dataclass
class LocalObservation:
    """What node i knows about itself this round (measured, never read from others).

    arrival_per_s: {k: Lambda_i^k}; demand_per_s: {k: phi_i^k}; service_rate_per_s:
    {k: mu_i^k}; capacity_bytes_per_s / propagation_s: {neighbour: C_ij, p_ij}.
    """

    arrival_per_s: dict[int, float] = field(default_factory=dict)
    demand_per_s: dict[int, float] = field(default_factory=dict)
    service_rate_per_s: dict[int, float] = field(default_factory=dict)
    capacity_bytes_per_s: dict[NodeName, float] = field(default_factory=dict)
    propagation_s: dict[NodeName, float] = field(default_factory=dict)


class NodeAgent:
    """One node's DTO-EE state and updates; knows the static prior, not others' state."""

    def __init__(self, system: SystemModel, name: NodeName, config: DtoeeConfig, *, fresh_s: float = 1.0,
                 swap_within_spare: bool = False) -> None:
        """``fresh_s``: the age up to which a report counts as this round's (in memory a round
        is 1; DtoeePolicy: its share of a period); ``swap_within_spare``: accept transit swaps
        only within this node's own spare rate (online, where the offerer acts a period later)."""
        if name not in system.nodes:
            raise ValueError(f"unknown node {name!r}; allowed: {system.nodes}")
        self.system = system
        self.name = name
        self.config = config
        K = system.num_stages
        self.hosted = system.stages_hosted(name)
        self.offload_stages = tuple(
            k for k in range(1, K + 1) if system.targets(name, k) and (k == 1 or name in system.hosts[k - 1])
        )
        self.targets = {k: system.targets(name, k) for k in self.offload_stages}
        self.links_used = {
            j: sum(1 for k in self.offload_stages if j in self.targets[k]) for j in system.nodes if j != name
        }
        self.sender_count = {k: max(1, len(system.senders(name, k))) for k in self.hosted}
        # the nodes among which this node's spare rate (its headroom) is shared: every node that
        # can send it work; a stage no node can send here (n_j^k counts it as 1) adds none
        real = sum(len(system.senders(name, k)) for k in self.hosted)
        self.headroom_sharers = max(1, real if config.headroom_real_senders else sum(self.sender_count.values()))
        self._fresh_s = float(fresh_s)
        self._swap_within_spare = bool(swap_within_spare)
        self.reset()

    # ----- state ---------------------------------------------------------------------
    def reset(self) -> None:
        system, cfg = self.system, self.config
        self.x: dict[int, np.ndarray] = {}
        for k in self.offload_stages:
            targets = self.targets[k]
            if cfg.start == "local" and self.name in targets:
                weights = np.array([1.0 if j == self.name else 0.0 for j in targets])
            else:
                weights = np.array([system.service_rate_per_s[(j, k)] for j in targets])
            self.x[k] = weights / weights.sum()
        self.e: dict[int, float] = {}
        for k in self.hosted:
            if k < system.num_stages:
                theta = cfg.initial_threshold if cfg.early_exit else 1.0
                self.e[k] = exit_share_at(system.exit_curves[k], theta)
        self.rounds_done = 0
        self.beta: dict[tuple[str, int], float] = {}
        self.last_move: dict[tuple[str, int], np.ndarray] = {}
        self.velocity: dict[int, np.ndarray] = {}
        self.reports: dict[tuple[NodeName, int], ReceiverReport] = {}
        self.own: dict[int, ReceiverReport] = {}
        self.offload_marginal: dict[int, tuple[float, float, float]] = {}
        self.obs = self._prior_observation()
        self._link_bytes: dict[NodeName, float] = {}
        self._paths_cache: dict[int, tuple[tuple, list]] = {}
        # transit swaps (see _offer_swaps): offers received {k: {(sender, l): c}}, the share of
        # them accepted this round {k: {sender: {l: c}}}, and offers this node made last round
        self.offers_in: dict[int, dict[tuple[NodeName, NodeName], float]] = {}
        self.accepted: dict[int, dict[NodeName, dict[NodeName, float]]] = {}
        self.offers_out: list[SwapOffer] = []
        self._keep: dict[int, dict[NodeName, dict[NodeName, float]]] = {}
        self._swapped_at: dict[tuple[NodeName, int], float] = {}

    def _prior_observation(self) -> LocalObservation:
        system = self.system
        obs = LocalObservation()
        obs.service_rate_per_s = {k: system.service_rate_per_s[(self.name, k)] for k in self.hosted}
        for (i, j), link in system.links.items():
            if i == self.name:
                obs.capacity_bytes_per_s[j] = link.capacity_bytes_per_s
                obs.propagation_s[j] = link.propagation_s
        return obs

    def flow_to(self, j: NodeName, k: int) -> float:
        """f_ij^k = phi_i^k x_ij^k: this node's stage-k flow to host j (0 if it sends none)."""
        if k not in self.x or j not in self.targets[k]:
            return 0.0
        return self.obs.demand_per_s.get(k, 0.0) * float(self.x[k][self.targets[k].index(j)])

    def report_to(self, report: "ReceiverReport", recipient: NodeName) -> "ReceiverReport":
        """The report as sent to one upstream sender: with this node's own stage-k flow to it
        and the part of the sender's last swap offers this node accepted."""
        accepted = tuple(self.accepted.get(report.stage, {}).get(recipient, {}).items())
        return replace(report, reverse_flow_per_s=self.flow_to(recipient, report.stage), accepted=accepted)

    def receive_offer(self, offer: "SwapOffer") -> None:
        """Keep a transit-swap offer of an upstream sender (acted on at this node's next report)."""
        k = offer.stage
        if (k not in self.hosted or k not in self.x or offer.via not in self.targets[k] or offer.via == self.name
                or offer.src == self.name or offer.src not in self.system.senders(self.name, k)
                or not (math.isfinite(offer.flow_per_s) and offer.flow_per_s > 0)):
            return
        self.offers_in.setdefault(k, {})[(offer.src, offer.via)] = offer.flow_per_s

    def _fresh_report(self, j: NodeName, k: int, now_s: float) -> "ReceiverReport | None":
        """Another host j's stage-k report if it is this round's (no older than ``fresh_s``)."""
        rep = self.reports.get((j, k))
        if j == self.name or rep is None or now_s - rep.sent_s > self._fresh_s:
            return None
        return rep

    def probabilities(self, k: int) -> dict[NodeName, float]:
        return {j: float(p) for j, p in zip(self.targets[k], self.x[k])}

    def threshold(self, k: int) -> float:
        if k == self.system.num_stages:
            return 0.0
        return threshold_for_exit_share(self.system.exit_curves[k], self.e[k])

    @property
    def queue(self) -> PenalizedQueue:
        return PenalizedQueue(self.config.rho_bar, self.config.penalty(self.rounds_done))

    # ----- inputs --------------------------------------------------------------------
    def observe(self, arrival_per_s: Mapping[int, float], demand_per_s: Mapping[int, float], **overrides) -> None:
        """Take this round's local measurements (missing stages count as 0)."""
        self.obs.arrival_per_s = {k: max(0.0, float(arrival_per_s.get(k, 0.0))) for k in self.hosted}
        self.obs.demand_per_s = {k: max(0.0, float(demand_per_s.get(k, 0.0))) for k in self.offload_stages}
        for key in ("service_rate_per_s", "capacity_bytes_per_s", "propagation_s"):
            values = overrides.get(key)
            if values:
                current = getattr(self.obs, key)
                for name, v in values.items():
                    if name in current and math.isfinite(v) and v > 0:
                        current[name] = float(v)
        self._link_bytes = {j: self._link_bytes_per_s(j) for j in self.obs.capacity_bytes_per_s}
        self._paths_cache.clear()

    def receive(self, report: ReceiverReport) -> None:
        """Keep the newest report per (sender, stage); ignore ones this node cannot use."""
        k = report.stage
        if k not in self.targets or report.src not in self.targets[k] or report.src == self.name:
            return
        key = (report.src, k)
        old = self.reports.get(key)
        if old is None or report.sent_s >= old.sent_s:
            self.reports[key] = report
            self._paths_cache.pop(k, None)

    # ----- DTO-R ---------------------------------------------------------------------
    def rho(self) -> float:
        return sum(self.obs.arrival_per_s.get(k, 0.0) / self.obs.service_rate_per_s[k] for k in self.hosted)

    def report(self, k: int, now_s: float, max_age_s: float | None = None) -> ReceiverReport:
        """delta_j^k, n h_j^k and headroom for stage k (needs this round's stage k+1 reports)."""
        system = self.system
        queue = self.queue
        rho = self.rho()
        mu = self.obs.service_rate_per_s[k]
        first, second = node_marginal(queue, rho, mu)
        if k == system.num_stages:
            delta, curv = receiver_marginal(first, second, system.w, system.hull(k).value(1.0), 0.0, 0.0, 0.0)
        else:
            cont, cont_curv, _ = self._continue_marginal(k + 1, now_s, max_age_s)
            e = self.e[k]
            delta, curv = receiver_marginal(
                first, second, system.w, system.hull(k).value(e), 1.0 - e, cont, cont_curv
            )
        n = self.sender_count[k]
        # node headroom is shared by every node that can send this node work of any stage
        spare = max(0.0, (self.config.rho_bar - rho) * mu)
        headroom = spare / self.headroom_sharers
        if k < system.num_stages and self.config.downstream_headroom and self.e[k] < 1.0:
            # more stage-k work here means (1 - e) as much more stage-(k+1) work for the hosts
            # this node sends to: their headroom (as reported to it) bounds what it can take
            down = max(0.0, self._continue_room(k + 1, now_s, max_age_s)) / (1.0 - self.e[k])
            headroom = min(headroom, down)
            spare = min(spare, down)
        shed = 1.0 - self.config.rho_bar / rho if rho > self.config.rho_bar else 0.0
        report = ReceiverReport(self.name, k, delta, curv, n, headroom, now_s, shed_share=shed,
                                spare_per_s=spare,
                                out_flows=self._out_flows(k), accepted=())
        self._accept_offers(k)
        self.own[k] = report
        self._paths_cache.pop(k, None)
        return report

    def _link_terms(self, k: int, j: NodeName) -> tuple[float, float]:
        """(l_ij^k, l''_ij^k) of this node's link to j for stage-k flow, from its own measurements."""
        cap = self.obs.capacity_bytes_per_s[j]
        util = self._link_bytes.get(j, 0.0) / cap
        return link_marginal(self.queue, util, self.system.transfer_bytes[k], cap, self.obs.propagation_s[j])

    def _out_flows(self, k: int) -> tuple[tuple[NodeName, float, float, float], ...]:
        """(l, f_jl^k, l_jl^k, l''_jl^k) for every other host l this node sends stage-k work to."""
        if not self.config.transit_swaps or k not in self.x:
            return ()
        out = []
        for l in self.targets[k]:
            flow = self.flow_to(l, k)
            if l != self.name and flow > _EPS_FLOW:
                out.append((l, flow, *self._link_terms(k, l)))
        return tuple(out)

    def _accept_offers(self, k: int) -> None:
        """Accept last round's swap offers on this node's stage-k flows: per host l, at most
        f_jl^k minus the flow l sends back (kept for the exchange cancellation), shared in
        proportion to the offers. The accepted amounts go back in the reports (report_to)
        and are kept local by this node in update(); the offerers move them to l."""
        offers = self.offers_in.pop(k, {})
        self.accepted[k] = {}
        if not offers:
            return
        by_host: dict[NodeName, float] = {}
        for (_, l), c in offers.items():
            by_host[l] = by_host.get(l, 0.0) + c
        scale = 1.0
        if self._swap_within_spare:  # the offerer acts a period later: j carries the flow meanwhile
            spare = max(0.0, (self.config.rho_bar - self.rho()) * self.obs.service_rate_per_s[k])
            scale = min(1.0, spare / sum(by_host.values()))
        for (src, l), c in offers.items():
            rep = self.reports.get((l, k))
            back = rep.reverse_flow_per_s if rep is not None else 0.0
            available = max(0.0, self.flow_to(l, k) - back)
            share = scale * min(1.0, available / by_host[l])
            if c * share > _EPS_FLOW:
                self.accepted[k].setdefault(src, {})[l] = c * share
        self._keep[k] = self.accepted[k]

    def _paths(self, k: int, now_s: float, max_age_s: float | None):
        """Per target of stage k: (a_j, raw curvature, Jacobi-scaled curvature, headroom) or None.

        a_j = l_ij^k + delta_j^k; raw = l''_ij^k + h_j^k; scaled = m_i l''_ij^k + n_j h_j^k.
        """
        cache_key = (now_s, max_age_s, self.rounds_done)
        cached = self._paths_cache.get(k)
        if cached is not None and cached[0] == cache_key:
            return cached[1]
        system, obs = self.system, self.obs
        queue = self.queue
        paths = []
        for j in self.targets[k]:
            rep = self.own.get(k) if j == self.name else self.reports.get((j, k))
            if rep is None or (max_age_s is not None and now_s - rep.sent_s > max_age_s):
                paths.append(None)
                continue
            if j == self.name:
                room = -rep.shed_share * self._own_flow(k, j) if rep.shed_share > 0 else rep.headroom_per_s
                paths.append((rep.marginal_s, rep.curvature, rep.senders ** self.config.jacobi_power * rep.curvature, room, 0.0,
                              rep.spare_per_s))
                continue
            cap = obs.capacity_bytes_per_s[j]
            b = system.transfer_bytes[k]
            util = self._link_bytes.get(j, 0.0) / cap
            first, second = link_marginal(queue, util, b, cap, obs.propagation_s[j])
            link_room = max(0.0, (self.config.rho_bar - util) * cap / b) if b > 0 else math.inf
            room = min(rep.headroom_per_s, link_room)
            own = self._own_flow(k, j)
            if rep.shed_share > 0:
                room = -rep.shed_share * own
            hard = 0.0
            if util > self.config.rho_bar:  # this node is the link's only sender: cut to rho_bar
                hard = -(1.0 - self.config.rho_bar / util) * own
                room = min(room, 0.0)
            paths.append(
                (
                    first + rep.marginal_s,
                    second + rep.curvature,
                    self.links_used[j] * second + rep.senders ** self.config.jacobi_power * rep.curvature,
                    room,
                    hard,
                    min(rep.spare_per_s, link_room),
                )
            )
        self._paths_cache[k] = (cache_key, paths)
        return paths

    def _own_flow(self, k: int, j: NodeName) -> float:
        return self.obs.demand_per_s.get(k, 0.0) * float(self.x[k][self.targets[k].index(j)])

    def _link_bytes_per_s(self, j: NodeName) -> float:
        total = 0.0
        for k in self.offload_stages:
            if j in self.targets[k]:
                idx = self.targets[k].index(j)
                total += self.system.transfer_bytes[k] * self.obs.demand_per_s.get(k, 0.0) * self.x[k][idx]
        return total

    def _continue_marginal(self, k: int, now_s: float, max_age_s: float | None) -> tuple[float, float, float]:
        """(Delta_i^k, H_i^k raw, H_i^k Jacobi-scaled) over the known targets, from current x_i^k."""
        paths = self._paths(k, now_s, max_age_s)
        x = self.x[k]
        known = [n for n, p in enumerate(paths) if p is not None]
        if not known:
            return self.offload_marginal.get(k, (0.0, 0.0, 0.0))
        weights = x[known]
        if weights.sum() <= 0:
            best = min(known, key=lambda n: paths[n][0])
            value = paths[best][:3]
        else:
            weights = weights / weights.sum()
            value = (
                float(sum(wt * paths[n][0] for wt, n in zip(weights, known))),
                float(sum(wt * paths[n][1] for wt, n in zip(weights, known))),
                float(sum(wt * paths[n][2] for wt, n in zip(weights, known))),
            )
        self.offload_marginal[k] = value
        return value

    # ----- DTO-O ---------------------------------------------------------------------
    def update(self, now_s: float, max_age_s: float | None = None) -> None:
        """One DTO-O step: offloading of every stage this node sends, then its thresholds."""
        continuing = {}
        for k in self.hosted:
            if k < self.system.num_stages and self.config.early_exit:
                continuing[k] = self._continue_marginal(k + 1, now_s, max_age_s)
        for k in self.offload_stages:
            self._update_offloading(k, now_s, max_age_s)
        self.offers_out = []
        for k in self.offload_stages:
            self._offer_swaps(k, now_s)
        for k, (cont, cont_curv, _) in continuing.items():
            target = best_exit_share(
                self.system.hull(k),
                self.system.w,
                cont,
                self.obs.arrival_per_s.get(k, 0.0),
                cont_curv,
                self.e[k],
            )
            room = self._continue_room(k + 1, now_s, max_age_s)
            lam = self.obs.arrival_per_s.get(k, 0.0)
            floor = 0.0  # least exit share that keeps the continuing flow within downstream room
            if lam > _EPS_FLOW and math.isfinite(room):
                floor = min(1.0, self.e[k] - room / lam)
            target = max(target, floor)
            move = np.array([target - self.e[k]])
            beta = self._adapt_step(("e", k), move)
            self.e[k] = float(min(1.0, max(0.0, floor, self.e[k] + beta * move[0])))
        self.rounds_done += 1

    def _continue_room(self, k: int, now_s: float, max_age_s: float | None) -> float:
        """Largest rise of this node's stage-k demand phi_i^k that keeps every host it sends
        to (split by x_i^k) within the headroom the host reported: min_j room_j / x_ij^k."""
        paths = self._paths(k, now_s, max_age_s)
        room = math.inf
        for p, share in zip(paths, self.x[k]):
            if p is not None and share > 1e-12:
                room = min(room, p[3] / share)
        return room

    def _adapt_step(self, key: tuple[str, int], move: np.ndarray, with_reversal: bool = False):
        """beta for this move: halve it after a reversal, else grow it (bounded)."""
        cfg = self.config
        beta = self.beta.get(key, cfg.initial_step / cfg.step_growth)
        last = self.last_move.get(key)
        reversed_ = last is not None and last.shape == move.shape and float(last @ move) < 0
        if reversed_:
            beta = max(cfg.min_step, 0.5 * beta)
        else:
            beta = min(cfg.step, cfg.step_growth * beta)
        self.beta[key] = beta
        self.last_move[key] = move
        return (beta, reversed_) if with_reversal else beta

    def _cancel_exchange(self, k: int, now_s: float) -> None:
        """Cancel two-way exchanges of stage-k work: if this node sends f_ij^k to j while j
        sends f_ji^k back (j's report says so), both keep c = min(f_ij^k, f_ji^k) local.

        Node loads Lambda are unchanged by the pair of moves and both link flows fall, so the
        cost falls (strictly, when p_ij + p_ji > 0) whatever the queues' curvature: this is
        the circulation direction of the Hessian, which the diagonal (per-path) Newton step
        cannot see, because the node terms of the two hosts dominate it near saturation.
        Both sides compute the same c from the same two numbers (their own flow and the
        other's report), so they act in step; only reports from this round are used
        (``sent_s`` within one period of ``now_s``).
        """
        if self.name not in self.targets[k]:
            return
        phi = self.obs.demand_per_s.get(k, 0.0)
        if phi <= _EPS_FLOW:
            return
        x = self.x[k].copy()
        here = self.targets[k].index(self.name)
        for n, j in enumerate(self.targets[k]):
            rep = self._fresh_report(j, k, now_s)
            if rep is None or rep.reverse_flow_per_s <= 0:
                continue
            c = min(phi * x[n], rep.reverse_flow_per_s)
            x[n] -= c / phi
            x[here] += c / phi
        self.x[k] = _normalised(x)

    def _shift(self, k: int, src: NodeName, dst: NodeName, flow: float) -> float:
        """Move up to ``flow`` of this node's stage-k flow from host src to host dst; returns the
        amount moved (never more than the flow to src)."""
        phi = self.obs.demand_per_s.get(k, 0.0)
        if phi <= _EPS_FLOW or flow <= 0:
            return 0.0
        a, b = self.targets[k].index(src), self.targets[k].index(dst)
        moved = min(flow / phi, float(self.x[k][a]))
        x = self.x[k].copy()
        x[a] -= moved
        x[b] += moved
        self.x[k] = _normalised(x)
        return moved * phi

    def _execute_swaps(self, k: int, now_s: float) -> None:
        """Both sides of the swaps accepted this round: as host, keep the accepted flow local
        instead of sending it to l; as offloader, move what each host accepted of its offers
        from that host to l (once per report: a report read twice does not swap twice)."""
        for src, per_host in self._keep.pop(k, {}).items():
            for l, c in per_host.items():
                if l in self.targets[k]:
                    self._shift(k, l, self.name, c)
        offered = {(o.dst, o.via) for o in self.offers_out if o.stage == k}
        for j in self.targets[k]:
            rep = self._fresh_report(j, k, now_s)
            if rep is None or not rep.accepted:
                continue
            if self._swapped_at.get((j, k)) == rep.sent_s:
                continue
            self._swapped_at[(j, k)] = rep.sent_s
            for l, c in rep.accepted:
                if (j, l) in offered and l in self.targets[k]:
                    self._shift(k, j, l, c)

    def _offer_swaps(self, k: int, now_s: float) -> None:
        """Offer transit swaps for stage k (the circulation step the diagonal step cannot see).

        If this node i sends f_ij^k to host j and j's report says j sends f_jl^k of its own
        stage-k work on to a host l that i also reaches, then moving c from i->j to i->l while
        j keeps c more local leaves every node load Lambda unchanged and changes only link
        flows: along this direction the node terms (h ~ 2/(1-rho)^3, which make the per-path
        step crawl near saturation) cancel exactly, and J_r has first derivative
        ``d1 = l_il - l_ij - l_jl`` and second ``d2 = l''_il + l''_ij + l''_jl`` (j's link terms
        come in its report). i offers j the exact 1-D Newton step ``c = -d1 / d2`` when d1 < 0,
        capped by f_ij^k (over all its offers), f_jl^k and the link i->l's room up to rho_bar.
        A two-way exchange (l = i, or j sending back to i) is left to _cancel_exchange.
        """
        if not self.config.transit_swaps:
            return
        phi = self.obs.demand_per_s.get(k, 0.0)
        if phi <= _EPS_FLOW:
            return
        b = self.system.transfer_bytes[k]
        candidates = []
        for j in self.targets[k]:
            rep = self._fresh_report(j, k, now_s)
            if rep is None or not rep.out_flows:
                continue
            if rep.reverse_flow_per_s > 0 or self.flow_to(j, k) <= _EPS_FLOW:
                continue
            l_ij, h_ij = self._link_terms(k, j)
            for l, f_jl, l_jl, h_jl in rep.out_flows:
                if l == self.name or l not in self.targets[k] or f_jl <= _EPS_FLOW:
                    continue
                l_il, h_il = self._link_terms(k, l)
                d1 = l_il - l_ij - l_jl
                if d1 < 0:
                    candidates.append((d1, j, l, f_jl, -d1 / max(h_il + h_ij + h_jl, MIN_CURVATURE)))
        budget = {j: self.flow_to(j, k) for j in self.targets[k]}
        room = {}
        for l in self.targets[k]:
            if l != self.name:
                cap = self.obs.capacity_bytes_per_s[l]
                room[l] = max(0.0, (self.config.rho_bar * cap - self._link_bytes.get(l, 0.0)) / b) if b > 0 else math.inf
        for d1, j, l, f_jl, newton in sorted(candidates, key=lambda c: c[0]):
            c = min(newton, budget[j], f_jl, room[l])
            if c > _EPS_FLOW:
                budget[j] -= c
                room[l] -= c
                self.offers_out.append(SwapOffer(self.name, j, k, l, c, now_s))

    def _update_offloading(self, k: int, now_s: float, max_age_s: float | None) -> None:
        if self.config.cancel_exchanges:
            self._cancel_exchange(k, now_s)
        if self.config.transit_swaps:
            self._execute_swaps(k, now_s)
        paths = self._paths(k, now_s, max_age_s)
        known = np.array([n for n, p in enumerate(paths) if p is not None], dtype=int)
        paths, known = self._with_silent_hosts(k, paths, known, now_s, max_age_s)
        if known.size < 2:
            return
        x = self.x[k]
        phi = self.obs.demand_per_s.get(k, 0.0)
        a = np.array([paths[n][0] for n in known])
        if phi <= _EPS_FLOW:
            mass = x[known].sum()
            target = np.zeros(known.size)
            target[int(np.argmin(a))] = mass
            new = x.copy()
            step = self.config.zero_flow_step
            new[known] = (1 - step) * x[known] + step * target
            self.x[k] = _normalised(new)
            return
        H = np.array([paths[n][2] for n in known])
        room = np.array([paths[n][3] for n in known])
        f0 = phi * x[known]
        total = float(f0.sum())
        if total <= _EPS_FLOW:
            return
        # cuts: a link past rho_bar (this node its only sender) first, then hosts past rho_bar;
        # what cannot be cut (no spare capacity elsewhere) is cut in the same share everywhere
        hard = np.maximum(np.array([paths[n][4] for n in known]), -f0)
        gain, soft = np.maximum(room, 0.0), np.minimum(np.maximum(room, -f0 - hard), 0.0)
        spare = float((f0 + gain).sum()) - total  # >= 0
        if hard.sum() < -spare and np.any(hard == 0):
            # a link past capacity has no other remedy: its flow goes to the other hosts even
            # past their headroom (their other senders shed meanwhile)
            upper = np.where(hard < 0, f0 + hard, total)
        else:
            if (hard + soft).sum() < -spare and self.config.shed_into_spare:
                # relieving an overload: use the other hosts' whole spare, not just this
                # sender's share of it (an overshoot there is shed in turn next round)
                whole = np.array([max(0.0, paths[n][5]) if room[m] >= 0 else 0.0 for m, n in enumerate(known)])
                gain = np.maximum(gain, np.where(soft < 0, 0.0, whole))
                spare = float((f0 + gain).sum()) - total
            if hard.sum() < -spare:
                hard, soft = hard * (spare / -hard.sum()), 0.0 * soft
            elif (hard + soft).sum() < -spare:
                soft = soft * ((spare + hard.sum()) / -soft.sum())
            upper = f0 + gain + hard + soft
        f = scaled_simplex_step(f0, a, H, upper, total)
        move = np.zeros_like(x)
        move[known] = f / phi - x[known]
        beta, reversed_ = self._adapt_step(("x", k), move, with_reversal=True)
        new = x + beta * move
        velocity = self.velocity.get(k)
        if self.config.momentum > 0 and velocity is not None and not reversed_:
            new = new + self.config.momentum * velocity
        # every host's cap (headroom, or its shed) holds after damping and momentum too
        cap = x.copy()
        cap[known] = np.minimum(1.0, upper / phi)
        new = _normalised(scaled_simplex_step(np.clip(new, 0.0, cap), np.zeros_like(x), np.ones_like(x), cap, 1.0))
        self.velocity[k] = new - x
        self.x[k] = new


    def _with_silent_hosts(self, k: int, paths, known: np.ndarray, now_s: float, max_age_s: float | None):
        """Hosts presumed dead join the step with a prohibitive marginal cost and no room.

        A host that did report but has been silent for over twice the report age limit
        (crashed, or cut off) is given ``a_j = max(a) + 1 s`` and ``room_j = 0``: the step
        moves its flow to the hosts that still report, within *their* reported headroom,
        so losing messages never dumps a silent host's load on one node at once. A host
        that never reported (start-up) keeps its share. When it reports again, DTO-O's
        ordinary steps bring flow back to it.
        """
        if max_age_s is None or known.size == 0:
            return paths, known
        silent = [n for n, (j, p) in enumerate(zip(self.targets[k], paths))
                  if p is None and j != self.name and (j, k) in self.reports
                  and now_s - self.reports[(j, k)].sent_s > 2.0 * max_age_s and self.x[k][n] > 0]
        if not silent:
            return paths, known
        worst = max(paths[n][0] for n in known) + 1.0
        curvature = max(paths[n][2] for n in known)
        paths = list(paths)
        for n in silent:
            paths[n] = (worst, curvature, curvature, 0.0, 0.0, 0.0)
        return paths, np.array(sorted([*known.tolist(), *silent]), dtype=int)


def _normalised(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 0.0, None)
    return p / p.sum()


# ----- in-memory synchronous rounds --------------------------------------------------------


@dataclass(frozen=True)
class History:
    """Per-round record of an in-memory run (index t = after round t+1).

    objective, mean_delay_s, accuracy: J, D, A of the strategy after each round (hull
    model, :func:`optimizer.system.evaluate_exit_shares`); max_rho: largest node
    utilisation; invariant_violation: largest distance of any x_i^k from the simplex or
    theta from [0, 1] (0 when the invariants hold); initial_objective: J at the start;
    x, theta, exit_share: final strategy; update_time_s: mean wall time of one node's
    DTO-R + DTO-O work per round.
    """

    objective: np.ndarray
    mean_delay_s: np.ndarray
    accuracy: np.ndarray
    max_rho: np.ndarray
    invariant_violation: np.ndarray
    initial_objective: float
    x: dict[tuple[NodeName, int], dict[NodeName, float]]
    theta: dict[tuple[NodeName, int], float]
    exit_share: dict[tuple[NodeName, int], float]
    update_time_s: dict[NodeName, float]

    def rounds_to_gap(self, optimum_objective: float, optimum_delay_s: float, gap: float = 0.01) -> int | None:
        """First round (1-based) with (J - J*) / D* <= gap, or None."""
        hit = np.nonzero((self.objective - optimum_objective) / optimum_delay_s <= gap)[0]
        return int(hit[0]) + 1 if hit.size else None


def make_agents(system: SystemModel, config: DtoeeConfig | None = None, **options: Any) -> dict[NodeName, NodeAgent]:
    """One :class:`NodeAgent` per node; ``options`` go to each (``fresh_s``, ``swap_within_spare``)."""
    config = config or DtoeeConfig()
    return {name: NodeAgent(system, name, config, **options) for name in system.nodes}


def strategy_of(agents: Mapping[NodeName, NodeAgent]):
    """(x, theta, exit_share) of all agents, in the dict formats of :mod:`optimizer.system`."""
    x, theta, shares = {}, {}, {}
    for agent in agents.values():
        for k in agent.offload_stages:
            x[(agent.name, k)] = agent.probabilities(k)
        for k in agent.hosted:
            theta[(agent.name, k)] = agent.threshold(k)
            shares[(agent.name, k)] = agent.e.get(k, 1.0)
    return x, theta, shares


def invariant_violation(x, theta) -> float:
    """max over x_i^k of |sum - 1| and negative mass, and of theta outside [0, 1]."""
    worst = 0.0
    for probs in x.values():
        values = np.fromiter(probs.values(), dtype=float)
        worst = max(worst, abs(values.sum() - 1.0), float(max(0.0, -values.min())))
    for t in theta.values():
        worst = max(worst, max(0.0, -t, t - 1.0)) if math.isfinite(t) else math.inf
    return worst


def run_in_memory(
    system: SystemModel,
    rounds: int = 300,
    *,
    config: DtoeeConfig | None = None,
    callback: Callable[[int, dict, dict], None] | None = None,
) -> History:
    """Synchronous DTO-EE rounds over an in-memory exchange.

    Each round: (measure) flows of the current strategy give every node its own
    Lambda_j^k and phi_i^k; (DTO-R) hosts report delta_j^k upstream, stage K first, so a
    round's reports carry downstream costs in one wave; (DTO-O) every node updates its own
    offloading and thresholds. ``callback(round, x, theta)`` sees the strategy after each
    round.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds!r}")
    config = config or DtoeeConfig()
    agents = make_agents(system, config)
    K = system.num_stages
    x, theta, shares = strategy_of(agents)
    initial = evaluate_exit_shares(system, x, shares).objective
    records = {name: [] for name in ("objective", "delay", "accuracy", "rho", "violation")}
    busy = {name: 0.0 for name in system.nodes}
    for t in range(rounds):
        now = float(t)
        flows = propagate(system, x, shares)
        for name, agent in agents.items():
            agent.observe(
                {k: flows.arrival.get((name, k), 0.0) for k in agent.hosted},
                {k: flows.phi.get((name, k), 0.0) for k in agent.offload_stages},
            )
        for k in range(K, 0, -1):
            for j in system.hosts[k]:
                started = time.perf_counter()
                report = agents[j].report(k, now)
                busy[j] += time.perf_counter() - started
                for sender in system.senders(j, k):
                    if sender != j:
                        agents[sender].receive(agents[j].report_to(report, sender))
        for name, agent in agents.items():
            started = time.perf_counter()
            agent.update(now)
            busy[name] += time.perf_counter() - started
        for agent in agents.values():
            for offer in agent.offers_out:
                agents[offer.dst].receive_offer(offer)
        x, theta, shares = strategy_of(agents)
        ev = evaluate_exit_shares(system, x, shares)
        records["objective"].append(ev.objective)
        records["delay"].append(ev.mean_delay_s)
        records["accuracy"].append(ev.accuracy)
        records["rho"].append(max(ev.rho.values()))
        records["violation"].append(invariant_violation(x, theta))
        if callback is not None:
            callback(t + 1, x, theta)
    return History(
        objective=np.array(records["objective"]),
        mean_delay_s=np.array(records["delay"]),
        accuracy=np.array(records["accuracy"]),
        max_rho=np.array(records["rho"]),
        invariant_violation=np.array(records["violation"]),
        initial_objective=initial,
        x=x,
        theta=theta,
        exit_share=shares,
        update_time_s={name: v / rounds for name, v in busy.items()},
    )


# ----- the co-simulation policy -------------------------------------------------------------


class DtoeePolicy:
    """DTO-EE agents behind the :class:`~optimizer.policy.AdaptivePolicy` contract.

    Built from a :class:`SystemModel` that is the *prior* (hosts, profiled mu, exit curves,
    configured links). Every ``period_s`` the co-simulation calls ``step(node, measurements,
    inbox)``; the node then

    * refreshes its local view from ``measurements``: Lambda_j^k = ``arrivals_per_s[k]``,
      phi_i^k = ``forwarded_per_s[k]`` (all its stage-k tasks, incl. those run locally; if
      absent, ``external_arrivals_per_s`` for k = 1 and Lambda^{k-1}(1 - e^{k-1}) after),
      mu_j^k = ``service_rate_per_s[k]`` (prior if absent), C_ij = ``link_rate_bps[j] / 8``
      (prior if absent; read as the link's available rate);
    * stores the reports in ``inbox`` (newest per sender and stage; malformed ones ignored);
    * runs DTO-R for its stages (K first, so its own reports feed each other at once) and
      DTO-O with the reports no older than ``max_report_age_s``: a host that never reported
      keeps its share; a host silent for over twice the age limit is presumed dead and its
      flow moves to the hosts that still report, within their headroom;
    * returns one :class:`ControlMessage` per upstream sender and hosted stage.

    Information crosses one hop per round, so a K-stage chain needs K rounds to carry
    downstream costs upstream; messages are never read from another node's state. With
    ``rounds_per_period = R > 1`` the control plane also calls :meth:`exchange` R - 1 times
    between two measurements (messages are cheap next to tasks); offloaders then also
    announce their flow to each host (``dtoee/flow``). With ``announced_loads`` (default) a
    host takes its load as the sum of its senders' fresh announcements plus its own local
    flow (:meth:`_observe_announced`: no averaging lag), else it corrects its last measured
    load by the announced changes. ``demand_alpha`` < 1 averages the measured stage-1 demand
    over periods, restarting on a load change (:meth:`_smoothed_demand`). The scenario
    default is 4 rounds per period (``policy.rounds_per_period``; docs/dtoee-online.md has
    the runs that chose it). The strategy is kept across events (warm start): only
    :meth:`reset` goes back to the initial one.

    Admission (:class:`~optimizer.policy.AdmissionControl`): when its stage-1 hosts can take
    less than it offers them (no feasible strategy), an entry node admits only a share
    ``admit_probability(i)`` of its UEs' new tasks (:meth:`_update_admission`); the
    co-simulation rejects the rest visibly (reason ``rejected``).
    """

    def __init__(
        self,
        system: SystemModel,
        *,
        period_s: float = 1.0,
        config: DtoeeConfig | None = None,
        message_bytes: int = 64,
        rounds_per_period: int = 1,
        announced_loads: bool = True,
        demand_alpha: float = 0.2,
    ) -> None:
        if not (math.isfinite(period_s) and period_s > 0):
            raise ValueError(f"period_s must be finite and > 0, got {period_s!r}")
        if not (isinstance(rounds_per_period, int) and rounds_per_period >= 1):
            raise ValueError(f"rounds_per_period must be an integer >= 1, got {rounds_per_period!r}")
        self.rounds_per_period = rounds_per_period
        self.announced_loads = bool(announced_loads)
        if not 0 < demand_alpha <= 1:
            raise ValueError(f"demand_alpha must lie in (0, 1], got {demand_alpha!r}")
        self.demand_alpha = float(demand_alpha)
        self._demand: dict[NodeName, tuple[float | None, int]] = {}
        self._last_measurements: dict[NodeName, NodeMeasurements] = {}
        self._announced: dict[NodeName, dict[tuple[NodeName, int], float]] = {}
        self._announced_s: dict[NodeName, dict[tuple[NodeName, int], float]] = {}
        self._baseline: dict[NodeName, dict[tuple[NodeName, int], float]] = {}
        self._local_at_measure: dict[NodeName, dict[int, float]] = {}
        self.system = system
        self.period_s = float(period_s)
        # Online, the gradients come from one period's measured rates (Poisson counts): heavy-ball
        # momentum carries their noise from period to period and the strategy never settles
        # (load_step.toml: a total-variation drift of 1.7 over 14 s at momentum 0.8, 0.27 at
        # 0, and a lower mean delay). The in-memory runs, on exact figures, keep it. For the same
        # reason beta regrows by 1.1x per round, not 1.5x: with lost and late reports (drop 0.3,
        # late 0.3, acceptance instance 5) 1.5x ends 6.5% above the optimum after 200 periods,
        # 1.1x within 0.01%. And the full Jacobi factor (jacobi_power = 1: each of a host's n_j
        # senders takes n_j h_j as the curvature, not sqrt(n_j) h_j): online, with R rounds per
        # period on loads announced each round, up to five senders of bs0 on paper_comparison
        # reacted to the same noisy marginal at once and overshot (a stage-1 split swinging by
        # 0.33 in one period); n_j h_j makes their joint step about one Newton step. In memory
        # it costs ~8 more rounds to reach the optimum's split there (20 against 12); online at
        # load 1.4 it cut the settling time of seed 2 from 17.5 s to 13.5 s and the start-up
        # peak from 3.0x to 2.2x, seed 1 unchanged at 7.5 s (docs/dtoee-online.md).
        self.config = config or DtoeeConfig(momentum=0.0, step_growth=1.1, jacobi_power=1.0)
        self.message_bytes = int(message_bytes)
        self._max_age_s = (
            self.config.max_report_age_s if self.config.max_report_age_s is not None else 3.0 * self.period_s
        )
        # online a report is this round's for 1.5 exchange rounds; a host accepts swaps only
        # within its own spare (the offerer acts a period later)
        self.agents = make_agents(system, self.config, fresh_s=1.5 * self.period_s / self.rounds_per_period,
                                  swap_within_spare=True)
        self._admit: dict[NodeName, float] = {}  # a_i < 1 only while shedding
        self._backlog: dict[NodeName, dict[NodeName, tuple[float, float]]] = {}  # (drain_s, sent_s) per host

    # Policy
    def offload_probabilities(self, node: NodeName, stage: int) -> Mapping[NodeName, float]:
        agent = self._agent(node)
        if stage not in agent.x:
            raise KeyError(f"node {node!r} never offloads stage {stage}")
        return agent.probabilities(stage)

    def threshold(self, node: NodeName, stage: int) -> float:
        agent = self._agent(node)
        if stage == self.system.num_stages:
            return 0.0
        if stage not in agent.e:
            return self.config.initial_threshold if self.config.early_exit else 1.0
        return agent.threshold(stage)

    # AdaptivePolicy
    def reset(self, *, seed: int | None = None) -> None:
        """Back to the initial strategy (DTO-EE is deterministic; ``seed`` is accepted, unused)."""
        for agent in self.agents.values():
            agent.reset()
        self._last_measurements.clear()
        self._announced.clear()
        self._announced_s.clear()
        self._demand.clear()
        self._baseline.clear()
        self._local_at_measure.clear()
        self._admit.clear()
        self._backlog.clear()

    def step(self, node: NodeName, measurements: NodeMeasurements, inbox: list[ControlMessage]) -> list[ControlMessage]:
        """One round after a measurement period: observe, read the inbox, DTO-R, DTO-O, admission."""
        agent = self._agent(node)
        self._read(node, inbox)
        self._observe(agent, measurements)
        if self.announced_loads:
            self._observe_announced(agent, float(measurements.now_s), dict(agent.obs.arrival_per_s))
        self._last_measurements[node] = measurements
        self._baseline[node] = dict(self._announced.get(node, {}))
        self._local_at_measure[node] = {k: agent.flow_to(node, k) for k in agent.hosted}
        before = {j: agent.flow_to(j, 1) for j in agent.targets.get(1, ())}
        now = float(measurements.now_s)
        out = self._round(agent, now)
        if 1 in agent.hosted:  # its backlog, from its own measurement: tasks present / mu^1
            drain_s = measurements.tasks_present / max(agent.obs.service_rate_per_s.get(1, 0.0), 1e-9)
            self._backlog.setdefault(node, {})[node] = (drain_s, now)
            if drain_s > BACKLOG_S:
                for sender in self.system.senders(node, 1):
                    if sender != node:
                        payload = {"kind": BACKLOG_KIND, "stage": 1, "drain_s": drain_s, "sent_s": now}
                        out.append(ControlMessage(src=node, dst=sender, payload=payload, size_bytes=self.message_bytes))
        self._update_admission(agent, measurements, before)
        return out

    # AdmissionControl
    def admit_probability(self, node: NodeName) -> float:
        """a_i: the share of new tasks from ``node``'s own UEs it admits (1 until its hosts are full)."""
        return self._admit.get(node, 1.0)

    def _update_admission(self, agent: NodeAgent, m: NodeMeasurements, before: Mapping[NodeName, float]) -> None:
        """Shed at the entry what the stage-1 hosts cannot take, from their reports only.

        Each stage-1 host j that reported this round can take from i ``A_ij = f_ij^1 (1 -
        s_j) + h_j``: the flow i sent it, less the share ``s_j = 1 - rho_bar/rho_j`` it asks
        every sender to shed, plus its per-sender headroom ``h_j`` (a host that has not
        reported takes what it gets). With ``A_i = sum_j A_ij`` and lambda_i its UEs'
        measured (offered) rate, i admits the share a_i of its new tasks, updated like a
        congestion window (AIMD):

            A_i <  phi_i (the hosts ask i to shed):  a_i <- (a_i + ADMIT_MARGIN A_i / lambda_i) / 2
            A_i >= phi_i:                           a_i <- min(1, a_i + clip((A_i / lambda_i - a_i) / 2, 0, ADMIT_STEP))

        The cut aims ``1 - ADMIT_MARGIN`` below what the hosts can take and the climb back
        is slow, so the hosts are not pushed straight back past ``rho_bar``. While i sheds,
        a stage-1 host holding more than ``BACKLOG_S`` of work (its own measurement: tasks
        present / mu^1, sent as ``dtoee/backlog`` while above that) takes only ``BACKLOG_S /
        drain_s`` of i's flow to it in ``A_i``, so the backlog built before admission acted
        drains instead of staying at rho_bar. While any host i reaches has headroom, ``A_i >= phi_i`` and
        a_i stays at 1: a run with a feasible strategy rejects nothing; it falls only when
        DTO-O cannot place the load anywhere.
        """
        offered = float(m.external_arrivals_per_s)
        if 1 not in agent.offload_stages or offered <= 0:
            return
        now = float(m.now_s)
        placeable = 0.0
        for j, flow in before.items():
            report = agent.own.get(1) if j == agent.name else agent.reports.get((j, 1))
            if report is None or (self._max_age_s is not None and now - report.sent_s > self._max_age_s):
                placeable += flow
            else:
                placeable += flow * (1.0 - report.shed_share) + max(0.0, report.headroom_per_s)
        current = self._admit.get(agent.name, 1.0)
        flows = sum(before.values())
        if current < 1.0:  # already shedding: a host still holding a backlog takes less, until it drains
            backlog = self._backlog.get(agent.name, {})
            drained = 0.0
            for j, flow in before.items():
                drain_s, sent_s = backlog.get(j, (0.0, -math.inf))
                fresh = now - sent_s <= 1.5 * self.period_s
                drained += flow * (min(1.0, BACKLOG_S / drain_s) if fresh and drain_s > BACKLOG_S else 1.0)
            placeable = min(placeable, placeable - flows + drained)
        if placeable < flows - 1e-9:
            admit = 0.5 * (current + ADMIT_MARGIN * placeable / offered)
        else:
            admit = current + max(0.0, min(ADMIT_STEP, 0.5 * (placeable / offered - current)))  # never a cut
        self._admit[agent.name] = 1.0 if admit > 0.999 else min(1.0, max(0.0, admit))

    def exchange(self, node: NodeName, now_s: float, inbox: list[ControlMessage]) -> list[ControlMessage]:
        """An extra exchange round between two measurements (``rounds_per_period > 1``).

        The node has no new measurement, so it corrects the last one with what it was told
        and what it did itself since: ``Lambda_j^k = measured + sum_i (f_ij^k announced now
        - f_ij^k announced at the measurement) + (own local flow now - then)`` (senders
        announce their flow to each host every round, message kind ``dtoee/flow``); its
        stage-k demand for k > 1 follows as ``Lambda_j^{k-1} (1 - e_j^{k-1})``.
        """
        agent = self._agent(node)
        m = self._last_measurements.get(node)
        self._read(node, inbox)
        if m is None:  # nothing measured yet: only pass the messages on
            return []
        announced, baseline = self._announced.get(node, {}), self._baseline.get(node, {})
        local_then = self._local_at_measure.get(node, {})
        arrivals = {}
        for k in agent.hosted:
            change = sum(v - baseline.get(key, 0.0) for key, v in announced.items() if key[1] == k)
            change += agent.flow_to(node, k) - local_then.get(k, 0.0)
            arrivals[k] = max(0.0, float(m.arrivals_per_s.get(k, 0.0)) + change)
        demand = {}
        for k in agent.offload_stages:
            if k == 1 and self._admit.get(node, 1.0) < 1.0:
                demand[k] = self._admit[node] * float(m.external_arrivals_per_s)
            elif k == 1:  # this period's (smoothed) measurement
                demand[k] = self._demand[node][0] if node in self._demand else float(
                    m.forwarded_per_s.get(1, m.external_arrivals_per_s))
            else:
                demand[k] = arrivals.get(k - 1, 0.0) * (1.0 - agent.e.get(k - 1, 1.0))
        agent.observe(arrivals, demand)
        if self.announced_loads:
            self._observe_announced(agent, float(now_s), arrivals)
        return self._round(agent, float(now_s))

    def _smoothed_demand(self, node: NodeName, measured: float, period_s: float) -> float:
        """phi_i^1 averaged over periods: a running mean restarted when the load changes.

        The control plane's rate is an EWMA(1/2) of one period's Poisson count, whose standard
        deviation is ``sqrt(lambda / (3 T))`` (T = the period): at 21 tasks/s and T = 1 s, 12%.
        The estimate is the running mean of the measured rates since the last restart (weight
        ``max(1/n, demand_alpha)`` on the n-th), restarted at the measurement when it is over
        3 standard deviations off (a load step). ``demand_alpha = 1`` turns this off.
        """
        if self.demand_alpha >= 1.0:
            return measured
        estimate, n = self._demand.get(node, (None, 0))
        if estimate is None:
            estimate, n = measured, 1
        else:
            sd = math.sqrt(max(estimate, measured, 1.0 / period_s) / (3.0 * period_s))
            if abs(measured - estimate) > 3.0 * sd:
                estimate, n = measured, 1
            else:
                n += 1
                estimate += max(1.0 / n, self.demand_alpha) * (measured - estimate)
        self._demand[node] = (estimate, n)
        return estimate

    def _observe_announced(self, agent: NodeAgent, now: float, fallback: Mapping[int, float]) -> None:
        """Host loads from the senders' flow announcements, stage by stage (``announced_loads``).

        ``Lambda_j^k = sum_{i != j} f_ij^k (announced) + phi_j^k x_jj^k`` when every other
        sender of stage k announced within ``max_report_age_s``, else ``fallback[k]`` (the
        measured load, corrected as in :meth:`exchange`); ``phi_j^k = Lambda_j^{k-1} (1 -
        e_j^{k-1})`` for k > 1. The announced flows are the senders' current strategy, so the
        load carries no averaging lag (a measurement window is one period old and smoothed
        over several), and its noise is only that of the measured external rates.
        """
        node = agent.name
        announced, times = self._announced.get(node, {}), self._announced_s.get(node, {})
        arrivals = dict(agent.obs.arrival_per_s)
        demand = dict(agent.obs.demand_per_s)
        for k in range(1, self.system.num_stages + 1):
            if k in agent.offload_stages and k > 1 and (k - 1) in arrivals:
                demand[k] = arrivals[k - 1] * (1.0 - agent.e.get(k - 1, 1.0))
            if k not in agent.hosted:
                continue
            others = [i for i in self.system.senders(node, k) if i != node]
            age_s = math.inf if self._max_age_s is None else self._max_age_s
            if all((i, k) in times and now - times[(i, k)] <= age_s for i in others):
                own = demand.get(k, 0.0) * agent.probabilities(k).get(node, 0.0) if k in agent.offload_stages else 0.0
                arrivals[k] = sum(announced[(i, k)] for i in others) + own
            else:
                arrivals[k] = float(fallback.get(k, arrivals.get(k, 0.0)))
        agent.observe(arrivals, demand)

    def _read(self, node: NodeName, inbox: list[ControlMessage]) -> None:
        agent = self._agent(node)
        for message in inbox:
            if message.dst != node:
                continue
            payload = message.payload
            if isinstance(payload, Mapping) and payload.get("kind") == FLOW_KIND:
                try:
                    k, flow = int(payload["stage"]), float(payload["flow"])
                except (KeyError, TypeError, ValueError):
                    continue
                if k in agent.hosted and message.src in self.system.senders(node, k) and math.isfinite(flow):
                    self._announced.setdefault(node, {})[(message.src, k)] = max(0.0, flow)
                    sent = payload.get("sent_s")
                    self._announced_s.setdefault(node, {})[(message.src, k)] = (
                        float(sent) if isinstance(sent, (int, float)) and math.isfinite(sent) else -math.inf)
                continue
            if isinstance(payload, Mapping) and payload.get("kind") == BACKLOG_KIND:
                try:
                    drain_s, sent_s = float(payload["drain_s"]), float(payload["sent_s"])
                except (KeyError, TypeError, ValueError):
                    continue
                if message.src in self.system.targets(node, 1) and math.isfinite(drain_s) and math.isfinite(sent_s):
                    self._backlog.setdefault(node, {})[message.src] = (max(0.0, drain_s), sent_s)
                continue
            if isinstance(payload, Mapping) and payload.get("kind") == SWAP_KIND:
                offer = SwapOffer.from_payload(message.src, node, payload)
                if offer is not None:
                    agent.receive_offer(offer)
                continue
            report = ReceiverReport.from_payload(message.src, payload)
            if report is not None:
                agent.receive(report)

    def _round(self, agent: NodeAgent, now: float) -> list[ControlMessage]:
        node = agent.name
        out: list[ControlMessage] = []
        for k in sorted(agent.hosted, reverse=True):
            report = agent.report(k, now, self._max_age_s)
            for sender in self.system.senders(node, k):
                if sender != node:
                    addressed = agent.report_to(report, sender)
                    out.append(ControlMessage(src=node, dst=sender, payload=addressed.to_payload(),
                                              size_bytes=self.report_bytes(addressed)))
        agent.update(now, self._max_age_s)
        for offer in agent.offers_out:
            out.append(ControlMessage(src=node, dst=offer.dst, payload=offer.to_payload(), size_bytes=self.message_bytes))
        if self.rounds_per_period > 1:
            for k in agent.offload_stages:
                for j in agent.targets[k]:
                    if j != node:
                        payload = {"kind": FLOW_KIND, "stage": k, "flow": agent.flow_to(j, k), "sent_s": now}
                        out.append(ControlMessage(src=node, dst=j, payload=payload, size_bytes=self.message_bytes))
        return out

    def report_bytes(self, report: ReceiverReport) -> int:
        """Wire size of a report: ``message_bytes`` for its fixed fields plus each listed
        out-flow (:data:`OUT_FLOW_BYTES`) and accepted swap (:data:`ACCEPTED_BYTES`), so the
        control plane's load on the backhaul grows with what the report carries."""
        return self.message_bytes + OUT_FLOW_BYTES * len(report.out_flows) + ACCEPTED_BYTES * len(report.accepted)

    def _agent(self, node: NodeName) -> NodeAgent:
        try:
            return self.agents[node]
        except KeyError:
            raise KeyError(f"unknown node {node!r}") from None

    def _observe(self, agent: NodeAgent, m: NodeMeasurements) -> None:
        arrivals = {k: float(m.arrivals_per_s.get(k, 0.0)) for k in agent.hosted}
        demand = {}
        admit = self._admit.get(agent.name, 1.0)
        for k in agent.offload_stages:
            if k == 1 and admit < 1.0:  # what it admits of its offered load (the routed count lags)
                demand[k] = admit * float(m.external_arrivals_per_s)
            elif k == 1:
                raw = float(m.forwarded_per_s.get(1, m.external_arrivals_per_s))
                demand[k] = self._smoothed_demand(agent.name, raw, float(m.period_s))
            elif k in m.forwarded_per_s:
                demand[k] = float(m.forwarded_per_s[k])
            else:
                demand[k] = arrivals.get(k - 1, 0.0) * (1.0 - agent.e.get(k - 1, 1.0))
        capacity = {j: float(v) / 8.0 for j, v in m.link_rate_bps.items()}
        agent.observe(
            arrivals,
            demand,
            service_rate_per_s={k: float(v) for k, v in m.service_rate_per_s.items()},
            capacity_bytes_per_s=capacity,
        )


def converged_policy(system: SystemModel, rounds: int = 300, config: DtoeeConfig | None = None):
    """StaticPolicy holding the strategy DTO-EE reaches in memory after ``rounds``."""
    from optimizer.policy import StaticPolicy

    history = run_in_memory(system, rounds, config=config)
    return StaticPolicy(history.x, history.theta, default_threshold=0.0)
