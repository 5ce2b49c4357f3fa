"""``pip install .`` (not editable) into a fresh environment, then ``dtoee run`` (issue 11).

The wheel must carry everything the C++ glue needs (ns3_glue/CMakeLists.txt and cpp/), and
the glue must build from the installed package, not from a repository checkout. To stay fast
the project is installed with ``--no-deps`` into a fresh venv that sees this environment's
dependencies through a ``.pth`` file written after the install (so pip never sees, let alone
touches, this environment's own dtoee-sim); cppyy and ns-3 are not rebuilt.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.ns3]


def _run(command: list[str], **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kw)
    assert result.returncode == 0, f"{' '.join(map(str, command))}\n{result.stdout}\n{result.stderr}"
    return result


def test_wheel_install_builds_glue_and_runs(mlp_model, tmp_path):
    source = tmp_path / "src"  # a copy, so building leaves nothing in the checkout
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "runs", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis", "tests",
        ".whl", ".gl", "out", ".cache"))
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", str(wheels), str(source)])
    (wheel,) = wheels.glob("dtoee_sim-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"ns3_glue/CMakeLists.txt", "ns3_glue/cpp/dtoee_glue.cc", "ns3_glue/cpp/dtoee_glue.h",
            "dtoee_cache.py"} <= names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)])
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    parents = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "zz_dependencies.pth").write_text("".join(f"{p}\n" for p in parents))

    cache = tmp_path / "cache"  # fresh: the glue is built from the installed package
    cache.mkdir()
    shutil.copy2(mlp_model.cache_path, cache / mlp_model.cache_path.name)  # no retraining
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["DTOEE_CACHE"] = str(cache)
    where = _run([str(python), "-c", "import dtoee, ns3_glue; print(dtoee.__file__); print(ns3_glue.__file__)"],
                 env=env, cwd=tmp_path).stdout.split()
    assert all(Path(p).is_relative_to(site) for p in where), where
    out = tmp_path / "run"
    _run([str(venv / "bin" / "dtoee"), "run", str(REPO / "scenarios" / "city_small.toml"), "--seed", "3",
          "--set", "simulation.duration_s=3", "--set", "simulation.drain_s=2", "--out", str(out), "--no-progress"],
         env=env, cwd=tmp_path)
    assert list((cache / "glue").glob("*/libdtoee_glue.so"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 3 and summary["tasks_generated"] > 0 and not summary["partial"]
    assert summary["counts_by_status"]["completed"] > 0
    assert summary["data_splits"]["simulated_samples"] == "test"
