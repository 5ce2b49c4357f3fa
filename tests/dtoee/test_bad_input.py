"""Bad scenarios: exit code 2, one message naming field, value and what is allowed, and no
run directory left behind. The CLI runs as a user would run it (a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

GOOD = Path(__file__).resolve().parents[2] / "scenarios" / "city_small.toml"


def run_cli(tmp_path: Path, scenario_text: str | None, *extra: str, path: Path | None = None):
    if path is None:
        path = tmp_path / "scenario.toml"
        path.write_text(scenario_text)
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "dtoee.cli", "run", str(path), "--out", str(out), *extra],
                            capture_output=True, text=True, timeout=120)
    return result, out


def mutate(old: str, new: str) -> str:
    text = GOOD.read_text()
    assert old in text
    return text.replace(old, new, 1)


CASES = [
    ("unknown key", mutate("bandwidth_rb = 25", "bandwidth_rb = 25\nbandwidth_mhz = 5"),
     ["radio.bandwidth_mhz", "unknown key", "bandwidth_rb"]),
    ("negative rate", mutate("rate_per_s = 2.0", "rate_per_s = -2.0"),
     ["ue_groups[0].rate_per_s", "-2.0", "greater than or equal to 0"]),
    ("threshold above 1", mutate("fixed_threshold = 0.8", "fixed_threshold = 1.5"),
     ["policy.fixed_threshold", "1.5", "less than or equal to 1"]),
    ("deprecated name, above 1", mutate("fixed_threshold = 0.8", "default_threshold = 1.5"),
     ["policy.default_threshold", "1.5", "less than or equal to 1"]),
    ("two names, two thresholds", mutate("fixed_threshold = 0.8", "fixed_threshold = 0.8\ndefault_threshold = 0.5"),
     ["policy: fixed_threshold = 0.8", "default_threshold = 0.5", "fixed_threshold only"]),
    ("per-node threshold below 0", mutate("[policy.offload.bs1]", "[policy.thresholds]\nbs0 = [0.5, -0.1, 1.0]\n[policy.offload.bs1]"),
     ["policy.thresholds.bs0[1]", "-0.1", "[0, 1]"]),
    ("probabilities not summing to 1", mutate('"1" = { bs1 = 0.5, bs0 = 0.5 }', '"1" = { bs1 = 0.5, bs0 = 0.4 }'),
     ["policy.offload.bs1.1", "0.9", "summing to 1"]),
    ("link to unknown node", mutate('links = [{ a = "bs0", b = "bs2"', 'links = [{ a = "bs0", b = "bs9"'),
     ["backhaul.links[0].b", "bs9", "bs0"]),
    ("bad bandwidth", mutate("bandwidth_rb = 25", "bandwidth_rb = 30"),
     ["radio.bandwidth_rb", "30", "25"]),
    ("warm-up past the arrivals", mutate("drain_s = 5.0", "drain_s = 5.0\nwarmup_s = 20.0"),
     ["simulation.warmup_s", "20.0", "below simulation.duration_s"]),
    ("not TOML", "this is [not toml", ["not valid TOML"]),
]


@pytest.mark.parametrize("label,text,needles", CASES, ids=[c[0] for c in CASES])
def test_bad_scenario_exits_2_with_one_clear_message(tmp_path, label, text, needles):
    result, out = run_cli(tmp_path, text)
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "Traceback" not in message
    for needle in needles:
        assert needle in message, (needle, message)
    assert not out.exists()


def test_unreadable_file(tmp_path):
    result, out = run_cli(tmp_path, None, path=tmp_path / "missing.toml")
    assert result.returncode == 2
    assert "missing.toml" in result.stderr and "cannot be read" in result.stderr
    assert not out.exists()


def test_bad_override(tmp_path):
    result, out = run_cli(tmp_path, GOOD.read_text(), "--set", "nodes.0.speed_factor=0")
    assert result.returncode == 2
    assert "nodes[0].speed_factor" in result.stderr and "greater than 0" in result.stderr
    assert not out.exists()
