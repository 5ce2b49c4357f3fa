"""Small scenarios for tests, as plain dicts (validated by the same loader as TOML files)."""

from __future__ import annotations

import copy

from dtoee.config import Scenario, scenario_from_dict

SMALL_CITY = {
    "name": "test_city",
    "simulation": {"duration_s": 6.0, "drain_s": 3.0, "seed": 1, "progress": False},
    "model": {"family": "mlp", "num_stages": 3, "stage_latency_s": [0.02, 0.025, 0.025]},
    "radio": {"enabled": True, "bandwidth_rb": 25},
    "backhaul": {"layout": "line", "rate_bps": 1e8, "delay_s": 0.002},
    "nodes": [
        {"name": "bs0", "position_m": [0.0, 0.0], "speed_factor": 1.0, "stages": [1, 2]},
        {"name": "bs1", "position_m": [500.0, 0.0], "speed_factor": 2.0, "stages": [1, 2, 3]},
        {"name": "bs2", "position_m": [1000.0, 0.0], "speed_factor": 1.0, "stages": [3]},
    ],
    "ue_groups": [
        {"node": "bs0", "count": 2, "rate_per_s": 4.0, "radius_m": 100.0},
        {"node": "bs2", "count": 2, "rate_per_s": 4.0, "radius_m": 100.0},
    ],
    "policy": {"fixed_threshold": 0.9},
}


def scenario(base: dict = SMALL_CITY, **sections) -> Scenario:
    """``base`` with sections merged in, e.g. ``scenario(simulation={"seed": 2})``."""
    data = copy.deepcopy(base)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            if key == "policy" and {"fixed_threshold", "default_threshold"} & set(value):
                # one field under two names (default_threshold is deprecated): the one given wins
                data[key].pop("fixed_threshold", None)
                data[key].pop("default_threshold", None)
            data[key].update(value)
        else:
            data[key] = value
    return scenario_from_dict(data)
