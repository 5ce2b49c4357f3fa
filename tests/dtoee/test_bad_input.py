"""Bad scenarios: exit code 2, one message naming field, value and what is allowed, and no
run directory left behind. The CLI runs as a user would run it (a subprocess)."""

from __future__ import annotations

import json
import re
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


# Issue #17: values that validated but aborted ns-3, names that became paths, output locations
# checked only after the run, validate and run disagreeing, a byte-order mark.

class Result:
    def __init__(self, returncode: int, stderr: str) -> None:
        self.returncode, self.stderr = returncode, stderr


@pytest.fixture
def dtoee(capsys):
    """``dtoee ARGS...`` in this process (the same ``main`` as the command; much faster than a
    subprocess for the many cases below; the tests above run the real command)."""
    from dtoee.cli import main

    def call(*args: str) -> Result:
        capsys.readouterr()
        code = main(list(args))
        return Result(code, capsys.readouterr().err)

    return call


def one_clear_line(result) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    return message


NS3_ABORTS = [  # each passed `validate` and then aborted ns-3 (negative delay, division by 0 bit/s)
    (["nodes.0.speed_factor=1e-300"], ["nodes[0].speed_factor", "1e-300", "service time"]),
    (["model.stage_latency_s=[1e10, 0.025, 0.025]"], ["model.stage_latency_s[0]", "1e+06"]),
    (["backhaul.rate_bps=0.5"], ["backhaul.rate_bps", "0.5", "greater than or equal to 1"]),
    (["backhaul.core_rate_bps=0.5"], ["backhaul.core_rate_bps", "0.5"]),
    (['events=[{at_s = 1.0, kind = "node_speed", node = "bs0", speed_factor = 1e-12}]'],
     ["events[0].speed_factor", "service time"]),
    (['events=[{at_s = 1.0, kind = "link_rate", a = "bs0", b = "bs1", rate_bps = 0.5}]'], ["events[0].rate_bps"]),
]


@pytest.mark.parametrize("overrides,needles", NS3_ABORTS, ids=[c[0][0][:40] for c in NS3_ABORTS])
def test_values_ns3_cannot_represent_are_refused(dtoee, tmp_path, overrides, needles):
    sets = [arg for o in overrides for arg in ("--set", o)]
    message = one_clear_line(dtoee("run", str(GOOD), "--out", str(tmp_path / "run"), *sets))
    for needle in needles:
        assert needle in message, (needle, message)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["/some/abs/path", "a" * 300, "x\x00y", "../up", "run dir"])
def test_scenario_name_is_restricted_like_node_names(dtoee, tmp_path, monkeypatch, name):
    text = mutate('name = "city_small"', f"name = {json.dumps(name)}")
    path = tmp_path / "s.toml"
    path.write_text(text)
    monkeypatch.chdir(tmp_path)
    message = one_clear_line(dtoee("run", str(path)))
    assert message.startswith("dtoee: error: name = ")
    assert list(tmp_path.iterdir()) == [path]  # no runs/ folder, nothing outside it


def test_byte_order_mark_is_accepted(tmp_path):
    from dtoee.config import load_scenario

    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.read_bytes())
    assert load_scenario(path) == load_scenario(GOOD)


@pytest.mark.parametrize("command", [["run", str(GOOD), "--out"], ["sweep", str(GOOD), "--grid", "load=1", "--out"],
                                     ["compare", str(GOOD), "--out"]], ids=["run", "sweep", "compare"])
@pytest.mark.parametrize("where", ["file", "inside_file"])
def test_output_location_is_checked_before_any_work(dtoee, tmp_path, command, where):
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder")
    out = blocker if where == "file" else blocker / "sub" / "dir"
    message = one_clear_line(dtoee(*command, str(out)))
    assert "--out" in message and "not a directory" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"] and blocker.read_text() == "a file, not a folder"


@pytest.mark.parametrize("args,needle", [(["sweep", str(GOOD), "--workers", "0"], "--workers 0"),
                                         (["compare", str(GOOD), "--workers", "0"], "--workers 0"),
                                         (["compare", str(GOOD), "--loads", "abc"], "--loads 'abc'"),
                                         (["compare", str(GOOD), "--loads", "1,nan"], "'nan'")])
def test_sweep_and_compare_options_refused_before_creating_anything(dtoee, tmp_path, args, needle):
    out = tmp_path / "out"
    message = one_clear_line(dtoee(*args, "--out", str(out)))
    assert needle in message
    assert not out.exists()


@pytest.mark.parametrize("overrides,needle", [
    (["nodes.0.memory_bytes=1"], "nodes[*].memory_bytes"),
    (["model.num_stages=2", "model.stage_latency_s=[0.02, 0.02]", "nodes.2.stages=[2]", "nodes.3.stages=[1]"],
     "model.num_stages = 2"),
    (["ue_groups.0.rate_per_s=1e6", "simulation.duration_s=1e6", "radio.enabled=false"], "GB"),
])
def test_validate_refuses_what_run_refuses(dtoee, tmp_path, overrides, needle):
    sets = [arg for o in overrides for arg in ("--set", o)]
    validate = one_clear_line(dtoee("validate", str(GOOD), *sets))
    run = one_clear_line(dtoee("run", str(GOOD), "--out", str(tmp_path / "run"), *sets))
    machine = re.compile(r"[\d.e+]+ GB are available")  # free memory changes between the two
    assert needle in validate and machine.sub("", validate) == machine.sub("", run)
    assert not (tmp_path / "run").exists()


def test_expected_task_memory_says_how_much_and_has_a_flag(dtoee):
    sets = ["--set", "ue_groups.0.rate_per_s=1e6", "--set", "simulation.duration_s=1e6"]
    message = one_clear_line(dtoee("validate", str(GOOD), *sets))
    assert "4e+12 tasks" in message and "--allow-large" in message
    assert dtoee("validate", str(GOOD), *sets, "--allow-large").returncode == 0


def test_expected_tasks_follow_rate_events():
    from dtoee.run import check_task_memory, expected_tasks
    from dtoee.config import ScenarioError

    from .scenarios import scenario

    sc = scenario(simulation={"duration_s": 10.0},
                  events=[{"at_s": 4.0, "kind": "ue_rate", "ue_group": 1, "rate_per_s": 1.0},
                          {"at_s": 20.0, "kind": "ue_rate", "ue_group": 0, "rate_per_s": 1e6}])
    # group 0: 2 UEs x 4/s x 10 s (its change comes after the arrivals end); group 1: 2 x (4 x 4 + 1 x 6)
    assert expected_tasks(sc) == pytest.approx(80 + 44)
    check_task_memory(sc, available_bytes=10**9)
    with pytest.raises(ScenarioError, match="124 tasks"):
        check_task_memory(sc, available_bytes=1000)
