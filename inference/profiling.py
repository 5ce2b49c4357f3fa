"""Per-stage profiles: latency (measured), activation and parameter bytes, FLOPs.

Latency is wall-clock time of one batch-1 call of stage block k + exit head k (+ softmax),
under ``torch.inference_mode()``, measured with the torch thread count in force when
``profile_stages`` runs (``load_staged_model`` runs it with 1 thread by default; the
``device`` tag records the count). FLOPs are counted by ``torch.utils.flop_counter``
(matmul, conv and attention; 1 multiply-add = 2 FLOPs; element-wise ops not counted).
"""
from __future__ import annotations

import dataclasses
import os
import platform
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from .serialize import activation_size_bytes


@dataclass(frozen=True)
class StageProfile:
    """Profile of stage ``stage`` (1-based) = stage block + its exit head, batch size 1.

    latency_s / latency_p95_s: median / 95th percentile wall time per call, seconds.
    activation_bytes: output activation of the stage per sample, fp32 (what is sent on).
    param_bytes: parameters (+ float buffers) of block and exit head, fp32 unless estimated.
    flops: floating-point operations per sample (2 per multiply-add).
    device: where it was measured (or the device whose throughput an estimate used).
    activation_bytes_fp16 / activation_bytes_int8: same activation in those wire formats.
    estimated: True when latency (and sizes) come from an architecture formula, not a run.
    """

    stage: int
    latency_s: float
    latency_p95_s: float
    activation_bytes: int
    param_bytes: int
    flops: int
    device: str
    activation_bytes_fp16: int = 0
    activation_bytes_int8: int = 0
    estimated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "StageProfile":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def cpu_name() -> str:
    """Human-readable CPU model (from /proc/cpuinfo where present)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def device_tag(num_threads: int | None = None) -> str:
    """e.g. 'cpu: AMD EPYC (2 cores), torch 2.13.0+cpu, 1 thread'."""
    n = torch.get_num_threads() if num_threads is None else num_threads
    return f"cpu: {cpu_name()} ({os.cpu_count()} cores), torch {torch.__version__}, {n} thread{'s' if n != 1 else ''}"


def time_call(fn: Callable[[], object], repeats: int = 30, warmup: int = 3) -> np.ndarray:
    """Wall time of ``repeats`` calls of ``fn`` in seconds (after ``warmup`` untimed calls)."""
    if repeats < 1:
        raise ValueError(f"repeats={repeats}: must be >= 1")
    for _ in range(warmup):
        fn()
    out = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return out


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` as counted by torch's FlopCounterMode."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def measured_stage_profile(stage: int, run: Callable[[], torch.Tensor], param_bytes: int,
                           repeats: int = 30) -> StageProfile:
    """Profile one stage: ``run()`` executes block + head on a batch-1 input, returns the activation."""
    act = run()
    numel = act.numel()
    times = time_call(run, repeats=repeats)
    return StageProfile(
        stage=stage,
        latency_s=float(np.median(times)),
        latency_p95_s=float(np.percentile(times, 95)),
        activation_bytes=activation_size_bytes(numel, "fp32"),
        param_bytes=int(param_bytes),
        flops=count_flops(run),
        device=device_tag(),
        activation_bytes_fp16=activation_size_bytes(numel, "fp16"),
        activation_bytes_int8=activation_size_bytes(numel, "int8"),
        estimated=False,
    )
