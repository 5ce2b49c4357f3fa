"""DTO-EE optimizer: system model, centralised optimum (cvxpy), per-node DTO-EE agents, baselines.

Pure Python + numpy/cvxpy; never imports ns-3 or torch. Modules:

* :mod:`optimizer.policy`       the contract the co-simulation uses (Policy, AdaptivePolicy, ...)
* :mod:`optimizer.exit_curves`  exit curves, concave hull of the correct share, threshold read-back
* :mod:`optimizer.system`       SystemModel, flows, ``evaluate`` (D, A, J = D - w A), random instances
* :mod:`optimizer.queueing`     M/M/1 costs and the exterior-point penalty
* :mod:`optimizer.marginals`    DTO-R / DTO-O marginals and local solves (pure functions)
* :mod:`optimizer.centralized`  the convex program (cvxpy, Clarabel) and the gap definition
* :mod:`optimizer.dtoee`        node agents, ``run_in_memory``, ``DtoeePolicy``
* :mod:`optimizer.baselines`    static (offline) baselines, ``BASELINES``
* :mod:`optimizer.dispatchers`  per-task dispatchers (SED, JSQ, power of two) and the tuned threshold
* :mod:`optimizer.estimators`   what a node estimates from its own services and transfers
* :mod:`optimizer.registry`     the one registry of policy kinds, ``make_policy``, aliases
* :mod:`optimizer.report`       ``optimize_report`` (for ``dtoee optimize``)
"""
