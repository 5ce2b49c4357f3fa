"""One scenario seed derives every random stream: ns-3's run number, numpy's and torch's.

Streams are independent children of one ``numpy.random.SeedSequence``, one per purpose
(and one per UE for arrivals), so changing the policy leaves arrivals and samples
unchanged: two policies run with the same seed see the same workload (common random
numbers).
"""

from __future__ import annotations

import numpy as np

STREAMS = ("samples", "routing", "service", "placement")


def ns3_run_number(seed: int) -> int:
    """ns-3's RngRun for a scenario seed (RngSeed stays 1)."""
    return seed + 1


def numpy_streams(seed: int, num_ues: int) -> dict[str, np.random.Generator]:
    root = np.random.SeedSequence(seed)
    children = root.spawn(len(STREAMS) + num_ues)
    rngs = {name: np.random.default_rng(child) for name, child in zip(STREAMS, children)}
    for ue in range(num_ues):
        rngs[f"arrivals/{ue}"] = np.random.default_rng(children[len(STREAMS) + ue])
    return rngs


def torch_seed(seed: int) -> int:
    return int(np.random.SeedSequence(seed).generate_state(1)[0])
