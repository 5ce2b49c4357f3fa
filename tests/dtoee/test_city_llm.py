"""city_llm: LLaMA-2-7B over named edge devices. Placement within each node's memory (weights
+ working memory + KV cache of every task in service), service times from the devices'
rooflines, and bad device input refused before anything runs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dtoee.config import ScenarioError, load_scenario
from dtoee.run import check_memory, node_memory_bytes, stage_figures
from inference.devices import DEVICES, decoder_stage_costs, roofline_latency_s
from inference.placement import node_memory_need_bytes

CITY_LLM = Path(__file__).resolve().parents[2] / "scenarios" / "city_llm.toml"


def test_city_llm_places_llama_7b_within_every_nodes_memory():
    scenario = load_scenario(CITY_LLM)
    assert scenario.model.large_model == "llama-2-7b" and scenario.model.num_stages >= 3
    assert scenario.model.family == "llama"
    figures = stage_figures(scenario, None)  # a named large model needs no trained model for its figures
    check_memory(scenario, figures)  # passes: raises ScenarioError otherwise
    memory = node_memory_bytes(scenario)
    assert set(memory) == {n.name for n in scenario.nodes}  # every node is checked
    # Memory is checked at the longest prompt the workload can draw (the worst KV cache).
    longest = int(scenario.workload.prompt_tokens.bounds()[1])
    assert longest > scenario.model.seq_len
    worst = decoder_stage_costs("llama-2-7b", scenario.model.num_stages, longest)
    assert figures.kv_cache_bytes == [c.kv_cache_bytes for c in worst]
    costs = worst
    for node in scenario.nodes:
        need = node_memory_need_bytes(node.stages, [c.param_bytes for c in costs], [c.working_bytes for c in costs],
                                      [c.kv_cache_bytes for c in costs], node.servers)
        assert need <= memory[node.name] == DEVICES[node.device].memory_bytes
        # fp16 weights dominate: ~4.3-5.0 GB per stage of LLaMA-2-7B.
        assert need > 4e9 * len(node.stages)
    # At least three kinds of device, and service times (at the reference length) are their rooflines.
    assert len({n.device for n in scenario.nodes}) >= 3
    costs = decoder_stage_costs("llama-2-7b", scenario.model.num_stages, scenario.model.seq_len)
    for node in scenario.nodes:
        expected = [roofline_latency_s(c.flops, c.bytes_moved, node.device) for c in costs]
        assert figures.node_latency_s[node.name] == pytest.approx(expected)
        assert figures.devices[node.name].startswith("estimated (roofline)")
    assert figures.estimated


def test_the_same_model_on_too_little_memory_fails_naming_node_stages_and_bytes(tmp_path):
    scenario = load_scenario(CITY_LLM, ["nodes.2.memory_bytes=8e9"])
    with pytest.raises(ScenarioError, match=r"node 'bs2' cannot host stages \[2, 3\]: needs \d+ bytes"):
        check_memory(scenario, stage_figures(scenario, None))
    # The CLI, as a user runs it: exit code 2, one line, nothing created.
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "dtoee.cli", "run", str(CITY_LLM), "--out", str(out),
                             "--set", "nodes.2.memory_bytes=8e9"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    costs = decoder_stage_costs("llama-2-7b", 3, 1024)
    params = costs[1].param_bytes + costs[2].param_bytes
    for needle in ("'bs2'", "[2, 3]", f"{params} parameter bytes", "KV-cache bytes", "has 8000000000 bytes"):
        assert needle in message, (needle, message)
    assert not out.exists()


def test_servers_multiply_the_per_task_memory():
    # bs2 (a 16 GB T4) with c tasks in service holds c working sets and KV caches: the
    # largest c that fits passes, one more fails.
    base = load_scenario(CITY_LLM)
    costs = decoder_stage_costs("llama-2-7b", 3, int(base.workload.prompt_tokens.bounds()[1]))
    params = costs[1].param_bytes + costs[2].param_bytes
    per_task = max(c.working_bytes + c.kv_cache_bytes for c in costs[1:])
    fits = (DEVICES["t4"].memory_bytes - params) // per_task
    assert 10 < fits < 1000
    ok = load_scenario(CITY_LLM, [f"nodes.2.servers={fits}"])
    check_memory(ok, stage_figures(ok, None))
    too_many = load_scenario(CITY_LLM, [f"nodes.2.servers={fits + 1}"])
    with pytest.raises(ScenarioError, match=rf"node 'bs2'.*{fits + 1} task\(s\) in service"):
        check_memory(too_many, stage_figures(too_many, None))


def test_bad_device_input_is_refused(tmp_path):
    with pytest.raises(ScenarioError, match=r"nodes\[1\]: device = 'gtx-1080'; allowed: one of \["):
        load_scenario(CITY_LLM, ["nodes.1.device=gtx-1080"])
    with pytest.raises(ScenarioError, match=r"device = 'l4' with model.stage_latency_s set"):
        load_scenario(CITY_LLM, ["model.stage_latency_s=[0.01, 0.01, 0.01]"])


@pytest.mark.ns3
def test_readme_first_command_runs_city_llm_end_to_end(tmp_path):
    """The README's first command (``dtoee run scenarios/city_llm.toml``), shortened to a few
    simulated seconds: LTE, four devices, DTO-EE, prompts of varying length."""
    import json

    import pandas as pd

    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "dtoee.cli", "run", str(CITY_LLM), "--out", str(out), "--no-progress",
                             "--set", "simulation.duration_s=4", "--set", "simulation.warmup_s=1",
                             "--set", "simulation.drain_s=3"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    tasks = pd.read_parquet(out / "tasks.parquet")
    hops = pd.read_parquet(out / "hops.parquet")
    counts = summary["counts_by_status"]
    assert counts["completed"] + counts["lost"] + counts["in_flight"] == len(tasks) > 20
    assert counts["completed"] >= 0.9 * len(tasks)
    assert summary["stage_figures_estimated"] is True and summary["large_model"] == "llama-2-7b"
    assert all(label.startswith("estimated (roofline)") for label in summary["devices"].values())
    # Offloads before stage 1 forward the prompt's int32 token ids; later ones carry the
    # task's hidden states in fp16.
    offloads = hops[hops["kind"] == "offload"]
    assert (offloads["stage"] >= 2).any()
    tokens = offloads["task_id"].map(tasks.set_index("task_id")["prompt_tokens"]).to_numpy()
    per_token = (offloads["stage"] >= 2).to_numpy() * (4096 * 2 - 4) + 4
    assert (offloads["bytes"].to_numpy() == tokens * per_token).all()
    # The breakdown adds up to the mean delay of the measured tasks.
    parts = summary["delay_breakdown_s"]
    assert sum(parts.values()) == pytest.approx(summary["delay_s"]["mean"], rel=1e-9)
    assert parts["radio"] > 0 and parts["compute"] > 0
