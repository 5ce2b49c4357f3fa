"""Shared by the bench/ scripts: describe the machine, print a table, append to docs/benchmarks.md."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "docs" / "benchmarks.md"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        memory = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    load = ", load average %.2f %.2f %.2f at start" % os.getloadavg() if hasattr(os, "getloadavg") else ""
    commit = ""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} logical CPUs{memory}{load}; Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}; commit {commit or '?'}")


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def append(title: str, table: str, notes: str = "", command: str = "", machine_text: str | None = None) -> None:
    BENCHMARKS_MD.parent.mkdir(parents=True, exist_ok=True)
    if not BENCHMARKS_MD.exists():
        BENCHMARKS_MD.write_text("# Benchmarks\n\nAppended by the scripts in `bench/` (newest last). "
                                 "Each entry names the machine it ran on.\n")
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = f"\n## {title} ({stamp})\n\n"
    if command:
        text += f"`{command}`\n\n"
    text += f"Machine: {machine_text or machine()}\n\n{table}\n"
    if notes:
        text += f"\n{notes}\n"
    with BENCHMARKS_MD.open("a") as handle:
        handle.write(text)
