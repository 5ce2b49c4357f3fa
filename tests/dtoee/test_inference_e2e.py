"""Real inference inside real ns-3 runs: exits follow thresholds, live = replay, large-model
figures and memory placement."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from dtoee.run import run_isolated

from .scenarios import scenario
from .test_bad_input import mutate

pytestmark = pytest.mark.ns3

TWO_NODES = dict(
    simulation={"duration_s": 4.0, "drain_s": 2.0, "seed": 2, "progress": False},
    radio={"enabled": False},
    backhaul={"layout": "line", "rate_bps": 1e8, "delay_s": 0.002},
    nodes=[{"name": "bs0", "stages": [1, 2]}, {"name": "bs1", "stages": [2, 3], "position_m": [500.0, 0.0]}],
    ue_groups=[{"node": "bs0", "count": 2, "rate_per_s": 10.0}],
)


def test_threshold_zero_at_stage_one_exits_everything_there(ns3_session, tmp_path):
    run_isolated(scenario(**TWO_NODES, policy={"fixed_threshold": 0.0}), tmp_path)
    tasks = pd.read_parquet(tmp_path / "tasks.parquet")
    assert len(tasks) > 20 and (tasks["status"] == "completed").all()
    assert (tasks["exit_stage"] == 1).all()


def test_unreachable_thresholds_send_everything_to_the_last_exit(ns3_session, mlp_model, tmp_path):
    K = mlp_model.num_stages
    assert mlp_model.replay.confidence[:, : K - 1].max() < 1.0  # so threshold 1 is unreachable
    run_isolated(scenario(**TWO_NODES, policy={"fixed_threshold": 1.0}), tmp_path)
    tasks = pd.read_parquet(tmp_path / "tasks.parquet")
    done = tasks[tasks["status"] == "completed"]
    assert len(done) == len(tasks) > 20
    assert (done["exit_stage"] == K).all()
    # The run's accuracy is the last exit's test accuracy on the very samples it drew.
    hops = pd.read_parquet(tmp_path / "hops.parquet")
    assert (hops.loc[hops["kind"] == "service", "stage"].value_counts().sort_index() == len(done)).all()
    # Every task's prediction is the last exit's prediction for the sample it carried, so
    # the run's accuracy is the last exit's test accuracy on exactly those samples.
    services = hops[(hops["kind"] == "service") & (hops["stage"] == K)].set_index("task_id")
    confidence = services.loc[done["task_id"], "confidence"].to_numpy()
    rows = [np.flatnonzero(np.isclose(mlp_model.replay.confidence[:, K - 1], c, rtol=0, atol=1e-12)
                           & (mlp_model.test_labels == label))[0]
            for c, label in zip(confidence, done["label"])]
    expected = (mlp_model.replay.predicted[rows, K - 1] == mlp_model.test_labels[rows]).mean()
    assert done["correct"].mean() == pytest.approx(expected)
    assert (done["predicted"].to_numpy() == mlp_model.replay.predicted[rows, K - 1]).all()


def test_live_and_replay_make_the_same_decisions(ns3_session, tmp_path):
    live_dir, replay_dir = tmp_path / "live", tmp_path / "replay"
    common = dict(TWO_NODES, radio={"enabled": True}, ue_groups=[{"node": "bs0", "count": 2, "rate_per_s": 8.0}],
                  policy={"fixed_threshold": 0.9})
    live = run_isolated(scenario(**common, model={"family": "mlp", "num_stages": 3, "mode": "live",
                                                  "stage_latency_s": [0.02, 0.025, 0.025]}), live_dir)
    run_isolated(scenario(**common, model={"family": "mlp", "num_stages": 3, "mode": "replay",
                                           "stage_latency_s": [0.02, 0.025, 0.025]}), replay_dir)
    a, b = pd.read_csv(live_dir / "tasks.csv"), pd.read_csv(replay_dir / "tasks.csv")
    assert len(a) > 20
    pd.testing.assert_frame_equal(a, b)
    assert live["forward_wall_s"] > 0  # the live run really ran forward passes


def test_large_model_figures_drive_service_times_and_offload_bytes(ns3_session, tmp_path):
    from inference import large_model_profile

    sc = scenario(**TWO_NODES, model={"family": "llama", "num_stages": 3, "large_model": "llama-2-7b",
                                      "seq_len": 128, "device_flops": 2e14, "activation_dtype": "fp16",
                                      "stage_latency_s": None},
                  policy={"fixed_threshold": 0.99})
    summary = run_isolated(sc, tmp_path)
    profile = large_model_profile("llama-2-7b", 3, 2e14, seq_len=128)
    assert summary["stage_figures_estimated"] is True
    assert summary["stage_latency_s"] == pytest.approx([p.latency_s for p in profile])
    hops = pd.read_parquet(tmp_path / "hops.parquet")
    offloads = hops[hops["kind"] == "offload"]
    assert len(offloads) > 0
    assert set(offloads["bytes"]) == {profile[0].activation_bytes_fp16} == {128 * 4096 * 2}
    uplinks = hops[hops["kind"] == "uplink"]
    assert (uplinks["bytes"] == 4 * 128).all()


def test_placement_over_memory_is_refused_with_node_stages_and_bytes(tmp_path):
    text = mutate('stages = [2, 3]\n', 'stages = [2, 3]\nmemory_bytes = 1000\n')
    path = tmp_path / "s.toml"
    path.write_text(text)
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "dtoee.cli", "run", str(path), "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    for needle in ("'bs2'", "[2, 3]", "bytes", "1000"):
        assert needle in message, (needle, message)
    assert not out.exists()
