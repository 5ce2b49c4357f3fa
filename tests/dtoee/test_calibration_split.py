"""Calibrate on one split, evaluate on another (issue 11, item 3).

Every exit curve and threshold the optimizer, DTO-EE or a baseline reads comes from the
VALIDATION split; the simulation draws its samples from the TEST split. So relabelling the
test split must leave all of them unchanged, while the test-split curves (what a run is scored
on) do change: the second half shows the relabelling is seen at all.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from dtoee.config import load_scenario
from dtoee.execution import ReplayExecutor
from dtoee.run import check_memory, place_ues, stage_figures
from dtoee.seeding import numpy_streams
from dtoee.system_model import system_from_scenario
from optimizer.baselines import BASELINES
from optimizer.centralized import CentralizedSolver
from optimizer.dtoee import run_in_memory
from optimizer.system import strategy_of_policy


def _policies_inputs(scenario, model):
    figures = stage_figures(scenario, model)
    check_memory(scenario, figures)
    rngs = numpy_streams(scenario.simulation.seed, sum(g.count for g in scenario.ue_groups))
    system = system_from_scenario(scenario, model, place_ues(scenario, rngs["placement"]), figures)
    optimum = CentralizedSolver(system).solve()
    history = run_in_memory(system, 40)
    baselines = {name: strategy_of_policy(system, factory(system))[1]
                 for name, factory in BASELINES.items() if name != "static-no-early-exit"}
    return system, optimum.theta, history.theta, baselines


def _curves(curves):
    return [(c.split, c.thresholds, c.exit_share, np.nan_to_num(c.accuracy_of_exited, nan=-1.0)) for c in curves]


def test_test_labels_change_nothing_the_optimizer_uses(mlp_model):
    scenario = load_scenario("scenarios/city_small.toml")
    relabelled = copy.copy(mlp_model)
    # every test sample gets a class that no exit predicts for it: every test answer is now wrong
    relabelled.test_labels = np.array([min(set(range(10)) - set(row)) for row in mlp_model.replay.predicted.tolist()])
    # the test split's own curves (what a run is scored on) do see it ...
    assert relabelled.exit_test_accuracy() == [0.0] * mlp_model.num_stages
    assert all(c.overall_accuracy == 0.0 for c in relabelled.exit_curves(split="test"))
    # ... and the simulation draws from it
    executor = ReplayExecutor(relabelled, stage_figures(scenario, relabelled))
    draws = [executor.pick_sample(np.random.default_rng(3))]
    assert draws[0][1] == int(relabelled.test_labels[draws[0][0]]) != int(mlp_model.test_labels[draws[0][0]])
    assert executor.split == "test"
    # ... but no exit curve, threshold or strategy the policies are computed from does
    assert all(c.split == "validation" for c in relabelled.exit_curves())
    for a, b in zip(_curves(mlp_model.exit_curves()), _curves(relabelled.exit_curves()), strict=True):
        assert a[0] == b[0] and all(np.array_equal(x, y) for x, y in zip(a[1:], b[1:]))
    system_a, optimum_a, dtoee_a, baselines_a = _policies_inputs(scenario, mlp_model)
    system_b, optimum_b, dtoee_b, baselines_b = _policies_inputs(scenario, relabelled)
    for k in system_a.exit_curves:
        assert np.array_equal(system_a.exit_curves[k].exit_share, system_b.exit_curves[k].exit_share)
        assert np.array_equal(system_a.exit_curves[k].correct_share, system_b.exit_curves[k].correct_share)
    assert optimum_a == optimum_b and dtoee_a == dtoee_b and baselines_a == baselines_b
    # the optimizer is scored on test only by asking for it, and then the relabelling shows
    figures = stage_figures(scenario, relabelled)
    ues = place_ues(scenario, numpy_streams(scenario.simulation.seed, 16)["placement"])
    scored = system_from_scenario(scenario, relabelled, ues, figures, split="test")
    assert scored.exit_curves[1].full_correct_share == 0.0


def test_old_cache_files_gain_the_validation_replay(mlp_model, tmp_path):
    """A cache file written before calibration moved to validation is upgraded in place,
    with the same replay that training would have produced."""
    import torch

    from inference import load_staged_model

    blob = torch.load(mlp_model.cache_path, weights_only=True)
    for key in ("validation_labels", "validation_replay_confidence", "validation_replay_predicted"):
        blob.pop(key, None)
    torch.save(blob, tmp_path / mlp_model.cache_path.name)
    old = load_staged_model("mlp", seed=0, cache_dir=tmp_path)
    assert np.array_equal(old.validation_labels, mlp_model.validation_labels)
    assert np.array_equal(old.validation_replay.confidence, mlp_model.validation_replay.confidence)
    assert "validation_labels" in torch.load(tmp_path / mlp_model.cache_path.name, weights_only=True)
    assert len(old.validation_labels) > 300 and not np.array_equal(old.validation_labels[:300], old.test_labels[:300])
