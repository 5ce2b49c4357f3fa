"""Shared fixtures: the 20 seeded acceptance instances and their centralised optima."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for optimizer_testkit (importlib import mode)

from optimizer_testkit import ACCEPTANCE_SEEDS, acceptance_instance  # noqa: E402

from optimizer.centralized import solve_centralized  # noqa: E402


@pytest.fixture(scope="session")
def acceptance_cases():
    """[(seed, system, centralised Solution)] for the 20 acceptance instances."""
    return [(seed, system, solve_centralized(system)) for seed in ACCEPTANCE_SEEDS for system in [acceptance_instance(seed)]]
