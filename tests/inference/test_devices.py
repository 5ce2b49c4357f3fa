"""Device profiles, the roofline estimate and memory counted per task in service."""
import pytest

from inference.devices import (DEVICES, ROOFLINE_EFFICIENCY, decoder_stage_costs, device, device_label,
                               ridge_intensity, roofline_latency_s, stage_latencies_s)
from inference.large_models import LARGE_MODELS, large_model_profile
from inference.placement import check_placement, node_memory_need_bytes


def test_table_has_each_class_of_device_with_a_source():
    kinds = {d.kind for d in DEVICES.values()}
    assert {"data-centre GPU", "inference GPU", "embedded module"} <= kinds
    for d in DEVICES.values():
        assert d.source.startswith("https://")
        # fp16 dense peak of an edge device: 1 to 1000 TFLOP/s; bandwidth 50 GB/s to 5 TB/s.
        assert 1e12 <= d.fp16_flops <= 1e15 and 5e10 <= d.memory_bandwidth_Bps <= 5e12
    assert device("l4").memory_bytes == 24e9
    with pytest.raises(ValueError, match="device='gtx'"):
        device("gtx")


def test_roofline_is_compute_bound_above_the_ridge_and_memory_bound_below():
    l4 = DEVICES["l4"]
    ridge = ridge_intensity(l4)
    assert ridge == pytest.approx(121e12 * ROOFLINE_EFFICIENCY / 300e9)
    # Above the ridge: time = flops / (peak x efficiency); below: bytes / bandwidth.
    assert roofline_latency_s(ridge * 2 * 1e9, 1e9, l4) == pytest.approx(2 * 1e9 * ridge / (121e12 * 0.5))
    assert roofline_latency_s(ridge / 2 * 1e9, 1e9, l4) == pytest.approx(1e9 / 300e9)
    # At the ridge both roofs give the same time.
    assert ridge * 1e9 / (121e12 * 0.5) == pytest.approx(1e9 / 300e9)
    assert roofline_latency_s(1e12, 0, "l4", efficiency=1.0) == pytest.approx(1e12 / 121e12)
    with pytest.raises(ValueError, match="efficiency=0"):
        roofline_latency_s(1, 1, l4, efficiency=0)


def test_decoder_costs_agree_with_the_large_model_profile():
    arch = LARGE_MODELS["llama-2-7b"]
    costs = decoder_stage_costs("llama-2-7b", 3, 256)
    prof = large_model_profile("llama-2-7b", 3, device_flops=1e14, seq_len=256)
    assert [c.flops for c in costs] == [p.flops for p in prof]
    assert [c.param_bytes for c in costs] == [p.param_bytes for p in prof]
    # KV cache: K and V of every layer of the stage, fp16: 2 x layers x T x kv_dim x 2 bytes.
    assert costs[0].kv_cache_bytes == 2 * 11 * 256 * 4096 * 2 and costs[2].kv_cache_bytes == 2 * 10 * 256 * 4096 * 2
    # Bytes moved: at least the weights the stage reads (its layers and head, not the whole embedding).
    assert costs[1].bytes_moved > costs[1].param_bytes
    assert costs[0].bytes_moved < costs[0].param_bytes  # the 32000 x 4096 table is not read, 256 rows are
    # A 256-token prefill of LLaMA-2-7B is compute-bound on every device; one token is memory-bound.
    for d in DEVICES.values():
        assert costs[1].flops / costs[1].bytes_moved > ridge_intensity(d)
        one = decoder_stage_costs(arch, 3, 1)[1]
        assert one.flops / one.bytes_moved < ridge_intensity(d)
        assert stage_latencies_s([one], d)[0] == pytest.approx(one.bytes_moved / d.memory_bandwidth_Bps)


def test_stage_latency_ordering_follows_the_datasheets():
    costs = decoder_stage_costs("llama-2-7b", 3, 512)
    by_device = {name: sum(stage_latencies_s(costs, name)) for name in DEVICES}
    assert by_device["h100-pcie"] < by_device["a100-80gb-pcie"] < by_device["l4"] < by_device["t4"]
    assert by_device["t4"] < by_device["jetson-agx-orin-64gb"] < by_device["jetson-orin-nx-16gb"]
    # Whole 7B prefill of 512 tokens on an A100 at 50% of peak: ~7 TFLOP / 156 TFLOP/s ~ 45 ms.
    assert by_device["a100-80gb-pcie"] == pytest.approx(sum(c.flops for c in costs) / 156e12, rel=1e-6)
    assert "estimated" in device_label("t4")


def test_memory_counts_kv_cache_of_every_task_in_service():
    params, work, kv = [100, 80, 60], [10, 10, 5], [20, 30, 1]
    assert node_memory_need_bytes([1, 2], params, work, kv, tasks_in_service=1) == 180 + 40
    assert node_memory_need_bytes([1, 2], params, work, kv, tasks_in_service=3) == 180 + 3 * 40
    check_placement({"a": [1, 2], "b": [3]}, params, {"a": 300, "b": 100}, work, kv, {"a": 3, "b": 1})
    with pytest.raises(ValueError, match=r"node 'a' cannot host stages \[1, 2\]: needs 340 bytes \(180 parameter "
                                         r"bytes \+ 4 task\(s\) in service x \(10 working \+ 30 KV-cache bytes\) of "
                                         r"stage 2\) but has 300 bytes"):
        check_placement({"a": [1, 2], "b": [3]}, params, {"a": 300, "b": 100}, work, kv, {"a": 4})
