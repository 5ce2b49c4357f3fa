"""The estimators a node runs over its own measurements (pure math, milliseconds)."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.estimators import PathEstimator, RateMeter, ServiceRateEstimator, ewma


def test_service_rate_uses_the_prior_until_it_has_samples():
    est = ServiceRateEstimator({1: 0.02, 2: 0.04}, servers=2, speed_prior=1.5)
    assert est.samples == 0
    assert est.rate_per_s(1) == pytest.approx(2 * 1.5 / 0.02)
    assert est.rate_per_s(2) == pytest.approx(2 * 1.5 / 0.04)


def test_service_rate_follows_a_speed_change_within_50_services():
    est = ServiceRateEstimator({1: 0.02, 2: 0.04}, servers=1, speed_prior=1.0, alpha=0.1)
    for n in range(30):  # at speed 1: exact
        est.add(1 + n % 2, 0.02 * (1 + n % 2))
    assert est.speed == pytest.approx(1.0)
    for n in range(50):  # the node slows to 0.4: every service takes 2.5x as long
        est.add(1 + n % 2, 0.02 * (1 + n % 2) / 0.4)
    assert est.rate_per_s(1) == pytest.approx(0.4 / 0.02, rel=0.10)
    assert est.rate_per_s(2) == pytest.approx(0.4 / 0.04, rel=0.10)
    # after 5 services it has not got there yet: the estimate moves with samples, not events
    fresh = ServiceRateEstimator({1: 0.02}, speed_prior=1.0, alpha=0.1)
    for _ in range(5):
        fresh.add(1, 0.05)
    assert fresh.rate_per_s(1) > 1.3 * (0.4 / 0.02)


def test_service_rate_of_exponential_services_is_unbiased_on_average():
    rng = np.random.default_rng(0)
    est = ServiceRateEstimator({1: 0.01}, speed_prior=1.0, alpha=0.02)
    for d in rng.exponential(0.02, size=4000):  # true mean 0.02 s: speed 0.5
        est.add(1, float(d))
    assert est.speed == pytest.approx(0.5, rel=0.15)


def test_path_delay_is_the_minimum_of_small_transfers_and_rate_subtracts_it():
    est = PathEstimator(prior_rate_bps=1e9, prior_delay_s=0.001)
    assert est.rate_bps == 1e9 and est.delay_s == 0.001
    for extra in (0.0004, 0.0, 0.0009):  # small messages: 2 ms base + queueing jitter
        est.add(64, 0.002 + extra)
    assert est.delay_s == pytest.approx(0.002)
    assert est.rate_bps == 1e9  # no large transfer yet: the rate is still the prior
    # 100 kB at 10 Mb/s = 80 ms of serialisation after the 2 ms delay
    for _ in range(40):
        est.add(100_000, 0.002 + 100_000 * 8 / 1e7)
    assert est.rate_bps == pytest.approx(1e7, rel=1e-3)
    assert est.transfer_time_s(50_000) == pytest.approx(0.002 + 0.04, rel=1e-3)


def test_path_rate_moves_only_with_completed_transfers():
    est = PathEstimator(prior_rate_bps=1e8, prior_delay_s=0.002, alpha=0.2)
    for _ in range(20):
        est.add(64, 0.002)
        est.add(50_000, 0.002 + 50_000 * 8 / 1e8)
    before = est.rate_bps
    assert before == pytest.approx(1e8, rel=1e-6)
    # the link drops to 1e7: nothing changes until a transfer that saw it completes
    assert est.rate_bps == before
    est.add(50_000, 0.002 + 50_000 * 8 / 1e7)
    after_one = est.rate_bps
    assert after_one < before
    for _ in range(30):
        est.add(50_000, 0.002 + 50_000 * 8 / 1e7)
    assert est.rate_bps == pytest.approx(1e7, rel=0.02)


def test_path_rate_sample_is_bounded_when_the_transfer_is_all_delay():
    est = PathEstimator(prior_rate_bps=1e8, prior_delay_s=0.0)
    est.add(64, 0.01)
    est.add(10_000, 0.005)  # faster than the delay estimate: clipped, not negative
    assert 0 < est.rate_bps <= 1000 * 1e8 + 1


def test_ewma_and_rate_meter():
    assert ewma(None, 3.0, 0.5) == 3.0
    assert ewma(2.0, 4.0, 0.25) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="alpha"):
        ewma(1.0, 1.0, 0.0)
    meter = RateMeter(alpha=0.5)
    assert meter.add(10, 2.0) == 5.0
    assert meter.add(0, 2.0) == 2.5
    assert meter.add(5, 0.0) == 2.5  # an empty window changes nothing
