"""Shared fixtures. Simulations run in children forked from this pytest process, which
imports ns-3 once (``ns3_session``); torch stays on one thread here so forks never hang."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def ns3_session():
    """Import ns-3 and load the C++ glue once, in this process, before any fork."""
    from ns3_glue.build import load_glue

    return load_glue()


@pytest.fixture(scope="session")
def mlp_model():
    from inference import load_staged_model

    return load_staged_model("mlp", seed=0)
