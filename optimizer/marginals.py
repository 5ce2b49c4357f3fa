"""Marginal costs and the small local solves of DTO-R / DTO-O (pure functions).

Total cost (objective times ``sum_i lambda_i``, so marginals are in seconds per task)::

    T = sum_j N(rho_j) + sum_(i,j) [N(u_ij) + p_ij sum_k f_ij^k] - w sum_(j,k) Lambda_j^k A_k(e_j^k)

Receiver marginal (DTO-R), the cost of one more unit of stage-k flow arriving at host j,
with its exit share e = e_j^k fixed and q = 1 - e continuing::

    delta_j^k = N'(rho_j) / mu_j^k  -  w A_k(e)  +  q Delta_j^{k+1}          (k < K)
    delta_j^K = N'(rho_j) / mu_j^K  -  w A_K(1)

Offloader marginal (DTO-O), per unit of stage-k flow at node i routed by x_i^k::

    Delta_i^k = sum_j x_ij^k (l_ij^k + delta_j^k),   l_ij^k = N'(u_ij) b_k / C_ij + p_ij  (0 if j = i)

Curvatures (second derivatives along the same paths, the Gallager / Bertsekas-Gafni-
Gallager scaling) are carried alongside: ``h_j^k = N''(rho_j)/mu_j^k^2 + q^2 H_j^{k+1}``,
``H_i^k = sum_j x_ij^k (l''_ij^k + h_j^k)``, ``l''_ij^k = N''(u_ij) b_k^2 / C_ij^2``.

Optimality (Gallager's condition, sufficient here because T is convex in the flows): every
offloader sends only to hosts with minimal ``l_ij^k + delta_j^k``, and every exit share
minimises ``-w A_k(e) + (1 - e) Delta_j^{k+1}`` (the marginal delay saved by exiting equals
w times the marginal accuracy lost).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from optimizer.exit_curves import ConcaveHull
from optimizer.queueing import PenalizedQueue
from optimizer.system import NodeName, Offloading, SystemModel, link_utilisation, node_utilisation, propagate

MIN_CURVATURE = 1e-12


def node_marginal(queue: PenalizedQueue, rho: float, service_rate_per_s: float) -> tuple[float, float]:
    """(N'(rho)/mu, N''(rho)/mu^2): first and second derivative of N(rho_j) in Lambda_j^k."""
    return queue.first(rho) / service_rate_per_s, queue.second(rho) / service_rate_per_s**2


def link_marginal(
    queue: PenalizedQueue, utilisation: float, transfer_bytes: float, capacity_bytes_per_s: float, propagation_s: float
) -> tuple[float, float]:
    """(l, l''): derivative of the link's N(u) + p * flow in the stage-k flow, and its second."""
    scale = transfer_bytes / capacity_bytes_per_s
    return queue.first(utilisation) * scale + propagation_s, queue.second(utilisation) * scale * scale


def receiver_marginal(
    node_first: float,
    node_second: float,
    w: float,
    correct_share: float,
    continue_share: float,
    continue_marginal: float,
    continue_curvature: float,
) -> tuple[float, float]:
    """(delta_j^k, h_j^k) from the node term, the exit's correct share A_k(e) and downstream."""
    q = continue_share
    delta = node_first - w * correct_share + q * continue_marginal
    curvature = node_second + q * q * continue_curvature
    return delta, curvature


def offloader_marginal(
    probabilities: np.ndarray, path_marginal: np.ndarray, path_curvature: np.ndarray
) -> tuple[float, float]:
    """(Delta_i^k, H_i^k) = x-weighted path marginals and curvatures."""
    return float(probabilities @ path_marginal), float(probabilities @ path_curvature)


def scaled_simplex_step(
    flow: np.ndarray,
    marginal: np.ndarray,
    curvature: np.ndarray,
    upper: np.ndarray,
    total: float,
) -> np.ndarray:
    """Scaled projected-gradient step of one offloader on its own outgoing flows.

    Solves exactly::

        min_f  sum_j a_j (f_j - f0_j) + 1/2 sum_j H_j (f_j - f0_j)^2
        s.t.   sum_j f_j = total,  0 <= f_j <= upper_j

    (diagonal Newton model of T along each path, projected on the capped simplex).
    KKT: ``f_j(nu) = clip(f0_j - (a_j + nu) / H_j, 0, upper_j)``; ``sum_j f_j(nu)`` is
    piecewise linear and non-increasing in ``nu``, so ``nu`` is found from its breakpoints.
    Requires ``sum(upper) >= total``.
    """
    f0 = np.asarray(flow, dtype=float)
    a = np.asarray(marginal, dtype=float)
    H = np.maximum(np.asarray(curvature, dtype=float), MIN_CURVATURE)
    ub = np.maximum(np.asarray(upper, dtype=float), 0.0)
    if ub.sum() < total * (1 - 1e-12):
        raise ValueError(f"upper bounds sum to {ub.sum()!r} < total {total!r}")
    if f0.size == 1:
        return np.array([total])
    nus = np.concatenate([H * (f0 - ub) - a, H * f0 - a])
    nus.sort()
    sums = np.clip(f0[None, :] - (a[None, :] + nus[:, None]) / H[None, :], 0.0, ub[None, :]).sum(axis=1)
    b = int(np.argmax(sums <= total))
    if b == 0:
        nu = nus[0]
    else:
        s_hi, s_lo = sums[b - 1], sums[b]
        nu = nus[b - 1] if s_hi == s_lo else nus[b - 1] + (s_hi - total) / (s_hi - s_lo) * (nus[b] - nus[b - 1])
    f = np.clip(f0 - (a + nu) / H, 0.0, ub)
    # remove rounding drift, keeping bounds
    drift = total - f.sum()
    if drift != 0.0:
        room = (ub - f) if drift > 0 else f
        if room.sum() > 0:
            f = f + drift * room / room.sum()
    return np.clip(f, 0.0, ub)


def best_exit_share(
    hull: ConcaveHull,
    w: float,
    continue_marginal: float,
    arrival_per_s: float,
    continue_curvature: float,
    current_exit_share: float,
) -> float:
    """Exit share after one DTO-O threshold step (exact 1-D proximal Newton step).

    Per unit of arrivals Lambda = Lambda_j^k, with Delta = Delta_j^{k+1} and H its curvature::

        min_{e in [E0, 1]}  -w A_k(e) + (1 - e) Delta + 1/2 H Lambda (e - e_0)^2

    A_k is piecewise linear (the hull), so the minimum lies at a vertex or at a segment's
    stationary point ``e = e_0 + (w s_m + Delta) / (H Lambda)``; all are checked. At the
    optimum ``w A_k'(e) = -Delta``: marginal delay saved by exiting = w x marginal accuracy lost.
    """
    E = hull.vertex_exit_share
    if E.size == 1:
        return float(E[0])
    scale = continue_curvature * max(arrival_per_s, 0.0)
    candidates = [E]
    if scale > 0:
        stationary = current_exit_share + (w * hull.slopes + continue_marginal) / scale
        candidates.append(np.clip(stationary, E[:-1], E[1:]))
    e = np.concatenate(candidates)
    values = -w * np.interp(e, E, hull.vertex_correct_share) + (1.0 - e) * continue_marginal
    if scale > 0:
        values = values + 0.5 * scale * (e - current_exit_share) ** 2
    return float(e[int(np.argmin(values))])


@dataclass(frozen=True)
class GlobalMarginals:
    """Marginals of a whole strategy (for read-back of zero-flow choices and for tests).

    delta: {(j,k): delta_j^k}; path: {(i,k): {j: l_ij^k + delta_j^k}}; offload: {(i,k): one-hot
    distribution on the cheapest target}; exit_share: {(j,k): the per-unit best exit share}.
    """

    delta: dict[tuple[NodeName, int], float]
    path: dict[tuple[NodeName, int], dict[NodeName, float]]
    offload: dict[tuple[NodeName, int], dict[NodeName, float]]
    exit_share: dict[tuple[NodeName, int], float]


def cheapest_targets(
    system: SystemModel,
    x: Offloading,
    exit_share: Mapping[tuple[NodeName, int], float],
    queue: PenalizedQueue | None = None,
) -> GlobalMarginals:
    """Compute every marginal of the strategy (x, e) at once (centralised helper)."""
    queue = queue or PenalizedQueue()
    K = system.num_stages
    full_x = {
        (i, k): dict(x.get((i, k)) or {j: 1.0 / len(system.targets(i, k)) for j in system.targets(i, k)})
        for k in range(1, K + 1)
        for i in system.offloaders(k)
    }
    flows = propagate(system, full_x, exit_share)
    rho = node_utilisation(system, flows.arrival)
    util = link_utilisation(system, flows.offload)
    delta: dict[tuple[NodeName, int], float] = {}
    path: dict[tuple[NodeName, int], dict[NodeName, float]] = {}
    offload_delta: dict[tuple[NodeName, int], float] = {}
    best_e: dict[tuple[NodeName, int], float] = {}
    for k in range(K, 0, -1):
        hull = system.hull(k)
        for j in system.hosts[k]:
            first, _ = node_marginal(queue, rho[j], system.service_rate_per_s[(j, k)])
            if k == K:
                delta[(j, k)] = first - system.w * hull.value(1.0)
                continue
            cont = offload_delta[(j, k + 1)]
            e = flows.exit_share[(j, k)]
            delta[(j, k)] = first - system.w * hull.value(e) + (1.0 - e) * cont
            best_e[(j, k)] = best_exit_share(hull, system.w, cont, 0.0, 0.0, e)
        for i in (i for (i, kk) in system.decision_keys() if kk == k):
            marg = {}
            for j in system.targets(i, k):
                if j == i:
                    marg[j] = delta[(j, k)]
                else:
                    link = system.links[(i, j)]
                    first, _ = link_marginal(queue, util[(i, j)], system.transfer_bytes[k], link.capacity_bytes_per_s, link.propagation_s)
                    marg[j] = first + delta[(j, k)]
            path[(i, k)] = marg
            probs = full_x.get((i, k)) or {j: 1.0 / len(marg) for j in marg}
            offload_delta[(i, k)] = sum(probs[j] * marg[j] for j in marg)
    offload = {}
    for key, marg in path.items():
        best = min(marg, key=marg.get)
        offload[key] = {j: (1.0 if j == best else 0.0) for j in marg}
    return GlobalMarginals(delta=delta, path=path, offload=offload, exit_share=best_e)
