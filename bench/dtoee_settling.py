"""Simulated time online DTO-EE needs to come within 5% of the oracle's windowed mean delay.

    python bench/dtoee_settling.py [--scenario scenarios/paper_comparison.toml] [--load 1.4]
                                   [--duration 20] [--rounds 1 4] [--window 2] [--no-append]

Runs the scenario (events dropped, warm-up 0, every UE rate times ``--load``) once with the
oracle (policy kind ``optimum``: the centralised cvxpy strategy from the configured rates,
fixed from t = 0) and once per ``--rounds`` value with online DTO-EE
(``policy.rounds_per_period``), same seed, so the same tasks arrive at the same times.
Windowed mean delay by creation time (``--window`` s windows every ``window/4`` s); the
settling time is the end of the first window after which every window's mean delay is within
5% of the oracle's mean delay over the same window. Writes docs/img/dtoee_settling.png and
appends a table to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from _report import append, machine, markdown_table  # noqa: E402

from dtoee.analysis import windowed_mean_delay  # noqa: E402
from dtoee.sweep import read_toml  # noqa: E402


def run(scenario: str, out: Path, overrides: list[str]) -> pd.DataFrame:
    cmd = [sys.executable, "-m", "dtoee.cli", "run", scenario, "--out", str(out)]
    for item in overrides:
        cmd += ["--set", item]
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return pd.read_parquet(out / "tasks.parquet")


def settling_s(dtoee: pd.DataFrame, oracle: pd.DataFrame, window_s: float, tolerance: float = 0.05):
    step = window_s / 4
    a = windowed_mean_delay(dtoee, window_s, step).set_index("start_s")["mean_delay_s"]
    b = windowed_mean_delay(oracle, window_s, step).set_index("start_s")["mean_delay_s"]
    ratio = (a / b).dropna()
    within = (ratio <= 1.0 + tolerance).to_numpy()
    for n in range(len(within)):
        if within[n:].all():
            return float(ratio.index[n] + window_s), ratio
    return None, ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="scenarios/paper_comparison.toml")
    parser.add_argument("--load", type=float, default=1.4)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--window", type=float, default=2.0)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    data = read_toml(ROOT / args.scenario)
    base = [f"simulation.duration_s={args.duration}", "simulation.warmup_s=0", "events=[]"]
    base += [f"ue_groups.{n}.rate_per_s={float(g.get('rate_per_s', 1.0)) * args.load}"
             for n, g in enumerate(data.get("ue_groups", []))]
    started = time.perf_counter()
    rows, curves = [], {}
    with tempfile.TemporaryDirectory(prefix="dtoee-settling-") as tmp:
        oracle = run(args.scenario, Path(tmp) / "oracle", base + ["policy.kind=optimum"])
        for r in args.rounds:
            tasks = run(args.scenario, Path(tmp) / f"dtoee{r}",
                        base + ["policy.kind=dtoee", f"policy.rounds_per_period={r}"])
            settled, ratio = settling_s(tasks, oracle, args.window)
            curves[r] = ratio
            period = float(data.get("policy", {}).get("period_s", 1.0))
            rows.append([r, period, "not within the run" if settled is None else f"{settled:.1f}",
                         f"{1e3 * tasks.loc[tasks.status == 'completed', 'delay_s'].mean():.1f}",
                         f"{1e3 * oracle.loc[oracle.status == 'completed', 'delay_s'].mean():.1f}"])
    wall = time.perf_counter() - started
    table = markdown_table(["rounds per period", "period (s)", "within 5% of oracle after (simulated s)",
                            "DTO-EE mean delay (ms)", "oracle mean delay (ms)"], rows)
    print(table)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    for r, ratio in curves.items():
        ax.plot(ratio.index + args.window, ratio.to_numpy(), label=f"DTO-EE, {r} round(s)/period")
    ax.axhline(1.05, color="grey", ls="--", lw=1, label="oracle + 5%")
    ax.set_xlabel("simulated time (s), window end")
    ax.set_ylabel("windowed delay / oracle's")
    ax.set_title(f"{Path(args.scenario).stem}, load {args.load:g}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
    fig.savefig(ROOT / "docs" / "img" / "dtoee_settling.png", dpi=90)
    if not args.no_append:
        append(f"DTO-EE online: time to within 5% of the oracle ({Path(args.scenario).stem}, load {args.load:g})",
               table, notes=f"{args.duration:g} simulated s, seed from the scenario, {args.window:g} s windows; "
               f"figure docs/img/dtoee_settling.png; wall {wall:.0f} s.",
               command="python " + " ".join(shlex.quote(a) for a in ["bench/dtoee_settling.py", *sys.argv[1:]]),
               machine_text=machine())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
