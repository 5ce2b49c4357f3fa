"""Seed handling: the one place where a user seed is validated and sub-seeds are derived.

No function in `inference` touches global RNG state permanently: model initialisation and
training run inside :func:`scoped_torch_rng`, which restores torch's global generator on exit,
and data shuffling uses local ``torch.Generator`` / ``numpy.random.Generator`` objects.
"""
from __future__ import annotations

import contextlib
import hashlib
from typing import Iterator

import numpy as np
import torch


def normalize_seed(seed: int) -> int:
    """Return ``seed`` as a plain int in [0, 2**32); raise ValueError otherwise."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed={seed!r}: must be an int in [0, 2**32)")
    seed = int(seed)
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed={seed}: must be an int in [0, 2**32)")
    return seed


def derive_seed(seed: int, purpose: str) -> int:
    """A sub-seed for one purpose ("split", "init", "shuffle", ...), stable across runs."""
    digest = hashlib.sha256(f"{normalize_seed(seed)}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def torch_generator(seed: int, purpose: str) -> torch.Generator:
    """A local CPU generator seeded by ``derive_seed(seed, purpose)``."""
    g = torch.Generator()
    g.manual_seed(derive_seed(seed, purpose))
    return g


def numpy_generator(seed: int, purpose: str) -> np.random.Generator:
    """A local numpy generator seeded by ``derive_seed(seed, purpose)``."""
    return np.random.default_rng(derive_seed(seed, purpose))


@contextlib.contextmanager
def scoped_torch_rng(seed: int, purpose: str) -> Iterator[None]:
    """Seed torch's global CPU generator for the block, and restore its state afterwards.

    Needed because ``nn.Module`` initialisers and dropout draw from the global generator.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, purpose))
        yield


@contextlib.contextmanager
def scoped_threads(num_threads: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(num_threads)``, restoring the old value.

    ``None`` leaves the thread count as it is. Running torch ops with 1 thread keeps the
    process fork-safe (OpenMP's pool is never started with >1 thread).
    """
    if num_threads is None:
        yield
        return
    if not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads={num_threads!r}: must be a positive int or None")
    old = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def scoped_deterministic() -> Iterator[None]:
    """Enable ``torch.use_deterministic_algorithms(True)`` for the block, then restore."""
    old = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(old, warn_only=old_warn)
