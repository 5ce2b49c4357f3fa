"""Files written for `dtoee profile`."""
import csv
import json

import pytest

from inference.report import write_profile


def test_write_profile_measured(mlp, cache_dir, tmp_path):
    paths = write_profile("mlp", tmp_path / "out", cache_dir=cache_dir)
    rows = list(csv.DictReader(open(paths["exits_csv"])))
    assert len(rows) == 2 * mlp.num_stages * 101 and rows[0]["threshold"] == "0" and rows[0]["exit_share"] == "1"
    assert {r["split"] for r in rows} == {"validation", "test"}
    doc = json.loads(paths["profile_json"].read_text())
    # every accuracy or sample count in profile.json names its split
    figures = [key for key in doc if "accuracy" in key or key.endswith("_samples")]
    assert figures and set(figures) <= set(doc["split_of"])
    assert doc["data_splits"]["exit_curves"] == "validation" and doc["data_splits"]["simulated_samples"] == "test"
    assert doc["exit_validation_accuracy"] == pytest.approx(mlp.exit_accuracy("validation"))
    assert doc["estimated"] is False and len(doc["stages"]) == mlp.num_stages
    assert doc["exit_test_accuracy"] == pytest.approx(mlp.exit_test_accuracy())
    assert paths["plot_png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_profile_estimated(tmp_path):
    paths = write_profile("llama-2-7b", tmp_path, num_stages=4, device_flops=5e11)
    doc = json.loads(paths["profile_json"].read_text())
    assert doc["estimated"] is True and all(s["estimated"] for s in doc["stages"])
    assert "ESTIMATED" in paths["plot_png"].name and "exits_csv" not in paths
    with pytest.raises(ValueError, match="name='nope'"):
        write_profile("nope", tmp_path)


def test_write_profile_on_a_named_device_uses_its_roofline(tmp_path):
    from inference.devices import decoder_stage_costs, stage_latencies_s

    paths = write_profile("llama-2-7b", tmp_path / "orin", num_stages=3, seq_len=256, device="jetson-agx-orin-64gb")
    doc = json.loads(paths["profile_json"].read_text())
    expected = stage_latencies_s(decoder_stage_costs("llama-2-7b", 3, 256), "jetson-agx-orin-64gb")
    assert [s["latency_s"] for s in doc["stages"]] == pytest.approx(expected)
    assert all(s["device"].startswith("estimated (roofline) on NVIDIA Jetson AGX Orin") for s in doc["stages"])
    assert "roofline" in doc["what_is_estimated"]
    with pytest.raises(ValueError, match="device='gtx'"):
        write_profile("llama-2-7b", tmp_path / "bad", device="gtx")
    assert not (tmp_path / "bad").exists()
