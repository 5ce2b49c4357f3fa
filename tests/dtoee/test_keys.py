"""`--set` and `--grid` read keys and values with one parser and set them with one setter
(dtoee.config): the same TOML values, dotted keys, list indices, `*` wildcard and `load`
shorthand on both."""

from __future__ import annotations

import json

import pytest

from dtoee.cli import main
from dtoee.config import ScenarioError, apply_overrides, parse_override, parse_value, read_toml, set_value
from dtoee.sweep import parse_grid

from .test_sweep import TINY_TOML


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TOML)
    return path


@pytest.mark.parametrize("raw,value", [("50", 50), ("1e9", 1e9), ("true", True), ('"pf"', "pf"), ("pf", "pf"),
                                       ("[0.01, 0.02]", [0.01, 0.02]), ("{a = 1}", {"a": 1})])
def test_set_and_grid_read_a_value_alike(raw, value):
    assert parse_value(raw) == value
    assert parse_override(f"radio.x={raw}") == (["radio", "x"], value)
    assert parse_grid(f"radio.x={raw}") == ("radio.x", [value])


def test_set_takes_the_wildcard_and_the_load_shorthand(tiny):
    data = apply_overrides(read_toml(tiny), ["ue_groups.*.count=4", "load=2", "nodes.1.speed_factor=0.5"])
    assert [g["count"] for g in data["ue_groups"]] == [4, 4]
    assert [g["rate_per_s"] for g in data["ue_groups"]] == [10.0, 10.0]
    assert data["nodes"][1]["speed_factor"] == 0.5


def test_a_set_value_is_a_copy(tiny):
    value = [0.9, 0.9, 0.9]
    data = set_value(read_toml(tiny), "policy.thresholds.bs0", value)
    set_value(data, "policy.thresholds.bs1", value)
    data["policy"]["thresholds"]["bs0"][0] = 0.1
    assert data["policy"]["thresholds"]["bs1"] == [0.9, 0.9, 0.9] and value == [0.9, 0.9, 0.9]


@pytest.mark.parametrize("assignment,message", [
    ("radio.*.x=1", "--set 'radio.*.x=1': radio is not a list"),
    ("nodes.7.speed_factor=1", "--set 'nodes.7.speed_factor=1': nodes.7 is not an index of a list of 2"),
    ("load=-1", "load = -1; allowed: a finite number >= 0"),
    ("load=abc", "load = 'abc'; allowed: a finite number >= 0"),
    ("load=true", "load = True; allowed: a finite number >= 0"),
    ("radio..x=1", "empty part in key"),
    ("radio", "expected key=value"),
])
def test_bad_keys_name_the_assignment(tiny, assignment, message):
    with pytest.raises(ScenarioError, match=message.replace("*", r"\*").replace(".", r"\.").replace("(", r"\(")):
        apply_overrides(read_toml(tiny), [assignment])


def test_cli_set_with_wildcard_and_load(tiny, capsys):
    assert main(["validate", str(tiny), "--dump", "--set", "ue_groups.*.count=3", "--set", "load=0.5"]) == 0
    dumped = json.loads(capsys.readouterr().out)
    assert [(g["count"], g["rate_per_s"]) for g in dumped["ue_groups"]] == [(3, 2.5), (3, 2.5)]
    assert main(["validate", str(tiny), "--set", "radio.*.x=1"]) == 2
    assert "radio is not a list" in capsys.readouterr().err
