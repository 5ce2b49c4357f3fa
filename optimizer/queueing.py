"""Queue costs: the M/M/1 mean number in system and its exterior-penalty extension.

A server (node compute or link) with utilisation ``rho`` holds on average
``N(rho) = rho / (1 - rho)`` tasks (M/M/1), finite only for ``rho < 1``; by Little's law the
total delay of the system is ``sum N / sum_i lambda_i``.

The distributed optimizer must stay well defined when a step overshoots the capacity
constraint ``rho < 1``. It uses the *exterior-point penalty* version

    N_r(rho) = N(rho)                                        if rho <= rho_bar
             = N(rho_bar) + N'(rho_bar) d + N''(rho_bar) d^2 / 2 + r d^2,   d = rho - rho_bar

(second-order continuation of N beyond ``rho_bar`` plus the penalty ``r max(0, rho -
rho_bar)^2``; ``r`` is raised over outer iterations). ``N_r`` is convex, twice
differentiable, and equals ``N`` on the feasible region ``rho <= rho_bar``.
"""

from __future__ import annotations

from dataclasses import dataclass

import math


def mm1_number(rho: float) -> float:
    """N(rho) = rho / (1 - rho); ``inf`` for rho >= 1."""
    if rho >= 1.0:
        return math.inf
    return rho / (1.0 - rho)


@dataclass(frozen=True)
class PenalizedQueue:
    """N_r and its first two derivatives (see module docstring).

    Args:
        rho_bar: utilisation where the penalty starts, in (0, 1).
        penalty: r >= 0, weight of ``max(0, rho - rho_bar)^2``.
    """

    rho_bar: float = 0.99
    penalty: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.rho_bar < 1.0:
            raise ValueError(f"rho_bar must lie in (0, 1), got {self.rho_bar!r}")
        if not self.penalty >= 0.0:
            raise ValueError(f"penalty must be >= 0, got {self.penalty!r}")

    def value(self, rho: float) -> float:
        if rho <= self.rho_bar:
            return rho / (1.0 - rho)
        d = rho - self.rho_bar
        slack = 1.0 - self.rho_bar
        return (
            self.rho_bar / slack
            + d / slack**2
            + d * d / slack**3
            + self.penalty * d * d
        )

    def first(self, rho: float) -> float:
        """dN_r/drho."""
        if rho <= self.rho_bar:
            return 1.0 / (1.0 - rho) ** 2
        d = rho - self.rho_bar
        slack = 1.0 - self.rho_bar
        return 1.0 / slack**2 + 2.0 * d / slack**3 + 2.0 * self.penalty * d

    def second(self, rho: float) -> float:
        """d^2N_r/drho^2."""
        if rho <= self.rho_bar:
            return 2.0 / (1.0 - rho) ** 3
        slack = 1.0 - self.rho_bar
        return 2.0 / slack**3 + 2.0 * self.penalty
