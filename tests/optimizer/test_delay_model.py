"""The simulator-delay model's pieces against theory: arrival variability through a tandem
(Burke's theorem, the M/D/1 departure process), per-class service variability, and the
realised split read back from a trace."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from optimizer.system import Flows, SimulatorDelayModel, arrival_scv, mg_number


def _tandem(share_on: float = 1.0):
    """UEs -> A (stage 1, mu 100/s) -> B (stage 2): lambda = 50/s, rho_A = 0.5; a share
    ``share_on`` of A's tasks goes on to B (the rest exits at A)."""
    system = SimpleNamespace(nodes=("A", "B"), stages_hosted=lambda j: (1,) if j == "A" else (2,),
                             service_rate_per_s={("A", 1): 100.0, ("B", 2): 100.0})
    flows = Flows(phi={("A", 1): 50.0, ("A", 2): 50.0 * share_on},
                  arrival={("A", 1): 50.0, ("B", 2): 50.0 * share_on},
                  offload={("A", "A", 1): 50.0, ("A", "B", 2): 50.0 * share_on},
                  exit_share={("A", 1): 1.0 - share_on, ("B", 2): 1.0})
    return system, flows


def test_burke_exponential_server_passes_poisson_on():
    system, flows = _tandem()
    assert arrival_scv(system, flows, 1.0) == pytest.approx({"A": 1.0, "B": 1.0})


def test_deterministic_server_smooths_its_departures():
    """M/D/1 departures: c_d^2 = 1 - rho^2 (QNA); a Bernoulli split p mixes towards 1."""
    system, flows = _tandem()
    assert arrival_scv(system, flows, 0.0)["B"] == pytest.approx(1 - 0.5**2)
    system, flows = _tandem(share_on=0.5)
    assert arrival_scv(system, flows, 0.0)["B"] == pytest.approx(0.5 * (1 - 0.25) + 0.5)


def test_smoother_arrivals_wait_less_and_poisson_is_pollaczek_khinchine():
    rho = 0.5
    md1 = mg_number({1: 50.0}, {1: 0.01}, 0.0)
    assert md1 == pytest.approx(rho + rho**2 / (2 * (1 - rho)))
    assert mg_number({1: 50.0}, {1: 0.01}, 0.0, arrival_scv=1.0) == md1
    smooth = mg_number({1: 50.0}, {1: 0.01}, 0.0, arrival_scv=0.75)
    assert smooth == pytest.approx(rho + 0.75 * rho**2 / (2 * (1 - rho)))


def test_per_class_service_variability_enters_the_second_moment():
    """Two classes, 20/s x 10 ms (deterministic) and 20/s x 20 ms with c^2 = 0.5:
    E[S^2] = (20 x 1e-4 + 20 x 1.5 x 4e-4) / 40, P-K N = rho + Lambda^2 E[S^2] / (2 (1 - rho))."""
    es2 = (20 * 1e-4 + 20 * 1.5 * 4e-4) / 40
    rho = 40 * 0.015
    assert mg_number({1: 20.0, 2: 20.0}, {1: 0.01, 2: 0.02}, {1: 0.0, 2: 0.5}) == pytest.approx(
        rho + 40**2 * es2 / (2 * (1 - rho)))
    model = SimulatorDelayModel(service_scv=1.0, service_scv_by_class={("A", 1): 0.5})
    assert model.class_scv("A", 1) == pytest.approx(1.5 * 2 - 1)  # (1 + c_w^2)(1 + c_d^2) - 1
    assert model.class_scv("B", 2) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="arrivals"):
        SimulatorDelayModel(arrivals="renewal")


def test_realised_offloading_counts_where_each_stage_ran():
    from dtoee.system_model import realised_offloading

    system = SimpleNamespace(decision_keys=lambda: [("A", 1), ("B", 1), ("A", 2), ("B", 2)])
    tasks = pd.DataFrame({"task_id": [0, 1, 2, 3, 4], "entry_node": ["A", "A", "B", "A", "A"],
                          "created_s": [5.0, 6.0, 7.0, 8.0, 1.0],
                          "status": ["completed"] * 4 + ["completed"]})
    service = [(0, "A", 1), (0, "B", 2), (1, "B", 1), (1, "B", 2), (2, "B", 1), (3, "A", 1), (3, "A", 2),
               (4, "B", 1)]  # task 4 is before the measured window
    hops = pd.DataFrame([{"task_id": t, "kind": "service", "src": j, "stage": k} for t, j, k in service]
                        + [{"task_id": 0, "kind": "offload", "src": "node:A", "stage": 2}])
    x = realised_offloading(system, tasks, hops, measured_from_s=2.0)
    assert x[("A", 1)] == pytest.approx({"A": 2 / 3, "B": 1 / 3})
    assert x[("B", 1)] == {"B": 1.0}
    assert x[("A", 2)] == pytest.approx({"B": 0.5, "A": 0.5})  # tasks 0 and 3 (stage 1 at A)
    assert x[("B", 2)] == {"B": 1.0}                            # task 1


def _feedback_queue_wait_s(lam, service_s, stay, size_scv=0.0, tasks=60_000, seed=1):
    """Mean total wait per task of a FIFO single server: Poisson arrivals at ``lam``, stage 1
    then (with probability ``stay``) stage 2 at the back of the same queue, each taking
    ``service_s`` x Z with one log-normal Z per task (E[Z] = 1, scv ``size_scv``)."""
    from collections import deque

    import numpy as np

    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1 / lam, tasks))
    sigma2 = np.log1p(size_scv)
    size = rng.lognormal(-sigma2 / 2, np.sqrt(sigma2), tasks) if size_scv > 0 else np.ones(tasks)
    stays = rng.random(tasks) < stay
    queue, waited, i, current, busy_until = deque(), 0.0, 0, None, 0.0
    while i < tasks or queue or current:
        if i < tasks and (current is None or arrivals[i] <= busy_until):
            now = arrivals[i]
            queue.append((i, 1, now))
            i += 1
        else:
            now = busy_until
            task, stage = current
            current = None
            if stage == 1 and stays[task]:
                queue.append((task, 2, now))
        if current is None and queue:
            task, stage, since = queue.popleft()
            waited += now - since
            current, busy_until = (task, stage), now + service_s * size[task]
    return waited / tasks


@pytest.mark.parametrize("lam, stay, size_scv", [(30.0, 1.0, 0.0), (40.0, 0.4, 0.0), (45.0, 0.4, 0.0), (40.0, 0.4, 0.23)])
def test_visit_number_matches_a_simulated_feedback_queue(lam, stay, size_scv):
    """A task that stays on rejoins the back of the queue: the mean-value analysis of
    visit_number within 4% of a simulation of that queue, where the P-K stage mix (passes as
    independent Poisson arrivals) is 15-30% low."""
    from optimizer.system import visit_number

    s = 0.01
    service = lam * s * (1 + stay)
    simulated = _feedback_queue_wait_s(lam, s, stay, size_scv)
    model = (visit_number({1: lam}, {1: stay}, {1: s, 2: s}, {1: size_scv, 2: size_scv}, 0.0) - service) / lam
    stage_mix = (mg_number({1: lam, 2: lam * stay}, {1: s, 2: s}, {1: size_scv, 2: size_scv}) - service) / lam
    assert model == pytest.approx(simulated, rel=0.04)
    assert stage_mix < 0.88 * simulated
    # without staying on it is Pollaczek-Khinchine
    assert visit_number({1: lam}, {1: 0.0}, {1: s, 2: s}, {}, 0.0) == pytest.approx(mg_number({1: lam}, {1: s}, 0.0))
