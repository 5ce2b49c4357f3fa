"""One scenario seed derives every random stream: ns-3's run number, numpy's and torch's.

Streams are independent children of one ``numpy.random.SeedSequence``, one per purpose
(and one per UE for arrivals), so changing the policy leaves arrivals and samples
unchanged: two policies run with the same seed see the same workload (common random
numbers).
"""

from __future__ import annotations

import zlib

import numpy as np

STREAMS = ("samples", "routing", "service", "placement")
# Streams added later are keyed by name (a two-part spawn key, which no child of ``spawn``
# has), so adding one leaves every older stream, and older results, unchanged.
NAMED_STREAMS = ("task_sizes", "admission")


def ns3_run_number(seed: int) -> int:
    """ns-3's RngRun for a scenario seed (RngSeed stays 1)."""
    return seed + 1


def numpy_streams(seed: int, num_ues: int) -> dict[str, np.random.Generator]:
    root = np.random.SeedSequence(seed)
    children = root.spawn(len(STREAMS) + num_ues)
    rngs = {name: np.random.default_rng(child) for name, child in zip(STREAMS, children)}
    for ue in range(num_ues):
        rngs[f"arrivals/{ue}"] = np.random.default_rng(children[len(STREAMS) + ue])
    for name in NAMED_STREAMS:
        rngs[name] = named_stream(seed, name)
    return rngs


def named_stream(seed: int, name: str) -> np.random.Generator:
    """The stream of purpose ``name``: SeedSequence(seed) with spawn key (0, crc32(name))."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, zlib.crc32(name.encode()))))


def torch_seed(seed: int) -> int:
    return int(np.random.SeedSequence(seed).generate_state(1)[0])
