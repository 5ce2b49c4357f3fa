"""Benchmark: DTO-EE rounds to reach 1% of the optimum, and per-node update time vs neighbours.

Usage::

    python bench/dtoee_rounds.py [--instances 20] [--rounds 200] [--gap 0.01]
    python bench/dtoee_rounds.py --categories [--append docs/benchmarks.md]

``--categories``: rounds to 5% and to 1% per category of the grown acceptance set
(tests/optimizer/optimizer_testkit.py: moderate, high_load, real_curves, slow_links, w_range;
300 rounds each), as a markdown table; ``--append`` adds it to a file. Otherwise prints two
markdown tables to stdout:

1. per instance (3-10 nodes, 2-4 stages, heterogeneous speeds): the centralised optimum
   (cvxpy/Clarabel), the rounds DTO-EE needs to reach ``gap = (J - J*) / D* <= --gap``, and
   the gap after ``--rounds``;
2. the mean wall time of one node's DTO-R + DTO-O work per round, by number of neighbours
   (nodes joined to it by a link), on full-mesh instances of growing size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optimizer.centralized import gap_to_optimum, solve_centralized  # noqa: E402
from optimizer.dtoee import run_in_memory  # noqa: E402
from optimizer.system import random_instance  # noqa: E402


def rounds_table(instances: int, rounds: int, gap: float) -> list[str]:
    lines = [
        f"| seed | nodes | stages | J* | D* (ms) | A* | solve (s) | rounds to {gap:.0%} | gap after {rounds} |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    needed, finals = [], []
    for seed in range(instances):
        n, k = 3 + seed % 8, 2 + seed % 3
        system = random_instance(seed, n, k)
        optimum = solve_centralized(system)
        history = run_in_memory(system, rounds)
        reached = history.rounds_to_gap(optimum.objective, optimum.mean_delay_s, gap)
        final = gap_to_optimum(float(history.objective[-1]), optimum)
        needed.append(reached)
        finals.append(final)
        lines.append(
            f"| {seed} | {n} | {k} | {optimum.objective:.4f} | {1e3 * optimum.mean_delay_s:.2f} | "
            f"{optimum.accuracy:.3f} | {optimum.solve_time_s:.2f} | {reached if reached else 'not reached'} | "
            f"{final:.2e} |"
        )
    hit = [r for r in needed if r is not None]
    lines.append("")
    lines.append(
        f"Reached {gap:.0%} on {len(hit)}/{instances}; rounds mean {statistics.mean(hit) if hit else float('nan'):.1f}, "
        f"median {statistics.median(hit) if hit else float('nan'):.0f}, max {max(hit) if hit else 'n/a'}; "
        f"final gap mean {statistics.mean(finals):.2e}, max {max(finals):.2e}."
    )
    return lines


def category_table(rounds: int = 300) -> list[str]:
    """Per category: rounds to 5% and to 1% (median / p90 / max), and the share meeting each bar."""
    import math

    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "optimizer"))
    from optimizer_testkit import acceptance_set  # noqa: E402

    rows: dict[str, list] = {}
    misses: list[str] = []
    for category, seed, system in acceptance_set():
        optimum = solve_centralized(system)
        history = run_in_memory(system, rounds)
        gaps = (history.objective - optimum.objective) / optimum.mean_delay_s
        r5 = next((t + 1 for t, g in enumerate(gaps) if g <= 0.05), None)
        r1 = next((t + 1 for t, g in enumerate(gaps) if g <= 0.01), None)
        over = sum(1 for t in range(5, rounds) if not math.isfinite(history.objective[t]) or history.max_rho[t] >= 1)
        rows.setdefault(category, []).append((r5, r1, over))
        if not (r5 and r5 <= 30 and r1 and r1 <= 100) or over:
            misses.append(f"{category} {seed} (5% at {r5}, 1% at {r1}, gap after {rounds} {gaps[-1]:.2%}"
                          + (f", overloaded in {over} rounds after round 5" if over else "") + ")")

    def dist(values):
        hit = [v for v in values if v is not None]
        if not hit:
            return "n/a"
        return f"{np.median(hit):.0f} / {np.percentile(hit, 90):.0f} / {max(hit)}" + (
            f" ({len(values) - len(hit)} not reached)" if len(hit) < len(values) else "")

    lines = [
        f"| category | instances | rounds to 5% (median / p90 / max) | rounds to 1% | 5% by 30 | 1% by 100 | 1% by {rounds} | overloaded after round 5 |",
        "|---|---:|---|---|---:|---:|---:|---:|",
    ]
    for category, rs in rows.items():
        n = len(rs)
        lines.append(
            f"| {category} | {n} | {dist([r[0] for r in rs])} | {dist([r[1] for r in rs])} | "
            f"{sum(1 for r in rs if r[0] and r[0] <= 30)}/{n} | {sum(1 for r in rs if r[1] and r[1] <= 100)}/{n} | "
            f"{sum(1 for r in rs if r[1])}/{n} | {sum(1 for r in rs if r[2])}/{n} instances |"
        )
    lines += ["", "Instances missing a bar (5% by round 30, 1% by round 100, no overload after round 5): "
              + ("; ".join(misses) if misses else "none") + "."]
    return lines


def update_time_table(sizes: list[int], rounds: int) -> list[str]:
    by_degree: dict[int, list[float]] = {}
    for n in sizes:
        system = random_instance(100 + n, n, 3, link_prob=1.0)
        history = run_in_memory(system, rounds)
        for node, seconds in history.update_time_s.items():
            by_degree.setdefault(len(system.neighbours(node)), []).append(seconds)
    lines = [
        "| neighbours | nodes measured | per-node update per round (us) |",
        "|---:|---:|---:|",
    ]
    for degree in sorted(by_degree):
        values = by_degree[degree]
        lines.append(f"| {degree} | {len(values)} | {1e6 * statistics.mean(values):.0f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.01)
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 5, 10, 20, 30])
    parser.add_argument("--timing-rounds", type=int, default=30)
    parser.add_argument("--categories", action="store_true", help="rounds per category of the acceptance set")
    parser.add_argument("--append", type=Path, default=None, help="also append the category table to this file")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.categories:
        lines = ["## DTO-EE over the acceptance set: rounds to 5% and 1% per category", "",
                 "gap = (J - J*) / D*; command: `python bench/dtoee_rounds.py --categories`", "",
                 *category_table(), ""]
        print("\n".join(lines))
        if args.append is not None:
            with args.append.open("a") as out:
                out.write("\n" + "\n".join(lines))
        return 0
    print("## DTO-EE: rounds to reach the centralised optimum\n")
    print("gap = (J - J*) / D*, J = D - w A (w = 0.5 s per unit accuracy)\n")
    print("\n".join(rounds_table(args.instances, args.rounds, args.gap)))
    print("\n## Per-node update time vs number of neighbours (full mesh, 3 stages)\n")
    print("\n".join(update_time_table(args.sizes, args.timing_rounds)))
    print(f"\n(total bench time {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
