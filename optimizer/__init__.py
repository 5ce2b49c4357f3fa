"""DTO-EE optimizer: system model, centralised optimum (cvxpy), per-node DTO-EE agents, baselines.

Pure Python + numpy/cvxpy; never imports ns-3 or torch. Modules:

* :mod:`optimizer.policy`       the contract the co-simulation uses (Policy, AdaptivePolicy, ...)
* :mod:`optimizer.exit_curves`  exit curves, concave hull of the correct share, threshold read-back
* :mod:`optimizer.system`       SystemModel, flows, ``evaluate`` (D, A, J = D - w A), random instances
* :mod:`optimizer.queueing`     M/M/1 costs and the exterior-point penalty
* :mod:`optimizer.marginals`    DTO-R / DTO-O marginals and local solves (pure functions)
* :mod:`optimizer.centralized`  the convex program (cvxpy, Clarabel) and the gap definition
* :mod:`optimizer.dtoee`        node agents, ``run_in_memory``, ``DtoeePolicy``
* :mod:`optimizer.baselines`    baseline policies, ``BASELINES``, ``make_policy``
* :mod:`optimizer.report`       ``optimize_report`` (for ``dtoee optimize``)
"""
