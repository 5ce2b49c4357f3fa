"""What a node can learn by itself: estimators over its own completed services and transfers.

Pure math over plain numbers (no ns-3, no simulation objects), so the control plane of the
co-simulation and any other runtime can feed them, and tests run in milliseconds.

* :class:`ServiceRateEstimator` -- node j's service rate mu_j^k from the durations of the
  services it completed. Service time scales with one speed factor across stages (the
  profile fixes the ratio between stages), so every completed service, whatever its
  stage, is a sample of the node's relative speed ``s = profile_latency_k / duration``;
  the estimate is an EWMA of the time per profiled second ``1/s``::

      tau <- (1 - alpha) tau + alpha (duration / profile_latency_k)
      mu_j^k = servers_j / (tau x profile_latency_k)

  Before the first sample ``tau = 1 / speed_prior`` (the profile at the configured speed).

* :class:`PathEstimator` -- the rate C_ij and the one-way delay p_ij of the path i -> j
  from the transfers on it that completed (the receiver time-stamps the last byte and
  reports it; small probes keep the delay current when the path carries nothing else).
  Small messages (``<= small_bytes``) measure the delay: ``p_ij`` is the minimum of the
  last ``delay_window`` of their transfer times (the base delay, as TCP's min-RTT
  filters do). Large ones measure the rate: a transfer of B bytes that took D seconds is
  a sample ``(D - p_ij) / B`` of the time per byte, smoothed by an EWMA::

      beta <- (1 - alpha) beta + alpha max(D - p_ij, B / rate_cap) / B
      C_ij = 1 / beta   [bytes/s]

  Before the first sample the configured (provisioned) path rate and delay are the prior.
  A minimum filter follows a fall in delay at once and a rise only after ``delay_window``
  newer samples; a transfer of a few hundred bytes cannot measure a fast path's rate, so
  with small activations the rate stays at its prior (which is then what matters least).

Estimates change only when :meth:`add` is called with a completed measurement; nothing
else (a scenario event, the configuration) moves them.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


def ewma(previous: float | None, sample: float, alpha: float) -> float:
    """``alpha x sample + (1 - alpha) x previous`` (the sample itself when there is none)."""
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must lie in (0, 1], got {alpha!r}")
    return float(sample) if previous is None else alpha * float(sample) + (1.0 - alpha) * previous


@dataclass
class ServiceRateEstimator:
    """mu_j^k of one node from its completed services (see the module docstring).

    Args:
        profile_latency_s: {stage k: profiled service time at speed 1}.
        servers: parallel workers c_j (mu counts them, as the optimizer models c servers as one
            c times faster).
        speed_prior: the node's configured speed factor, used until the first sample.
        alpha: EWMA weight of a new sample.
    """

    profile_latency_s: dict[int, float]
    servers: int = 1
    speed_prior: float = 1.0
    alpha: float = 0.1
    samples: int = 0
    _tau: float | None = None

    def add(self, stage: int, duration_s: float) -> None:
        """One completed service of ``stage`` that took ``duration_s``."""
        profile = self.profile_latency_s[stage]
        if not (duration_s > 0 and math.isfinite(duration_s)):
            return
        previous = 1.0 / self.speed_prior if self._tau is None else self._tau
        self._tau = ewma(previous, duration_s / profile, self.alpha)
        self.samples += 1

    @property
    def speed(self) -> float:
        """Estimated speed factor (profile time / service time)."""
        return self.speed_prior if self._tau is None else 1.0 / self._tau

    def rate_per_s(self, stage: int) -> float:
        """mu_j^k = c_j x speed / profile_latency_k."""
        return self.servers * self.speed / self.profile_latency_s[stage]

    def rates_per_s(self) -> dict[int, float]:
        return {k: self.rate_per_s(k) for k in self.profile_latency_s}


@dataclass
class PathEstimator:
    """C_ij and p_ij of one path from its completed transfers (see the module docstring).

    Args:
        prior_rate_bps: the configured rate of the path (its bottleneck link).
        prior_delay_s: the configured one-way delay of the path (sum over its links).
        small_bytes: transfers up to this size measure delay; larger ones measure rate.
        delay_window: how many small transfers the minimum filter spans.
        alpha: EWMA weight of a new rate sample.
    """

    prior_rate_bps: float
    prior_delay_s: float = 0.0
    small_bytes: int = 2048
    delay_window: int = 20
    alpha: float = 0.2
    rate_samples: int = 0
    delay_samples: int = 0
    _beta_s_per_byte: float | None = None
    _small: deque = field(default_factory=deque)

    def add(self, payload_bytes: int, duration_s: float) -> None:
        """One transfer of ``payload_bytes`` on this path that took ``duration_s`` (first byte
        sent to last byte received)."""
        if not (duration_s >= 0 and math.isfinite(duration_s)) or payload_bytes <= 0:
            return
        if payload_bytes <= self.small_bytes:
            self._small.append(float(duration_s))
            while len(self._small) > self.delay_window:
                self._small.popleft()
            self.delay_samples += 1
            return
        # The rate may not exceed 1000x the prior: bounds a sample whose transfer time is
        # all delay (a large message overtaking the delay estimate) away from infinity.
        floor_s = payload_bytes * 8.0 / (1000.0 * self.prior_rate_bps)
        beta = max(duration_s - self.delay_s, floor_s) / payload_bytes
        self._beta_s_per_byte = ewma(self._beta_s_per_byte, beta, self.alpha)
        self.rate_samples += 1

    @property
    def delay_s(self) -> float:
        """p_ij: the smallest recent small-transfer time (the prior before any)."""
        return min(self._small) if self._small else self.prior_delay_s

    @property
    def rate_bps(self) -> float:
        """C_ij in bits per second (the prior before any large transfer)."""
        return self.prior_rate_bps if self._beta_s_per_byte is None else 8.0 / self._beta_s_per_byte

    def transfer_time_s(self, payload_bytes: int) -> float:
        """Expected time to move ``payload_bytes`` on the path: p_ij + 8 B / C_ij."""
        return self.delay_s + 8.0 * payload_bytes / self.rate_bps


@dataclass
class RateMeter:
    """A count over a window turned into a rate and smoothed over windows (EWMA): Lambda, phi,
    lambda of one node, since one control period holds few Poisson arrivals."""

    alpha: float = 0.5
    value: float | None = None

    def add(self, count: float, window_s: float) -> float:
        if window_s <= 0:
            return self.value or 0.0
        self.value = ewma(self.value, count / window_s, self.alpha)
        return self.value
