"""Placement of stages on edge nodes under memory limits.

A node hosting a set S of stages, serving up to c tasks at once (its ``servers``), needs::

    need = sum(param_bytes[k] for k in S) + c * max(working_bytes[k] + kv_cache_bytes[k] for k in S)

All hosted weights stay resident; each task in service holds the working memory of the stage
it runs (activations, buffers) and that stage's KV cache. The worst case is counted: c tasks
at once, all on the stage that needs the most. Tasks waiting in the queue are not counted.
Stages are 1-based. A placement maps node name -> sorted list of stages; a stage may be
hosted by several nodes (DTO-EE's H_k), and every stage must be hosted at least once.
"""
from __future__ import annotations

from typing import Mapping, Sequence


def _per_stage(values: int | Sequence[int], num_stages: int, name: str) -> list[int]:
    if isinstance(values, int):
        values = [values] * num_stages
    values = [int(v) for v in values]
    if len(values) != num_stages or any(v < 0 for v in values):
        raise ValueError(f"{name}={values!r}: must be {num_stages} non-negative byte counts (one per stage)")
    return values


def node_memory_need_bytes(stages: Sequence[int], stage_param_bytes: Sequence[int],
                           working_bytes: int | Sequence[int] = 0, kv_cache_bytes: int | Sequence[int] = 0,
                           tasks_in_service: int = 1) -> int:
    """Bytes a node needs to host ``stages`` (1-based): their params + ``tasks_in_service``
    times the largest working set plus KV cache (module doc)."""
    work = _per_stage(working_bytes, len(stage_param_bytes), "working_bytes")
    kv = _per_stage(kv_cache_bytes, len(stage_param_bytes), "kv_cache_bytes")
    if not isinstance(tasks_in_service, int) or tasks_in_service < 1:
        raise ValueError(f"tasks_in_service={tasks_in_service!r}: must be an int >= 1")
    if not stages:
        return 0
    return sum(stage_param_bytes[k - 1] for k in stages) + tasks_in_service * max(work[k - 1] + kv[k - 1] for k in stages)


def check_placement(placement: Mapping[str, Sequence[int]], stage_param_bytes: Sequence[int],
                    nodes: Mapping[str, int], working_bytes: int | Sequence[int] = 0,
                    kv_cache_bytes: int | Sequence[int] = 0,
                    tasks_in_service: Mapping[str, int] | int = 1) -> None:
    """Raise ValueError if a node is unknown, a stage number is invalid, a stage is hosted
    nowhere, or a node's params + working memory + KV cache exceed its memory (the message
    names the node, its stages and the bytes needed vs available, term by term).
    ``tasks_in_service``: per node (missing nodes: 1) or one count for all."""
    k_max = len(stage_param_bytes)
    work = _per_stage(working_bytes, k_max, "working_bytes")
    kv = _per_stage(kv_cache_bytes, k_max, "kv_cache_bytes")
    hosted: set[int] = set()
    for node, stages in placement.items():
        if node not in nodes:
            raise ValueError(f"placement names node {node!r}, not in nodes {sorted(nodes)}")
        bad = [k for k in stages if not isinstance(k, int) or not 1 <= k <= k_max]
        if bad:
            raise ValueError(f"node {node!r}: stages {bad} invalid; stages are 1..{k_max}")
        if len(set(stages)) != len(stages):
            raise ValueError(f"node {node!r}: stages {list(stages)} list a stage twice")
        c = tasks_in_service if isinstance(tasks_in_service, int) else tasks_in_service.get(node, 1)
        need = node_memory_need_bytes(stages, stage_param_bytes, work, kv, c)
        if need > nodes[node]:
            params = sum(stage_param_bytes[k - 1] for k in stages)
            worst = max(stages, key=lambda k: (work[k - 1] + kv[k - 1], -k)) if stages else 1
            per_task = (f"{work[worst - 1]} working + {kv[worst - 1]} KV-cache bytes" if kv[worst - 1]
                        else f"{work[worst - 1]} working bytes")
            raise ValueError(
                f"node {node!r} cannot host stages {sorted(stages)}: needs {need} bytes "
                f"({params} parameter bytes + {c} task(s) in service x ({per_task}) of stage {worst}) "
                f"but has {nodes[node]} bytes")
        hosted.update(stages)
    missing = sorted(set(range(1, k_max + 1)) - hosted)
    if missing:
        raise ValueError(f"stages {missing} are hosted by no node")


def propose_placement(stage_param_bytes: Sequence[int], nodes: Mapping[str, int],
                      working_bytes: int | Sequence[int] = 0, replicas: int = 1) -> dict[str, list[int]]:
    """Greedy placement: each stage (largest first) goes to the ``replicas`` distinct nodes
    with the most free memory that can still fit it. Returns {node: sorted stages} for every
    node (possibly empty lists); the result passes ``check_placement``.
    ValueError if some stage fits on fewer than ``replicas`` nodes."""
    k_max = len(stage_param_bytes)
    if k_max < 1:
        raise ValueError("stage_param_bytes: must list at least one stage")
    if not isinstance(replicas, int) or not 1 <= replicas <= max(len(nodes), 1):
        raise ValueError(f"replicas={replicas!r}: must be an int in 1..{len(nodes)} (the number of nodes)")
    if any(m < 0 for m in nodes.values()):
        raise ValueError(f"nodes={dict(nodes)!r}: memory must be >= 0 bytes")
    work = _per_stage(working_bytes, k_max, "working_bytes")
    placement: dict[str, list[int]] = {n: [] for n in nodes}
    order = sorted(range(1, k_max + 1), key=lambda k: (-(stage_param_bytes[k - 1] + work[k - 1]), k))
    for k in order:
        free = {n: nodes[n] - node_memory_need_bytes(placement[n] + [k], stage_param_bytes, work) for n in nodes}
        fits = sorted((n for n in nodes if free[n] >= 0), key=lambda n: (-free[n], n))
        if len(fits) < replicas:
            raise ValueError(
                f"stage {k} ({stage_param_bytes[k - 1]} parameter bytes + {work[k - 1]} working bytes) fits on "
                f"{len(fits)} node(s) {fits}, needs {replicas}; node memory: {dict(nodes)}")
        for n in fits[:replicas]:
            placement[n].append(k)
    placement = {n: sorted(s) for n, s in placement.items()}
    check_placement(placement, stage_param_bytes, nodes, work)
    return placement
