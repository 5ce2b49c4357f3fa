"""Radio sweep figures from a sweep directory (synthetic runs: no ns-3), and city_vision's file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dtoee import radio_plots
from dtoee.config import load_scenario
from dtoee.trace import TASK_COLUMNS, TASK_RADIO_COLUMNS

ROOT = Path(__file__).resolve().parents[2]


def _run(directory: Path, run_id: str, uplink_by_distance: dict[float, float]) -> None:
    run = directory / "runs" / run_id
    run.mkdir(parents=True)
    rows = []
    for i, (distance, uplink) in enumerate(uplink_by_distance.items()):
        created = 1.0 + i
        rows.append((i, i, "bs0", created, created + uplink + 0.05, uplink + 0.05, "completed", "", 1, "bs0",
                     0.9, 1, 1, True, 50_000, 0, uplink, 0.01, distance))
    pd.DataFrame(rows, columns=TASK_COLUMNS + TASK_RADIO_COLUMNS).to_parquet(run / "tasks.parquet")
    (run / "summary.json").write_text(json.dumps({"measured_from_s": 0.5}))


def test_sweep_figure_and_distance_table(tmp_path, monkeypatch):
    sweep = tmp_path / "bw"
    _run(sweep, "a", {30.0: 0.1, 120.0: 0.3, 130.0: 0.5, 240.0: 1.0})
    _run(sweep, "b", {30.0: 0.05, 90.0: 0.1, 240.0: 0.4})
    results = pd.DataFrame({
        "run_id": ["a", "b"], "radio.bandwidth_rb": [25, 50], "status": ["complete", "complete"],
        "delay_s.mean": [0.5, 0.2], "delay_s.p95": [1.0, 0.4], "radio_share.uplink": [0.9, 0.8],
        "radio_share.downlink": [0.02, 0.05]})
    results.to_parquet(sweep / "results.parquet")
    (sweep / "sweep.json").write_text(json.dumps({"grid": {"radio.bandwidth_rb": [25, 50]}}))
    drawn = {}
    monkeypatch.setattr(radio_plots, "_saved", lambda fig, path: drawn.setdefault(path.name, fig) and path)
    assert radio_plots.sweep_figure(sweep, tmp_path).name == "radio_bandwidth_rb.png"
    mean_line = drawn["radio_bandwidth_rb.png"].axes[0].lines[0]
    assert list(mean_line.get_xdata()) == [25, 50] and list(mean_line.get_ydata()) == pytest.approx([500, 200])
    table = radio_plots.distance_table([sweep])
    at25 = table[table["bandwidth_rb"] == 25].set_index(table[table["bandwidth_rb"] == 25]["distance_m"].astype(str))
    assert at25.loc["(100, 150]", "n"] == 2 and at25.loc["(100, 150]", "mean"] == pytest.approx(0.4)
    assert at25.loc["(200, 250]", "mean"] == pytest.approx(1.0)
    at50 = table[table["bandwidth_rb"] == 50]
    assert list(at50["n"]) == [2, 1] and np.allclose(at50["mean"], [0.075, 0.4])
    radio_plots.distance_figure([sweep], tmp_path)
    assert len(drawn["radio_distance.png"].axes[0].lines) == 2  # one per bandwidth


def test_city_vision_file_describes_cameras_and_a_large_vit():
    sc = load_scenario(ROOT / "scenarios" / "city_vision.toml")
    assert sc.model.large_model == "vit-h-14" and sc.model.family == "vit"
    frames = sc.workload.input_bytes
    assert (frames.distribution, frames.low, frames.high) == ("lognormal", 30_000, 200_000)
    # Cameras from the cell centre to its edge: the radius is half the distance between sites.
    spacing = min(np.hypot(a.position_m[0] - b.position_m[0], a.position_m[1] - b.position_m[1])
                  for a in sc.nodes for b in sc.nodes if a is not b)
    assert all(g.radius_m == pytest.approx(spacing / 2) for g in sc.ue_groups)
    sweep = load_scenario(ROOT / "scenarios" / "radio_sweep.toml")
    assert sweep.workload.input_bytes is not None and sweep.model.large_model == "vit-l-16"
