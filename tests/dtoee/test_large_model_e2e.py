"""A large decoder on named devices in a real ns-3 run, prompts of varying length: every
offload carries that task's tokens x hidden x wire-format bytes, the backhaul pcap accounts
for them, and every service lasts the roofline time of that task's length on that device."""
from __future__ import annotations

import pandas as pd
import pytest

from dtoee.run import run_isolated
from inference.devices import decoder_stage_costs, roofline_latency_s
from inference.large_models import LARGE_MODELS, int8_codec_s
from ns3_glue.build import load_glue
from ns3_glue.pcap import read_pcap

from .scenarios import scenario

pytestmark = pytest.mark.ns3

HIDDEN = LARGE_MODELS["llama-2-7b"].dim
INT8_SCALE_BYTES = 4  # the int8 wire format's absmax scale (inference.serialize)


def llm_scenario(dtype: str):
    return scenario(
        simulation={"duration_s": 2.0, "drain_s": 3.0, "seed": 3, "progress": False},
        model={"family": "llama", "num_stages": 3, "large_model": "llama-2-7b", "stage_latency_s": None,
               "activation_dtype": dtype},
        radio={"enabled": False},
        backhaul={"layout": "line", "rate_bps": 1e9, "delay_s": 0.001},
        # Stage 1 only on the L4, stages 2-3 only on the T4: every continuing task crosses bs0 -> bs1.
        nodes=[{"name": "bs0", "device": "l4", "stages": [1]},
               {"name": "bs1", "device": "t4", "stages": [2, 3], "position_m": [500.0, 0.0]}],
        ue_groups=[{"node": "bs0", "count": 2, "rate_per_s": 6.0}],
        workload={"prompt_tokens": {"distribution": "uniform", "low": 16, "high": 768}},
        policy={"default_threshold": 1.0},  # nobody exits early: every task is offloaded once
        output={"pcap": True},
    )


@pytest.mark.parametrize("dtype, wire_bytes, header", [("fp16", 2, 0), ("int8", 1, INT8_SCALE_BYTES)])
def test_offload_bytes_follow_each_tasks_prompt_and_the_pcap_accounts_for_them(ns3_session, tmp_path, dtype,
                                                                              wire_bytes, header):
    summary = run_isolated(llm_scenario(dtype), tmp_path)
    tasks = pd.read_parquet(tmp_path / "tasks.parquet").set_index("task_id")
    hops = pd.read_parquet(tmp_path / "hops.parquet")
    assert summary["counts_by_status"]["completed"] == len(tasks) > 10
    assert tasks["prompt_tokens"].nunique() > 5  # really varying
    offloads = hops[hops["kind"] == "offload"].set_index("task_id")
    assert len(offloads) == len(tasks) and (offloads["stage"] == 2).all()
    tokens = tasks.loc[offloads.index, "prompt_tokens"]
    assert (offloads["bytes"] == tokens * HIDDEN * wire_bytes + header).all()
    uplinks = hops[hops["kind"] == "uplink"].set_index("task_id")
    assert (uplinks["bytes"] == 4 * tasks.loc[uplinks.index, "prompt_tokens"]).all()  # int32 token ids

    # The backhaul pcap (bs0's side of bs0-bs1): each message is a 16-byte frame header plus
    # its payload; nothing else flows bs0 -> bs1 (static policy, no control messages).
    _, glue = load_glue()
    capture = read_pcap(tmp_path / "pcap" / "backhaul_bs0-bs1_at_bs0.pcap")
    sent = capture[capture["protocol"] == 6].groupby(["src", "dst"])["payload_bytes"].sum().astype(int)
    expected = int((offloads["bytes"] + glue.kHeaderBytes).sum())
    assert expected in set(sent), (expected, sent.to_dict())

    # Every service took the roofline time of that task's length on that node's device.
    services = hops[hops["kind"] == "service"]
    for row in services.itertuples():
        t = int(tasks.loc[row.task_id, "prompt_tokens"])
        cost = decoder_stage_costs("llama-2-7b", 3, t)[row.stage - 1]
        device = {"bs0": "l4", "bs1": "t4"}[row.src]
        expected_s = roofline_latency_s(cost.flops, cost.bytes_moved, device)
        if dtype == "int8":
            from inference.devices import DEVICES, ROOFLINE_EFFICIENCY

            dev = DEVICES[device]
            rate = dev.fp16_flops * ROOFLINE_EFFICIENCY
            if row.stage < 3:
                expected_s += int8_codec_s(t * HIDDEN, rate, dev.memory_bandwidth_Bps, quantise=True)
            if row.stage > 1:
                expected_s += int8_codec_s(t * HIDDEN, rate, dev.memory_bandwidth_Bps, quantise=False)
        assert row.end_s - row.start_s == pytest.approx(expected_s, rel=1e-9, abs=1e-9)
