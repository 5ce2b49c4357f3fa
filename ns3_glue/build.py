"""Build (once) and load the C++ half of ns3_glue against the installed ns3 wheel.

The library is compiled by CMake from ``ns3_glue/CMakeLists.txt`` (part of the package, so
a clone, an editable install, ``pip install .`` and an installed wheel all carry it) on first
use and cached under ``$DTOEE_CACHE/glue/<hash>`` (default ``~/.cache/dtoee``), the hash
covering the C++ sources, the CMake file and the ns3 wheel's location; later runs load it in
milliseconds. ``dtoee build`` does the same ahead of time. Building at first use rather than
at install time avoids putting ns3 in a PEP 517 build environment, which would rebuild cppyy
there (docs/ns3-notes.md). Nothing is ever written inside the installed package.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from dtoee_cache import cache_root  # the one definition of the cache folder (not a project layer)

PACKAGE_DIR = Path(__file__).resolve().parent
CPP_DIR = PACKAGE_DIR / "cpp"
HEADER = CPP_DIR / "dtoee_glue.h"
SOURCES = (HEADER, CPP_DIR / "dtoee_glue.cc")
CMAKE_FILE = PACKAGE_DIR / "CMakeLists.txt"
LIBRARY_NAME = "libdtoee_glue.so"

__all__ = ["build_library", "cache_root", "load_glue", "ns3_root"]


def ns3_root() -> Path:
    """The installed wheel's ``ns3`` folder (``include/`` and ``lib64/`` live there)."""
    spec = importlib.util.find_spec("ns3")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the ns3 wheel is not installed: pip install ns3==3.44.post0")
    return Path(list(spec.submodule_search_locations)[0])


def _check_sources() -> None:
    missing = [str(path) for path in (*SOURCES, CMAKE_FILE) if not path.is_file()]
    if missing:
        raise RuntimeError(f"ns3_glue is installed without its C++ sources ({', '.join(missing)}): "
                           "reinstall dtoee-sim (they are package data of ns3_glue)")


def _build_hash(root: Path) -> str:
    digest = hashlib.sha256(str(root).encode())
    for path in (*SOURCES, CMAKE_FILE):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build_library(verbose: bool = False) -> Path:
    """Compile the glue library if no cached build matches; return the ``.so`` path."""
    root = ns3_root()
    _check_sources()
    target_dir = cache_root() / "glue" / _build_hash(root)
    library = target_dir / LIBRARY_NAME
    if library.exists():
        return library
    source_dir = PACKAGE_DIR
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir.parent) as scratch:
        build_dir = Path(scratch) / "build"
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        commands = [
            ["cmake", "-S", str(source_dir), "-B", str(build_dir), *generator, f"-DNS3_ROOT={root}"],
            ["cmake", "--build", str(build_dir)],
        ]
        for command in commands:
            result = subprocess.run(command, capture_output=not verbose, text=True)
            if result.returncode != 0:
                raise RuntimeError(
                    f"building the ns3_glue C++ library failed: {' '.join(command)}\n"
                    f"{result.stdout}\n{result.stderr}"
                )
        staged = Path(scratch) / LIBRARY_NAME
        shutil.copy2(build_dir / LIBRARY_NAME, staged)
        target_dir.mkdir(parents=True, exist_ok=True)
        os.replace(staged, library)  # atomic: a racing process sees all or nothing
    return library


_loaded = False


def load_glue():
    """Import ns-3, build/load the glue library, return ``(ns, cppyy.gbl.dtoee)``."""
    global _loaded
    with _known_import_noise_filtered():
        from ns import ns  # noqa: F401  (parses the ns-3 headers once per process)
        import cppyy

        if not _loaded:
            library = build_library()
            cppyy.add_include_path(str(CPP_DIR))
            cppyy.include(str(HEADER))
            cppyy.load_library(str(library))
            _loaded = True
    return ns, cppyy.gbl.dtoee


# Printed by cling on every import of the wheel; harmless (docs/ns3-notes.md). Only lines that
# contain it are dropped: everything else written to stderr meanwhile is passed on.
KNOWN_IMPORT_NOISE = "[runStaticInitializersOnce]: Failed to materialize symbols"


@contextlib.contextmanager
def _known_import_noise_filtered():
    """Capture file descriptor 2 (cling writes there from C++, not through ``sys.stderr``)
    while the block runs, then write back every line but the known noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode(errors="replace").splitlines(keepends=True)
                    if KNOWN_IMPORT_NOISE not in line]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
