"""The three fidelities: the analytic mode against queueing theory, and the modes against
each other where they must agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dtoee.run import run_isolated

from .scenarios import scenario
from .test_queueing_theory import batch_means_interval

SERVICE_RATE_PER_S = 100.0


def _single_node(rho: float, distribution: str, fidelity: str):
    return scenario(
        simulation={"duration_s": 400.0 if rho > 0.5 else 200.0, "drain_s": 5.0, "seed": 7, "progress": False, "fidelity": fidelity},
        model={"family": "mlp", "num_stages": 3, "service_distribution": distribution,
               "stage_latency_s": [1 / SERVICE_RATE_PER_S, 1.0, 1.0]},
        radio={"enabled": False},
        nodes=[{"name": "solo", "stages": [1, 2, 3]}],
        ue_groups=[{"node": "solo", "count": 1, "rate_per_s": rho * SERVICE_RATE_PER_S}],
        policy={"thresholds": {"solo": [0.0, 0.0, 0.0]}},  # every task exits after stage 1
    )


@pytest.mark.parametrize("rho", [0.5, 0.8])
@pytest.mark.parametrize("distribution", ["exponential", "deterministic"])
def test_analytic_node_matches_queueing_theory(tmp_path, rho, distribution):
    """M/M/1: T = 1/(mu - lambda); M/D/1: T = 1/mu + rho / (2 mu (1 - rho))."""
    summary = run_isolated(_single_node(rho, distribution, "analytic"), tmp_path)
    assert summary["fidelity"] == "analytic"
    tasks = pd.read_parquet(tmp_path / "tasks.parquet")
    assert (tasks["status"] == "completed").all() and (tasks["exit_stage"] == 1).all()
    warm = tasks[tasks["created_s"] > 10.0].sort_values("created_s")
    mean, half_width = batch_means_interval(warm["delay_s"].to_numpy())
    mu = SERVICE_RATE_PER_S
    theory = 1 / (mu - rho * mu) if distribution == "exponential" else 1 / mu + rho / (2 * mu * (1 - rho))
    assert abs(mean - theory) <= half_width, (mean, half_width, theory)
    assert half_width < 0.15 * theory


ONE_HOT = {  # every offloading distribution puts all its mass on one host: routing draws no chance
    "bs0": {"1": {"bs0": 1.0}, "2": {"bs0": 1.0}, "3": {"bs1": 1.0}},
    "bs1": {"1": {"bs1": 1.0}, "2": {"bs1": 1.0}, "3": {"bs1": 1.0}},
    "bs2": {"1": {"bs1": 1.0}, "2": {"bs1": 1.0}, "3": {"bs2": 1.0}},
}


@pytest.mark.ns3
def test_modes_agree_on_tasks_samples_and_exits_where_timing_does_not_matter(ns3_session, tmp_path):
    """Radio off, deterministic routing: arrivals, samples and exit decisions depend on no
    network timing, so the three modes must give the same tasks, task for task."""
    frames = {}
    for fidelity in ("packet", "hybrid", "analytic"):
        sc = scenario(simulation={"fidelity": fidelity, "duration_s": 4.0}, radio={"enabled": False},
                      policy={"default_threshold": 0.9, "offload": ONE_HOT})
        summary = run_isolated(sc, tmp_path / fidelity)
        assert summary["fidelity"] == fidelity
        frames[fidelity] = pd.read_parquet(tmp_path / fidelity / "tasks.parquet").sort_values("task_id")
    columns = ["task_id", "ue", "entry_node", "created_s", "label", "status", "exit_stage", "exit_node",
               "confidence", "predicted", "correct"]
    packet = frames["packet"][columns].reset_index(drop=True)
    assert len(packet) > 50 and (packet["exit_stage"] > 1).any() and (packet["exit_node"] != packet["entry_node"]).any()
    for fidelity in ("hybrid", "analytic"):
        pd.testing.assert_frame_equal(frames[fidelity][columns].reset_index(drop=True), packet)
    # the delays differ only by how each mode moves bytes over the backhaul
    delays = {f: frames[f]["delay_s"].mean() for f in frames}
    assert delays["hybrid"] == pytest.approx(delays["packet"], rel=1e-9)  # the same ns-3 backhaul
    assert delays["analytic"] == pytest.approx(delays["packet"], rel=0.05)


@pytest.mark.ns3
def test_hybrid_and_packet_agree_on_city_small_mean_delay(ns3_session, tmp_path):
    """ACCEPTANCE (issue 14), in CI: over 3 seeds, hybrid (ns-3 backhaul, calibrated per-cell
    radio) within 5% of packet. The calibration is the committed one (made from seed 1's
    packet run, so seeds 2 and 3 are out of sample), put in the cache as a user's first
    hybrid run would leave it; every hybrid summary must name its hash."""
    from dtoee.config import load_scenario

    from .test_delay_prediction import _with_calibration

    means = {"packet": [], "hybrid": []}
    hashes = set()
    for seed in (1, 2, 3):
        for fidelity in means:
            sc = load_scenario("scenarios/city_small.toml", [
                f"simulation.seed={seed}", f"simulation.fidelity={fidelity}", "simulation.duration_s=20",
                "simulation.warmup_s=5", "simulation.progress=false"])
            if fidelity == "hybrid":
                _with_calibration(sc)
            summary = run_isolated(sc, tmp_path / f"{fidelity}-{seed}")
            means[fidelity].append(summary["delay_s"]["mean"])
            if fidelity == "hybrid":
                hashes.add(summary["radio_model_hash"])
    assert len(hashes) == 1 and None not in hashes  # one calibration, cached, named in every summary
    packet, hybrid = np.mean(means["packet"]), np.mean(means["hybrid"])
    assert abs(hybrid - packet) <= 0.05 * packet, means


@pytest.mark.parametrize("policy", ["dtoee", "optimum", "fixed-threshold-greedy-sed",
                                    "fixed-threshold-load-proportional", "no-early-exit"])
def test_predicted_mean_delay_within_5_percent_of_delivered_in_analytic_mode(tmp_path, policy):
    """summary.json's prediction (P-K queues, shared hops) against an analytic-mode run of
    city_small (radio off: the radio legs are measured, not modelled, in the other modes)."""
    from dtoee.config import load_scenario

    sc = load_scenario("scenarios/city_small.toml", [
        f"policy.kind={policy}", "simulation.fidelity=analytic", "simulation.duration_s=60",
        "simulation.warmup_s=10", "radio.enabled=false", "simulation.progress=false"])
    summary = run_isolated(sc, tmp_path)
    predicted, delivered = summary["predicted"]["mean_delay_s"], summary["delay_s"]["mean"]
    assert summary["predicted"]["delay_model"].startswith("simulator")
    assert abs(predicted - delivered) <= 0.05 * delivered, (predicted, delivered)
    assert summary["prediction_error"]["mean_delay_rel"] == pytest.approx((delivered - predicted) / delivered)


@pytest.mark.parametrize("family", ["mlp", "vit", "llama"])
@pytest.mark.parametrize("policy", ["dtoee", "fixed-threshold-greedy-sed", "random-offloading"])
def test_predicted_accuracy_within_half_a_point_in_analytic_mode(tmp_path, family, policy):
    """Exit decisions depend on the sample and the thresholds on its path, not on the
    network: the analytic mode checks the accuracy prediction for every family in CI."""
    from dtoee.config import load_scenario
    from dtoee.run import load_model

    from .test_prediction import _drawn_table

    sc = load_scenario("scenarios/city_small.toml", [
        f"model.family={family}", f"policy.kind={policy}", "simulation.fidelity=analytic",
        "simulation.duration_s=60", "radio.enabled=false", "simulation.progress=false"])
    summary = run_isolated(sc, tmp_path)
    tasks = pd.read_parquet(tmp_path / "tasks.parquet").sort_values("task_id")
    assert (tasks["status"] == "completed").all()
    delivered = tasks["correct"].mean()
    model = load_model(sc)
    drawn, table = _drawn_table(sc, model, len(tasks))
    assert (tasks["label"].to_numpy() == model.test_labels[drawn]).all()
    if policy != "dtoee":  # static: the policy as it ran is the policy at the end
        from dtoee.policies import build_policy
        from dtoee.run import place_ues, stage_figures
        from dtoee.seeding import numpy_streams
        from dtoee.system_model import predicted_figures, system_from_scenario

        ues = place_ues(sc, numpy_streams(sc.simulation.seed, sum(g.count for g in sc.ue_groups))["placement"])
        system = system_from_scenario(sc, model, ues, stage_figures(sc, model))
        on_drawn = predicted_figures(system, build_policy(sc, system), table)["accuracy"]
        assert abs(100 * (delivered - on_drawn)) <= 0.5, (delivered, on_drawn)
    standard_error = np.sqrt(delivered * (1 - delivered) / len(tasks))
    assert abs(delivered - summary["predicted"]["accuracy"]) <= 0.005 + 3 * standard_error
