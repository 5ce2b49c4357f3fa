"""One CLI grammar (issue 11, item 6): --seed on every command that simulates or draws
randomness, --out always a directory, and `dtoee optimize` scoring every policy on one
evaluation (the test split's raw curves) after calibrating on the validation split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dtoee.cli import main

CITY = str(Path(__file__).resolve().parents[2] / "scenarios" / "city_small.toml")


@pytest.mark.parametrize("command", ["run", "optimize", "sweep", "compare", "profile", "validate"])
def test_every_command_that_draws_takes_seed(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "--seed" in capsys.readouterr().out


def test_optimize_writes_into_a_directory_and_scores_every_policy_once(mlp_model, tmp_path, capsys):
    out = tmp_path / "opt"
    assert main(["optimize", CITY, "--seed", "2", "--rounds", "30", "--every", "10", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "optimize.json").read_text())
    policies = report["evaluation"]["policies"]
    assert {"optimum", "dtoee", "static-load-proportional"} <= set(policies)
    assert "test split" in report["evaluation"]["name"] and report["data_splits"]["evaluation"] == "test"
    assert report["data_splits"]["policies_computed_from"] == "validation"
    table = printed[printed.index("every policy on one evaluation"):]
    for name, entry in policies.items():
        line = next(row for row in table.splitlines() if row.startswith(name + " "))
        assert f"{entry['mean_delay_s'] * 1e3:.2f}" in line and f"{entry['accuracy']:.4f}" in line
    # the hull figure is printed beside the raw one only for the policies that optimised it
    assert policies["static-load-proportional"]["hull_model"] is None
    hull = policies["optimum"]["hull_model"]
    optimum_line = next(row for row in table.splitlines() if row.startswith("optimum "))
    differs = abs(hull["objective"] - policies["optimum"]["objective"]) > 1e-9
    assert (f"objective {hull['objective']:.6f}" in optimum_line) == differs


def test_optimize_out_must_not_be_a_file(tmp_path, capsys):
    target = tmp_path / "optimize.json"
    target.write_text("keep me")
    assert main(["optimize", CITY, "--out", str(target)]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert target.read_text() == "keep me"
