"""Property-based fuzzing of the scenario loader: whatever the input, the answer is a valid
Scenario or one ScenarioError naming a field, never a traceback or a hang (ns-3 would abort
the whole process on many bad values, so nothing may slip through to it)."""

from __future__ import annotations

import copy
import json
import multiprocessing
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dtoee.config import Scenario, ScenarioError, apply_overrides, load_scenario, scenario_from_dict

GOOD_PATH = Path(__file__).resolve().parents[2] / "scenarios" / "city_small.toml"
GOOD = tomllib.loads(GOOD_PATH.read_text())

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["bs0", "bs1", "bs9", "", "static", "dtoee", "1", "-1"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)


def paths_of(data, prefix=()):
    """Every path to a value inside the nested scenario dict."""
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            out += paths_of(value, prefix + (key,))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            out += paths_of(value, prefix + (index,))
    return out


ALL_PATHS = paths_of(GOOD)


@st.composite
def mutated_scenarios(draw):
    data = copy.deepcopy(GOOD)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(ALL_PATHS))
        action = draw(st.sampled_from(["set", "delete", "add_key"]))
        parent = data
        try:
            for part in path[:-1]:
                parent = parent[part]
            if action == "set":
                parent[path[-1]] = draw(values)
            elif action == "delete":
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=10))] = draw(values)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed or replaced this path
    return data


def check(outcome) -> None:
    if isinstance(outcome, ScenarioError):
        message = str(outcome)
        assert message and "\n" not in message and "Traceback" not in message
    else:
        assert isinstance(outcome, Scenario)


def load(data):
    try:
        return scenario_from_dict(data)
    except ScenarioError as error:
        return error


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_scenarios())
def test_mutated_scenarios_give_a_scenario_or_one_clear_error(data):
    check(load(data))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_files(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "s.toml"
    path.write_text(text)
    try:
        check(load_scenario(path))
    except ScenarioError as error:
        check(error)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(ALL_PATHS), st.text(max_size=12))
def test_overrides(path, raw):
    key = ".".join(str(part) for part in path)
    try:
        check(scenario_from_dict(apply_overrides(copy.deepcopy(GOOD), [f"{key}={raw}"])))
    except ScenarioError as error:
        check(error)


def test_fuzz_found_inputs_through_the_cli(tmp_path):
    """A few nasty inputs through the real command: exit code 2, one line, nothing written."""
    nasty = ["[[nodes]]\nname = 3", "nodes = 5", 'name = "x"\n[simulation]\nduration_s = nan',
             "\x00\x01", "[radio]\nbandwidth_rb = 1e400"]
    for index, text in enumerate(nasty):
        path = tmp_path / f"s{index}.toml"
        path.write_text(text)
        result = subprocess.run([sys.executable, "-m", "dtoee.cli", "run", str(path), "--out", str(tmp_path / "o")],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, (text, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not (tmp_path / "o").exists()


# Values that validate must run (issue #17): numbers at the edges of what each field allows,
# derived ones included (service time = latency / speed, also through [[events]]), are
# validated and, if accepted, simulated for a fraction of a second in a forked child. ns-3
# aborts the whole process on what it cannot represent, so the child's exit status tells.

def _get(data, path):
    for part in path:
        data = data[part]
    return data


# Every number of the scenario but the simulation's times, UE counts and task rates (which
# only make a run longer: the memory check bounds them, tests/dtoee/test_interrupts.py
# runs an overload).
NUMERIC_PATHS = [p for p in ALL_PATHS
                 if isinstance(_get(GOOD, p), (int, float)) and not isinstance(_get(GOOD, p), bool)
                 and p[0] != "simulation" and p[-1] not in ("count", "rate_per_s")]
EDGES = [0, 1e-300, 1e-9, 0.5, 1, 3, 1e3, 1e6, 1e9, 1e12, 1e300, -1]
edge_numbers = st.one_of(st.sampled_from(EDGES), st.floats(-1e3, 1e13, allow_nan=False),
                         st.integers(0, 7000))


@st.composite
def edge_scenarios(draw):
    data = copy.deepcopy(GOOD)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(NUMERIC_PATHS))
        value = draw(edge_numbers)
        _get(data, path[:-1])[path[-1]] = int(value) if isinstance(_get(GOOD, path), int) and float(value).is_integer() \
            and abs(value) < 2**62 else value
    kind = draw(st.sampled_from([None, "node_speed", "link_rate"]))
    if kind is not None:
        value = draw(edge_numbers)
        event = {"node_speed": {"node": "bs1", "speed_factor": value},
                 "link_rate": {"a": "bs0", "b": "bs1", "rate_bps": value}}[kind]
        data["events"] = [{"at_s": 0.05, "kind": kind, **event}]
    for group in data["ue_groups"]:  # one UE per cell keeps each run to about a second
        group["count"] = 1
    data["radio"]["enabled"] = draw(st.booleans())
    return _short(data, seed=draw(st.integers(0, 3)))


def _short(data: dict, seed: int = 1) -> dict:
    """A fraction of a simulated second, nothing written while it runs."""
    data["simulation"] = {"duration_s": 0.15, "drain_s": 0.1, "seed": seed, "progress": False,
                          "checkpoint_wall_s": 0.0}
    return data


def _run_child(scenario, out) -> None:
    import os
    import traceback

    from dtoee.run import run_scenario

    try:
        run_scenario(scenario, out, progress=False)
        code = 0
    except ScenarioError:
        code = 3  # refused before ns-3 (what `dtoee validate` refuses too)
    except BaseException:  # noqa: BLE001 - any other failure of a validated scenario is a bug
        traceback.print_exc()
        code = 4
    os._exit(code)


@pytest.mark.ns3
@settings(max_examples=int(os.environ.get("DTOEE_FUZZ_RUNS", "8")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(edge_scenarios())
@example(_short(apply_overrides(copy.deepcopy(GOOD), ["nodes.0.speed_factor=1e-300"])))
@example(_short(apply_overrides(copy.deepcopy(GOOD), ["model.stage_latency_s=[1e10, 0.025, 0.025]"])))
@example(_short(apply_overrides(copy.deepcopy(GOOD), ["backhaul.rate_bps=0.5"])))
@example(_short(apply_overrides(copy.deepcopy(GOOD), ["backhaul.core_rate_bps=0.5"])))
@example(_short(apply_overrides(copy.deepcopy(GOOD), [
    'events=[{at_s = 0.05, kind = "node_speed", node = "bs1", speed_factor = 1e-300}]'])))
def test_values_that_validate_run_without_aborting_ns3(ns3_session, tmp_path_factory, data):
    outcome = load(data)
    check(outcome)
    if not isinstance(outcome, Scenario):
        return  # refused with one clear line: nothing to run
    out = tmp_path_factory.mktemp("fuzzrun")
    process = multiprocessing.get_context("fork").Process(target=_run_child, args=(outcome, out))
    process.start()
    process.join(600)
    assert process.exitcode in (0, 3), f"exit status {process.exitcode} for a scenario that validated"
    if process.exitcode == 0:
        assert json.loads((out / "summary.json").read_text())["partial"] is False
