"""Centralised optimum of the DTO-EE problem: one convex program, solved with cvxpy/Clarabel.

Variables (flows rather than probabilities, continuing flow rather than threshold):
``f_ij^k >= 0`` flow node i sends to host j for stage k, ``g_j^k >= 0`` flow that continues
after stage k at j, and hypograph variables ``c_j^k`` (correct rate out of exit k at j)::

    minimise   sum_j inv_pos(1 - rho_j) + sum_(i,j) inv_pos(1 - u_ij) + sum_(i,j,k) p_ij f_ij^k
               - w sum_(j,k) c_j^k                    (constants -1 per queue dropped)
    s.t.       Lambda_j^k = sum_i f_ij^k
               sum_j f_ij^1 = lambda_i;   sum_l f_jl^{k+1} = g_j^k;   g_j^K = 0
               0 <= g_j^k <= (1 - E0_k) Lambda_j^k     (E0_k: smallest reachable exit share)
               rho_j = sum_k Lambda_j^k / mu_j^k,   u_ij = sum_k b_k f_ij^k / C_ij
               c_j^k <= (a_m + s_m) Lambda_j^k - s_m g_j^k   for every hull line m
               (perspective of the concave hull A_k(e) = min_m (a_m + s_m e), e = 1 - g/Lambda)

Dividing by ``sum_i lambda_i`` gives ``J = D - w A`` (see :mod:`optimizer.system`). The
problem is built once with ``cp.Parameter`` for lambda, 1/mu, 1/C, p and w (DPP), so a re-solve
after a parameter change skips canonicalisation.

Gap definition used throughout the package::

    gap = (J - J*) / D*

with ``J*`` the optimum objective and ``D*`` the mean delay at the optimum (both from
:func:`optimizer.system.evaluate_exit_shares` at the solver's flows). It is a share of the
optimal mean delay, so it does not blow up when ``J*`` is near 0.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Mapping

import cvxpy as cp
import numpy as np

from optimizer.exit_curves import threshold_for_exit_share
from optimizer.system import NodeName, SystemModel, evaluate_exit_shares

_FLOW_EPS = 1e-9
_DUST = 1e-7


@dataclass(frozen=True)
class Solution:
    """Optimal strategy and its value.

    x: {(i, k): {j: x_ij^k}}; theta: {(j, k): theta_j^k} (0 for k = K); exit_share:
    {(j, k): e_j^k}; mean_delay_s, accuracy, objective: D*, A*, J* = D* - w A* (hull model);
    solve_time_s: wall time of ``problem.solve``; status: cvxpy status string.
    """

    x: dict[tuple[NodeName, int], dict[NodeName, float]]
    theta: dict[tuple[NodeName, int], float]
    exit_share: dict[tuple[NodeName, int], float]
    mean_delay_s: float
    accuracy: float
    objective: float
    solve_time_s: float
    status: str


def gap_to_optimum(objective: float, optimum: Solution) -> float:
    """(J - J*) / D*: the excess objective as a share of the optimal mean delay."""
    return (objective - optimum.objective) / optimum.mean_delay_s


class CentralizedSolver:
    """The convex program of the module docstring, built once per topology.

    ``solve`` accepts new lambda / mu / w values for the same topology (hosts, links).
    """

    def __init__(self, system: SystemModel) -> None:
        self.system = system
        K = system.num_stages
        self._pairs = [
            (i, j, k)
            for k in range(1, K + 1)
            for i in system.offloaders(k)
            for j in system.targets(i, k)
        ]
        self._pair_index = {p: n for n, p in enumerate(self._pairs)}
        self._host_keys = [(j, k) for k in range(1, K + 1) for j in system.hosts[k]]
        self._host_index = {p: n for n, p in enumerate(self._host_keys)}
        self._cont_keys = [(j, k) for (j, k) in self._host_keys if k < K]
        self._cont_index = {p: n for n, p in enumerate(self._cont_keys)}

        f = cp.Variable(len(self._pairs), nonneg=True, name="f")
        g = cp.Variable(max(len(self._cont_keys), 1), nonneg=True, name="g")
        c = cp.Variable(len(self._host_keys), name="c")
        self._f, self._g, self._c = f, g, c

        offloaders1 = system.offloaders(1)
        self._lam = cp.Parameter(len(offloaders1), nonneg=True, name="lambda")
        self._inv_mu = cp.Parameter(len(self._host_keys), nonneg=True, name="inv_mu")
        used_links = sorted({(i, j) for (i, j, k) in self._pairs if i != j})
        self._links = used_links
        self._inv_cap = cp.Parameter(max(len(used_links), 1), nonneg=True, name="inv_capacity")
        self._prop = cp.Parameter(max(len(used_links), 1), nonneg=True, name="propagation_s")
        self._w = cp.Parameter(nonneg=True, name="w")

        def arrivals(j: NodeName, k: int):
            idx = [self._pair_index[(i, j, k)] for i in system.senders(j, k) if (i, j, k) in self._pair_index]
            return cp.sum(f[idx]) if idx else cp.Constant(0.0)

        Lam = {key: arrivals(*key) for key in self._host_keys}
        constraints = []
        for n, i in enumerate(offloaders1):
            idx = [self._pair_index[(i, j, 1)] for j in system.targets(i, 1)]
            constraints.append(cp.sum(f[idx]) == self._lam[n])
        for (j, k), n in self._cont_index.items():
            idx = [self._pair_index[(j, l, k + 1)] for l in system.targets(j, k + 1)]
            constraints.append(cp.sum(f[idx]) == g[n])
            e0 = system.exit_curves[k].min_exit_share
            constraints.append(g[n] <= (1.0 - e0) * Lam[(j, k)])
        for (j, k), n in self._host_index.items():
            hull = system.hull(k)
            if k == K or hull.slopes.size == 0:
                # last exit (g = 0) or a curve with one reachable exit share: A_k(1) Lambda
                constraints.append(c[n] <= hull.value(1.0) * Lam[(j, k)])
                continue
            g_expr = g[self._cont_index[(j, k)]]
            a = np.asarray(hull.intercepts)
            s = np.asarray(hull.slopes)
            constraints.append(c[n] <= (a + s) * Lam[(j, k)] - s * g_expr)

        cost = 0
        for j in system.nodes:
            stages = system.stages_hosted(j)
            if not stages:
                continue
            rho = sum(self._inv_mu[self._host_index[(j, k)]] * Lam[(j, k)] for k in stages)
            cost = cost + cp.inv_pos(1 - rho)
        for n, (i, j) in enumerate(used_links):
            idx = [(self._pair_index[(i, j, k)], k) for k in range(1, K + 1) if (i, j, k) in self._pair_index]
            byte_rate = sum(system.transfer_bytes[k] * f[p] for p, k in idx)
            cost = cost + cp.inv_pos(1 - self._inv_cap[n] * byte_rate)
            cost = cost + self._prop[n] * sum(f[p] for p, _ in idx)
        cost = cost - self._w * cp.sum(c)
        self._problem = cp.Problem(cp.Minimize(cost), constraints)
        self._set_parameters(None, None, None)

    def _set_parameters(
        self,
        external_rate_per_s: Mapping[NodeName, float] | None,
        service_rate_per_s: Mapping[tuple[NodeName, int], float] | None,
        w: float | None,
    ) -> None:
        system = self.system
        lam = dict(system.external_rate_per_s)
        if external_rate_per_s is not None:
            lam.update({i: float(v) for i, v in external_rate_per_s.items()})
        self._lam.value = np.array([lam[i] for i in system.offloaders(1)], dtype=float)
        mu = dict(system.service_rate_per_s)
        if service_rate_per_s is not None:
            mu.update({key: float(v) for key, v in service_rate_per_s.items()})
        self._inv_mu.value = np.array([1.0 / mu[key] for key in self._host_keys])
        if self._links:
            self._inv_cap.value = np.array([1.0 / system.links[l].capacity_bytes_per_s for l in self._links])
            self._prop.value = np.array([system.links[l].propagation_s for l in self._links])
        else:
            self._inv_cap.value = np.zeros(1)
            self._prop.value = np.zeros(1)
        self._w.value = float(system.w if w is None else w)

    def solve(
        self,
        *,
        external_rate_per_s: Mapping[NodeName, float] | None = None,
        service_rate_per_s: Mapping[tuple[NodeName, int], float] | None = None,
        w: float | None = None,
    ) -> Solution:
        """Solve (Clarabel) for the given parameters (defaults: the system's own values).

        Changing lambda only among nodes that already have lambda_i > 0 keeps the topology;
        otherwise build a new solver.
        """
        if external_rate_per_s is not None:
            new_sources = {i for i, v in external_rate_per_s.items() if v > 0} - set(self.system.offloaders(1))
            if new_sources:
                raise ValueError(
                    f"external_rate_per_s gives new sources {sorted(new_sources)}; build a new solver"
                )
        self._set_parameters(external_rate_per_s, service_rate_per_s, w)
        started = time.perf_counter()
        try:
            self._problem.solve(solver=cp.CLARABEL)
        except cp.error.SolverError as exc:
            return self._failed(f"solver_error: {exc}", time.perf_counter() - started)
        elapsed = time.perf_counter() - started
        status = str(self._problem.status)
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or self._f.value is None:
            return self._failed(status, elapsed)
        system = self.system
        if external_rate_per_s is not None or service_rate_per_s is not None or w is not None:
            system = _with_parameters(system, external_rate_per_s, service_rate_per_s, w)
        return _read_back(system, self, elapsed, status)

    def _failed(self, status: str, elapsed: float) -> Solution:
        return Solution({}, {}, {}, math.inf, math.nan, math.inf, elapsed, status)


def _with_parameters(system, external_rate_per_s, service_rate_per_s, w) -> SystemModel:
    from dataclasses import replace

    lam = dict(system.external_rate_per_s)
    lam.update(external_rate_per_s or {})
    mu = dict(system.service_rate_per_s)
    mu.update(service_rate_per_s or {})
    return replace(
        system,
        external_rate_per_s=lam,
        service_rate_per_s=mu,
        w=system.w if w is None else w,
    )


def _read_back(system: SystemModel, solver: CentralizedSolver, elapsed: float, status: str) -> Solution:
    """Probabilities x = f / phi and thresholds theta = e_k^{-1}(1 - g / Lambda)."""
    from optimizer.marginals import cheapest_targets  # local import: marginals imports system only

    K = system.num_stages
    f = np.maximum(np.asarray(solver._f.value, dtype=float), 0.0)
    g = np.maximum(np.asarray(solver._g.value, dtype=float), 0.0) if solver._cont_keys else np.zeros(0)
    flow = {p: float(f[n]) for n, p in enumerate(solver._pairs)}
    arrival = {key: 0.0 for key in solver._host_keys}
    for (i, j, k), v in flow.items():
        arrival[(j, k)] += v

    exit_share: dict[tuple[NodeName, int], float] = {}
    for (j, k) in solver._host_keys:
        if k == K:
            exit_share[(j, k)] = 1.0
            continue
        lam = arrival[(j, k)]
        e0 = system.exit_curves[k].min_exit_share
        if lam > _FLOW_EPS:
            cont = float(g[solver._cont_index[(j, k)]])
            e = float(min(1.0, max(e0, 1.0 - cont / lam)))
            if e - e0 < _DUST:
                e = e0
            elif 1.0 - e < _DUST:
                e = 1.0
            exit_share[(j, k)] = e
        else:
            exit_share[(j, k)] = math.nan  # fixed below from marginals

    x: dict[tuple[NodeName, int], dict[NodeName, float]] = {}
    zero_flow: list[tuple[NodeName, int]] = []
    for (i, k) in system.decision_keys():
        targets = system.targets(i, k)
        out = np.array([flow.get((i, j, k), 0.0) for j in targets])
        total = out.sum()
        if total > _FLOW_EPS:
            probs = out / total
            probs[probs < _DUST] = 0.0  # solver-tolerance dust
            probs = probs / probs.sum()
            x[(i, k)] = {j: float(p) for j, p in zip(targets, probs)}
        else:
            zero_flow.append((i, k))
            x[(i, k)] = {j: 1.0 / len(targets) for j in targets}
    if zero_flow or any(math.isnan(e) for e in exit_share.values()):
        fill = cheapest_targets(system, x, {key: (0.5 if math.isnan(e) else e) for key, e in exit_share.items()})
        for key in zero_flow:
            x[key] = fill.offload[key]
        for key, e in exit_share.items():
            if math.isnan(e):
                exit_share[key] = fill.exit_share[key]
    theta = {
        (j, k): (0.0 if k == K else threshold_for_exit_share(system.exit_curves[k], e))
        for (j, k), e in exit_share.items()
    }
    ev = evaluate_exit_shares(system, x, exit_share)
    return Solution(
        x=x,
        theta=theta,
        exit_share=exit_share,
        mean_delay_s=ev.mean_delay_s,
        accuracy=ev.accuracy,
        objective=ev.objective,
        solve_time_s=elapsed,
        status=status,
    )


def solve_centralized(system: SystemModel) -> Solution:
    """Build and solve the convex program once."""
    return CentralizedSolver(system).solve()


@dataclass(frozen=True)
class SelfConsistentSolution:
    """The optimum under exit curves conditional on survival (:func:`solve_self_consistent`).

    solution: the round whose strategy scored best on the samples (sample-exact J), the exact
    convex optimum of ``system``; system: ``system`` with the conditional exit curves that
    solve used (give it to DTO-EE or a baseline: they then optimise the model whose optimum
    ``solution`` is); best_round: which round that was; exact: that strategy scored on the samples (conditional
    exit shares, sample-exact accuracy, the optimizer's M/M/1 delay); residual_accuracy: the
    hull-model accuracy of ``solution`` minus the sample-exact one; rounds: convex solves
    made; residuals: after each solve, mean |R_r - Rbar_{r-1}| (how far the survival weights
    the strategy induces are from those its curves were measured on); damped_from: the round
    from which the weights were averaged (None: never); converged: the last residual was
    <= ``tol`` (the iteration reached a fixed point; ``residuals[best_round - 1]`` is how far
    the returned round is from one).
    """

    solution: Solution
    system: SystemModel
    exact: Any
    residual_accuracy: float
    best_round: int
    rounds: int
    residuals: tuple[float, ...]
    damped_from: int | None
    converged: bool


def conditional_system(system: SystemModel, table, reach: np.ndarray) -> SystemModel:
    """``system`` with exit curves conditional on survival: curve k is measured on the samples
    of ``table`` weighted by ``reach[:, k-1]`` = P(sample reaches exit k)
    (:func:`optimizer.exit_curves.conditional_exit_curve`; weights of a strategy from
    :func:`optimizer.system.sample_flows`)."""
    from dataclasses import replace

    from optimizer.exit_curves import conditional_exit_curve

    curves = {k: conditional_exit_curve(table, k, reach[:, k - 1]) for k in range(1, system.num_stages + 1)}
    return replace(system, exit_curves=curves)


class InfeasibleProblem(ValueError):
    """The solver proved the problem infeasible: no strategy serves the offered load
    (every node below utilisation 1), whatever the thresholds."""


def solve_self_consistent(system: SystemModel, table=None, *, max_rounds: int = 40,
                          tol: float = 1e-3) -> SelfConsistentSolution:
    """Optimise with exit curves conditional on survival: a fixed point in the survival weights.

    ``table``: the per-sample confidences of the split to calibrate on (default: the
    system's ``calibration_samples``, the validation split). R (N x K), R[s, k-1] = P(sample s
    reaches exit k), defines the curves (:func:`conditional_system`); a strategy defines R
    (:func:`optimizer.system.sample_flows`). Start from Rbar_0 = 1 (the unconditional curves:
    the old model, with the selection effect). Round r:

    1. solve the convex program of the module docstring with the curves of Rbar_{r-1};
    2. take the weights R_r its strategy induces, score the strategy on the samples (sample-
       exact J = D - w A) and the residual rho_r = mean |R_r - Rbar_{r-1}|;
    3. stop if rho_r <= ``tol`` (the strategy re-induces the curves it was solved with);
    4. else Rbar_r = Rbar_{r-1} + a_r (R_r - Rbar_{r-1}): undamped (a_r = 1) while rho
       decreases; from the first round it does not (a cycle or a stall, r0) on, the running
       mean a_r = 1 / (r - r0 + 2).

    What it guarantees (proof sketch):

    * each solve is the exact optimum of a convex model (Clarabel);
    * damped phase: Rbar is the mean of the R's since r0, so it moves by at most
      1 / (r - r0 + 2) per round and the curves (ratios of R-weighted sums) by O(1/r); if the
      R's cycle with period p (as the undamped map does on the LLaMA-style model), Rbar
      tends to the cycle's mean at rate O(p / r);
    * converged (rho <= tol): the last round's curves are, to tol, the ones its own strategy
      induces: a fixed point;
    * whatever happens, the round whose strategy scored best on the sample-exact objective
      is returned with the curves it was solved with: ``solution`` is the exact optimum of
      the model handed on (``system``), so the oracle and DTO-EE optimise one model, and it is
      never worse than round 1's, the optimum of the old unconditional model (the
      best-so-far is monotone non-increasing). The fixed point is not always the best round
      (the hull over-estimates non-concave conditional curves): ``best_round``,
      ``residuals`` and ``residual_accuracy`` say how self-consistent the returned one is.

    It is not a global optimum of the non-convex joint problem (routing and thresholds). The
    hull the solve uses over-estimates a non-concave curve, and one curve per stage averages
    the upstream mixes of different hosts: ``residual_accuracy``. Every accuracy a run is
    predicted or scored with is :func:`optimizer.system.sample_flows`, exact whatever this
    returns.
    """
    from optimizer.system import assess_flows, sample_flows

    table = table if table is not None else system.calibration_samples
    if table is None:
        raise ValueError("solve_self_consistent needs a SampleTable: pass table= or set system.calibration_samples")
    reach_bar = np.ones((table.num_samples, system.num_stages))
    best = None
    residuals: list[float] = []
    damped_from: int | None = None
    for round_ in range(1, max_rounds + 1):
        current = conditional_system(system, table, reach_bar)
        solution = solve_centralized(current)
        if not solution.x:
            if best is None:
                error = InfeasibleProblem if "infeasible" in str(solution.status) else ValueError
                raise error(f"the centralised problem was not solved: {solution.status}")
            break
        exact = sample_flows(system, solution.x, solution.theta, table)
        scored = assess_flows(system, exact.flows, exact.correct_share)
        if best is None or scored.objective < best[0]:
            best = (scored.objective, solution, current, scored, round_)
        residuals.append(float(np.abs(exact.reach - reach_bar).mean()))
        if residuals[-1] <= tol:
            break
        if damped_from is None and len(residuals) >= 2 and residuals[-1] >= residuals[-2]:
            damped_from = round_
        step = 1.0 if damped_from is None else 1.0 / (round_ - damped_from + 2)
        reach_bar = reach_bar + step * (exact.reach - reach_bar)
    converged = residuals[-1] <= tol
    _, solution, current, scored, best_round = best
    return SelfConsistentSolution(
        solution=solution, system=current, exact=scored,
        residual_accuracy=solution.accuracy - scored.accuracy, best_round=best_round, rounds=len(residuals),
        residuals=tuple(residuals), damped_from=damped_from, converged=converged)
