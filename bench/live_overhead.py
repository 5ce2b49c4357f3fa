"""Live-mode cost per stage: real ``run_stage`` calls vs the cached profile, plus the cost of
(de)serialising the activation in each wire format.

For the whole-run figure (live co-simulation wall time against network-only time + torch
forward time, and their ratio) run ``bench/overhead.py --live``.

    .venv/bin/python bench/live_overhead.py [--families mlp resnet vit llama] [--repeats 200]
        [--threads 1] [--cache-dir DIR]

Prints one row per (family, stage): profile median latency (ms, from the cache), live
median / p95 of run_stage (ms, measured now, including StageResult construction), and
serialize+deserialize medians for fp32 / fp16 / int8 (microseconds). Trains models that
are not cached yet.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from inference import FAMILIES, deserialize_activation, load_staged_model, serialize_activation


def _median_p95(fn, repeats: int) -> tuple[float, float]:
    for _ in range(3):
        fn()
    t = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        t[i] = time.perf_counter() - t0
    return float(np.median(t)), float(np.percentile(t, 95))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'family':8} {'k':>2} {'profile_ms':>10} {'live_ms':>8} {'live_p95':>8} "
          f"{'fp32_us':>8} {'fp16_us':>8} {'int8_us':>8} {'bytes_fp32':>10}")
    for fam in args.families:
        m = load_staged_model(fam, cache_dir=args.cache_dir)
        x = m.test_inputs[0:1]
        for k in range(1, m.num_stages + 1):
            med, p95 = _median_p95(lambda: m.run_stage(k, x), args.repeats)
            r = m.run_stage(k, x)
            shape = tuple(r.activation.shape)
            ser = {d: _median_p95(lambda d=d: deserialize_activation(serialize_activation(r.activation, d), shape, d),
                                  args.repeats)[0] for d in ("fp32", "fp16", "int8")}
            print(f"{fam:8} {k:>2} {m.profile[k - 1].latency_s * 1e3:>10.3f} {med * 1e3:>8.3f} {p95 * 1e3:>8.3f} "
                  f"{ser['fp32'] * 1e6:>8.1f} {ser['fp16'] * 1e6:>8.1f} {ser['int8'] * 1e6:>8.1f} {r.activation_bytes:>10}")
            x = r.activation


if __name__ == "__main__":
    main()
