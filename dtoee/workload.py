"""Per-task sizes: what each task uploads, and for a large decoder how long its prompt is.

Pure functions over the typed config (no ns-3, no torch). A scenario's ``[workload]``
(:class:`dtoee.config.WorkloadConfig`) gives per-task distributions; :class:`Workload` draws
one :class:`TaskSize` per task from the ``task_sizes`` stream (``dtoee.seeding``), so every
policy run with the same seed sees the same sizes, and answers what that task costs:

* ``input_bytes`` b_1 of the task (its LTE uplink payload, without the 16-byte frame header);
* ``stage_latency_s(size, node)[k-1]``: service time of stage k at speed_factor 1 (on
  ``node``'s device when it names one: ``node_latency_s`` / ``node_figures_for_tokens``);
* ``activation_bytes(size)[k-1]``: bytes offloaded after stage k (b_{k+1}).

Without a ``[workload]`` every task has the model's own figures (nothing is drawn from the
distributions, and the results of older scenarios are unchanged). With ``prompt_tokens`` a
decoder task of T tokens uploads 4 T bytes of int32 token ids (plus ``input_bytes`` if given,
e.g. an image), and its stage figures are the architecture's at sequence length T.

Every draw takes exactly one uniform number per distribution, by inverse CDF
(``quantile``), so the stream's use does not depend on the values drawn.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable

import numpy as np

from dtoee.config import SizeDistribution

TOKEN_ID_BYTES = 4  # a prompt travels as int32 token ids
MAX_SIZE = 1e12  # the largest size a scenario may give (config's bound): caps a log-normal's tail
_STANDARD_NORMAL = NormalDist()
_GRID_POINTS = 2000  # midpoint rule for expectations of continuous distributions


def quantile(dist: SizeDistribution, u: float) -> int:
    """F^-1(u) of ``dist`` for u in [0, 1), as a positive integer (bytes or tokens)."""
    if not 0.0 <= u < 1.0:
        raise ValueError(f"u = {u!r}; allowed: 0 <= u < 1")
    kind = dist.distribution
    if kind == "fixed":
        return max(1, round(dist.value))
    if kind == "uniform":
        low, high = math.ceil(dist.low), math.floor(dist.high)
        if high < low:  # [low, high] holds no integer: the nearest one
            return max(1, round(dist.low))
        return low + min(int(u * (high - low + 1)), high - low)
    if kind == "empirical":
        weights = np.asarray(dist.weights if dist.weights is not None else [1.0] * len(dist.values), float)
        cumulative = np.cumsum(weights) / weights.sum()
        index = min(int(np.searchsorted(cumulative, u, side="right")), len(dist.values) - 1)
        return max(1, round(dist.values[index]))
    # log-normal, truncated to [low, high] by drawing u inside [F(low), F(high)]
    mu = math.log(dist.median)
    lo = _STANDARD_NORMAL.cdf((math.log(dist.low) - mu) / dist.sigma) if dist.low is not None else 0.0
    hi = _STANDARD_NORMAL.cdf((math.log(dist.high) - mu) / dist.sigma) if dist.high is not None else 1.0
    p = min(max(lo + u * (hi - lo), 1e-12), 1 - 1e-12)
    value = math.exp(mu + dist.sigma * _STANDARD_NORMAL.inv_cdf(p))
    if dist.low is not None:
        value = max(value, dist.low)
    value = min(value, dist.high if dist.high is not None else MAX_SIZE)  # an untruncated tail stays finite
    return max(1, round(value))


def draw(dist: SizeDistribution, rng: np.random.Generator) -> int:
    return quantile(dist, float(rng.random()))


def support(dist: SizeDistribution) -> tuple[list[int], list[float]]:
    """Values and their probabilities: exact for fixed, empirical and uniform (up to 10^5
    integers); a midpoint grid of ``_GRID_POINTS`` quantiles for the log-normal (and wider uniforms)."""
    if dist.distribution == "fixed":
        return [quantile(dist, 0.0)], [1.0]
    if dist.distribution == "empirical":
        weights = np.asarray(dist.weights if dist.weights is not None else [1.0] * len(dist.values), float)
        return [max(1, round(v)) for v in dist.values], list(weights / weights.sum())
    if dist.distribution == "uniform":
        low, high = math.ceil(dist.low), math.floor(dist.high)
        if high >= low and high - low < 100_000:
            n = high - low + 1
            return list(range(low, high + 1)), [1.0 / n] * n
    us = (np.arange(_GRID_POINTS) + 0.5) / _GRID_POINTS
    return [quantile(dist, float(u)) for u in us], [1.0 / _GRID_POINTS] * _GRID_POINTS


def expectation(dist: SizeDistribution, fn: Callable[[int], float] = float) -> float:
    """E[fn(X)] for X ~ ``dist`` (see :func:`support` for when it is exact)."""
    values, probabilities = support(dist)
    return float(sum(p * fn(v) for v, p in zip(values, probabilities)))


@dataclass(frozen=True)
class TaskSize:
    """What one task carries: ``input_bytes`` up the LTE uplink; ``tokens`` of prompt for a
    large decoder (0 for other models)."""

    input_bytes: int
    tokens: int = 0


class Workload:
    """Draws each task's size and gives the stage figures that follow from it.

    sample_bytes, stage_latency_s, activation_bytes: the model's own figures (every task's,
        when nothing varies).
    input_bytes, prompt_tokens: the scenario's distributions (``workload.*``), or None.
    fixed_tokens: a decoder's ``model.seq_len`` when ``prompt_tokens`` is None (traced), else 0.
    figures_for_tokens: T -> (stage latencies, activation bytes) of the decoder at T tokens;
        required with ``prompt_tokens``.
    node_latency_s: node -> its stage latencies, for nodes whose device sets them (others use
        ``stage_latency_s``); node_figures_for_tokens: T -> that mapping at T tokens.
    """

    def __init__(self, *, sample_bytes: int, stage_latency_s: list[float], activation_bytes: list[int],
                 input_bytes: SizeDistribution | None = None, prompt_tokens: SizeDistribution | None = None,
                 fixed_tokens: int = 0,
                 figures_for_tokens: Callable[[int], tuple[list[float], list[int]]] | None = None,
                 node_latency_s: dict[str, list[float]] | None = None,
                 node_figures_for_tokens: Callable[[int], dict[str, list[float]]] | None = None) -> None:
        if prompt_tokens is not None and figures_for_tokens is None:
            raise ValueError("prompt_tokens needs figures_for_tokens (the decoder's figures at T tokens)")
        self.sample_bytes = int(sample_bytes)
        self.input_dist = input_bytes
        self.token_dist = prompt_tokens
        self.fixed_tokens = int(fixed_tokens)
        self._latency = list(stage_latency_s)
        self._activation = [int(b) for b in activation_bytes]
        self._for_tokens = functools.lru_cache(maxsize=None)(figures_for_tokens) if figures_for_tokens else None
        self._node_latency = {n: list(v) for n, v in (node_latency_s or {}).items()}
        self._node_for_tokens = (functools.lru_cache(maxsize=None)(node_figures_for_tokens)
                                 if node_figures_for_tokens else None)

    @property
    def varies(self) -> bool:
        return self.input_dist is not None or self.token_dist is not None

    def draw(self, rng: np.random.Generator) -> TaskSize:
        """One task's size; draws from ``rng`` only for the distributions that are set
        (tokens first, then bytes), one uniform number each."""
        tokens = draw(self.token_dist, rng) if self.token_dist is not None else self.fixed_tokens
        extra = draw(self.input_dist, rng) if self.input_dist is not None else None
        return TaskSize(self._input_bytes(tokens, extra), tokens)

    def _input_bytes(self, tokens: int, extra: int | None) -> int:
        if self.token_dist is not None:
            return TOKEN_ID_BYTES * tokens + (extra or 0)
        return extra if extra is not None else self.sample_bytes

    def stage_latency_s(self, size: TaskSize, node: str | None = None) -> list[float]:
        if self.token_dist is not None:
            if node is not None and self._node_for_tokens is not None:
                by_node = self._node_for_tokens(size.tokens)
                if node in by_node:
                    return by_node[node]
            return self._for_tokens(size.tokens)[0]
        return self._node_latency.get(node, self._latency)

    def activation_bytes(self, size: TaskSize) -> list[int]:
        if self.token_dist is not None:
            return self._for_tokens(size.tokens)[1]
        return self._activation

    # Expected figures (the optimizer's prior: E[service time], E[b_k]) ----------------------
    def mean_input_bytes(self) -> float:
        extra = expectation(self.input_dist) if self.input_dist is not None else None
        if self.token_dist is not None:
            return TOKEN_ID_BYTES * expectation(self.token_dist) + (extra or 0.0)
        return extra if extra is not None else float(self.sample_bytes)

    def mean_stage_latency_s(self, node: str | None = None) -> list[float]:
        if self.token_dist is None:
            return list(self._node_latency.get(node, self._latency))
        return [expectation(self.token_dist, lambda t, k=k: self.stage_latency_s(TaskSize(0, t), node)[k])
                for k in range(len(self._latency))]

    def mean_activation_bytes(self) -> list[float]:
        if self.token_dist is None:
            return [float(b) for b in self._activation]
        return [expectation(self.token_dist, lambda t, k=k: self._for_tokens(t)[1][k]) for k in range(len(self._activation))]
