"""Property-based fuzzing of the scenario loader: whatever the input, the answer is a valid
Scenario or one ScenarioError naming a field, never a traceback or a hang (ns-3 would abort
the whole process on many bad values, so nothing may slip through to it)."""

from __future__ import annotations

import copy
import subprocess
import sys
import tomllib
from pathlib import Path

from hypothesis import HealthCheck, given, settings
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
