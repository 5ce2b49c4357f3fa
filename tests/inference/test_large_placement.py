"""Estimated large-model profiles and memory-aware placement."""
import pytest

from inference.large_models import LARGE_MODELS, large_model_profile, measure_matmul_flops, split_layers, total_params
from inference.placement import check_placement, node_memory_need_bytes, propose_placement


def test_param_counts_match_model_cards():
    assert total_params("llama-2-7b") == pytest.approx(6.74e9, rel=0.01)
    # GPT-2 XL is 1.558e9 with its output head tied to the embedding; the head is counted separately here.
    arch = LARGE_MODELS["gpt2-xl"]
    assert total_params("gpt2-xl") - arch.dim * arch.vocab_size == pytest.approx(1.558e9, rel=0.01)


@pytest.mark.parametrize("name", ["llama-2-7b", "gpt2-xl"])
def test_large_profile_estimated(name):
    prof = large_model_profile(name, 4, device_flops=1e12, seq_len=256)
    arch = LARGE_MODELS[name]
    assert [p.stage for p in prof] == [1, 2, 3, 4]
    assert all(p.estimated and p.device.startswith("estimated") for p in prof)
    assert all(p.latency_s == pytest.approx(p.flops / 1e12) for p in prof)
    assert all(p.activation_bytes == 256 * arch.dim * 4 and p.activation_bytes_fp16 == 256 * arch.dim * 2 for p in prof)
    extra_heads = 3 * arch.head_params()
    assert sum(p.param_bytes for p in prof) == 2 * (total_params(name) + extra_heads)
    assert prof[0].param_bytes > prof[1].param_bytes  # embedding lives in stage 1


def test_large_profile_measured_throughput_and_errors():
    assert measure_matmul_flops(size=128, repeats=2) > 1e8
    prof = large_model_profile("gpt2", 3, seq_len=64)
    assert "measured" in prof[0].device and "GFLOP/s" in prof[0].device
    with pytest.raises(ValueError, match="name='gpt5'"):
        large_model_profile("gpt5", 2, 1e12)
    with pytest.raises(ValueError, match="num_stages=33"):
        large_model_profile("llama-2-7b", 33, 1e12)


def test_split_layers():
    assert [len(r) for r in split_layers(10, 4)] == [3, 3, 2, 2]
    assert split_layers(4, 4)[-1] == range(3, 4)


def test_propose_placement_fits_and_replicates():
    params = [40, 30, 30, 20]
    nodes = {"a": 100, "b": 60, "c": 60}
    pl = propose_placement(params, nodes, working_bytes=5)
    check_placement(pl, params, nodes, working_bytes=5)
    assert sorted(k for s in pl.values() for k in s) == [1, 2, 3, 4]
    pl2 = propose_placement([10, 10, 10], nodes, replicas=2)
    assert all(sum(k in s for s in pl2.values()) == 2 for k in (1, 2, 3))


def test_propose_placement_impossible():
    with pytest.raises(ValueError, match=r"stage 1 \(500 parameter bytes"):
        propose_placement([500, 10], {"a": 100, "b": 100})


def test_check_placement_errors_name_node_stages_bytes():
    params = [60, 50, 10]
    with pytest.raises(ValueError, match=r"node 'small' cannot host stages \[1, 2\]: needs 118 bytes \(110 parameter bytes \+ 1 task\(s\) in service x \(8 working bytes\) of stage 1\) but has 100"):
        check_placement({"small": [1, 2], "big": [3]}, params, {"small": 100, "big": 1000}, working_bytes=[8, 4, 1])
    with pytest.raises(ValueError, match=r"stages \[3\] are hosted by no node"):
        check_placement({"big": [1, 2]}, params, {"big": 1000})
    with pytest.raises(ValueError, match="node 'x'"):
        check_placement({"x": [1]}, params, {"big": 1000})
    assert node_memory_need_bytes([1, 3], params, [8, 4, 1]) == 78
