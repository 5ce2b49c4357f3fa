"""Per-task sizes (dtoee/workload.py): the distributions, their streams, and what a decoder
task of T tokens costs. Pure functions; milliseconds each."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dtoee.config import ScenarioError, SizeDistribution
from dtoee.run import StageFigures, build_workload, mean_figures
from dtoee.seeding import numpy_streams
from dtoee.workload import TOKEN_ID_BYTES, Workload, draw, expectation, quantile
from inference.large_models import LARGE_MODELS, int8_codec_s, large_model_profile

from .scenarios import scenario


def dist(**kw) -> SizeDistribution:
    return SizeDistribution(**kw)


def draws(d: SizeDistribution, n: int = 20000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([draw(d, rng) for _ in range(n)])


def test_fixed_and_uniform():
    assert (draws(dist(distribution="fixed", value=1234.4), 100) == 1234).all()
    x = draws(dist(distribution="uniform", low=10, high=20))
    assert x.min() == 10 and x.max() == 20
    counts = np.bincount(x - 10, minlength=11)
    assert counts.min() > 0.8 * len(x) / 11  # every integer about equally often
    assert expectation(dist(distribution="uniform", low=10, high=20)) == pytest.approx(15.0)


def test_lognormal_median_sigma_and_truncation():
    d = dist(distribution="lognormal", median=80_000, sigma=0.5)
    x = draws(d)
    assert np.median(x) == pytest.approx(80_000, rel=0.03)
    assert np.std(np.log(x)) == pytest.approx(0.5, rel=0.03)
    assert expectation(d) == pytest.approx(80_000 * math.exp(0.5**2 / 2), rel=1e-3)  # E = m e^{s^2/2}
    t = dist(distribution="lognormal", median=80_000, sigma=0.8, low=30_000, high=200_000)
    y = draws(t)
    assert y.min() >= 30_000 and y.max() <= 200_000
    # Truncation redraws inside the bounds: no pile-up at the bounds as clipping would give.
    assert (y == 30_000).mean() < 0.002 and (y == 200_000).mean() < 0.002
    assert y.mean() == pytest.approx(expectation(t), rel=0.02)


def test_empirical_with_weights():
    d = dist(distribution="empirical", values=[100, 200, 300], weights=[1, 0, 3])
    x = draws(d)
    assert set(np.unique(x)) == {100, 300}
    assert (x == 300).mean() == pytest.approx(0.75, abs=0.01)
    assert expectation(d) == pytest.approx(250.0)
    assert quantile(d, 0.0) == 100 and quantile(d, 0.9999) == 300


@pytest.mark.parametrize("fields, needle", [
    ({"distribution": "lognormal", "median": 5}, "sigma is missing"),
    ({"distribution": "uniform", "low": 9, "high": 3}, "low = 9"),
    ({"distribution": "empirical"}, "values is empty"),
    ({"distribution": "empirical", "values": [1, 2], "weights": [1]}, "weights has 1"),
    ({"distribution": "lognormal", "median": 5, "sigma": 1, "low": 10, "high": 20}, "median = 5"),
])
def test_bad_distribution_names_field(fields, needle):
    with pytest.raises(ScenarioError) as error:
        scenario(workload={"input_bytes": fields})
    assert "workload.input_bytes" in str(error.value) and needle in str(error.value)


def test_prompt_tokens_need_a_decoder():
    with pytest.raises(ScenarioError, match="workload.prompt_tokens is set but model.large_model = None"):
        scenario(workload={"prompt_tokens": {"distribution": "fixed", "value": 100}})
    with pytest.raises(ScenarioError, match="at most 4096"):
        scenario(model={"large_model": "llama-2-7b", "stage_latency_s": None},
                 workload={"prompt_tokens": {"distribution": "uniform", "low": 10, "high": 5000}})


def test_task_size_stream_is_its_own():
    """Adding the task_sizes stream leaves the older streams as they were (same workload,
    same results for scenarios without [workload]), and it differs from every one of them."""
    rngs = numpy_streams(7, 3)
    children = np.random.SeedSequence(7).spawn(4 + 3)
    assert rngs["samples"].random() == np.random.default_rng(children[0]).random()
    assert rngs["arrivals/2"].random() == np.random.default_rng(children[6]).random()
    first = numpy_streams(7, 3)["task_sizes"].random(5)
    assert (first == numpy_streams(7, 50)["task_sizes"].random(5)).all()  # not tied to the UE count
    others = {name: rng.random(5) for name, rng in numpy_streams(7, 3).items() if name != "task_sizes"}
    assert all(not np.allclose(first, v) for v in others.values())
    assert not np.allclose(first, numpy_streams(8, 3)["task_sizes"].random(5))


def test_workload_without_distributions_draws_nothing():
    w = Workload(sample_bytes=256, stage_latency_s=[0.1, 0.2], activation_bytes=[64, 32])
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert w.draw(rng).input_bytes == 256 and rng.bit_generator.state == state
    assert not w.varies


def _decoder(dtype: str, tokens: dict) -> tuple:
    sc = scenario(model={"large_model": "llama-2-7b", "stage_latency_s": None, "activation_dtype": dtype,
                         "device_flops": 1e14},
                  workload={"prompt_tokens": tokens})
    profile = large_model_profile("llama-2-7b", 3, 1e14, seq_len=sc.model.seq_len, wire_dtype=dtype)
    field = {"fp16": "activation_bytes_fp16", "int8": "activation_bytes_int8"}[dtype]
    figures = StageFigures([p.latency_s for p in profile], [getattr(p, field) for p in profile],
                           [p.param_bytes for p in profile], 4 * sc.model.seq_len, True)
    return sc, figures, build_workload(sc, figures)


@pytest.mark.parametrize("dtype, wire_bytes, header", [("fp16", 2, 0), ("int8", 1, 4)])
def test_decoder_task_figures_follow_its_own_prompt_length(dtype, wire_bytes, header):
    sc, figures, w = _decoder(dtype, {"distribution": "uniform", "low": 64, "high": 1024})
    hidden = LARGE_MODELS["llama-2-7b"].dim
    rng = np.random.default_rng(3)
    sizes = [w.draw(rng) for _ in range(50)]
    assert len({s.tokens for s in sizes}) > 30
    for s in sizes:
        assert s.input_bytes == TOKEN_ID_BYTES * s.tokens
        assert w.activation_bytes(s) == [s.tokens * hidden * wire_bytes + header] * 3
    short, long = min(sizes, key=lambda s: s.tokens), max(sizes, key=lambda s: s.tokens)
    assert all(a < b for a, b in zip(w.stage_latency_s(short), w.stage_latency_s(long)))
    # The prior the policies plan with is the expectation over the prompt-length distribution.
    prior = mean_figures(figures, w)
    assert prior.input_bytes == round(TOKEN_ID_BYTES * 544)
    assert prior.activation_bytes[0] == round(544 * hidden * wire_bytes + header)
    exact = np.mean([large_model_profile("llama-2-7b", 3, 1e14, seq_len=t, wire_dtype=dtype)[1].latency_s
                     for t in range(64, 1025)])
    assert prior.latency_s[1] == pytest.approx(exact, rel=1e-9)


def test_int8_costs_its_codec_time():
    fp16 = large_model_profile("llama-2-7b", 3, 1e14, seq_len=512, wire_dtype="fp16")
    int8 = large_model_profile("llama-2-7b", 3, 1e14, seq_len=512, wire_dtype="int8")
    numel = 512 * 4096
    quant, dequant = int8_codec_s(numel, 1e14), int8_codec_s(numel, 1e14, quantise=False)
    assert quant == pytest.approx(5 * numel / 1e14) and dequant == pytest.approx(2 * numel / 1e14)
    assert int8[0].latency_s - fp16[0].latency_s == pytest.approx(quant)            # sends only
    assert int8[1].latency_s - fp16[1].latency_s == pytest.approx(quant + dequant)  # receives and sends
    assert int8[2].latency_s - fp16[2].latency_s == pytest.approx(dequant)          # receives only
    # With a memory bandwidth the elementwise kernel is memory-bound (roofline).
    assert int8_codec_s(numel, 1e14, 1e12) == pytest.approx(5 * numel / 1e12)


def test_image_bytes_add_to_the_prompt():
    sc = scenario(model={"large_model": "llama-2-7b", "stage_latency_s": None},
                  workload={"prompt_tokens": {"distribution": "fixed", "value": 100},
                            "input_bytes": {"distribution": "fixed", "value": 50_000}})
    figures = StageFigures([1.0] * 3, [1] * 3, [1] * 3, 4 * 512, True)
    assert build_workload(sc, figures).draw(np.random.default_rng(0)).input_bytes == 400 + 50_000


def test_prompt_longer_than_the_context_is_refused_before_running():
    sc = scenario(model={"large_model": "gpt2", "stage_latency_s": None},
                  workload={"prompt_tokens": {"distribution": "empirical", "values": [100, 2000]}})
    figures = StageFigures([1.0] * 3, [1] * 3, [1] * 3, 4 * 512, True)
    with pytest.raises(ScenarioError, match="workload.prompt_tokens can reach 2000"):
        build_workload(sc, figures)
