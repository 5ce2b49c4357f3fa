"""The package's import graph: no cycles, and the layers import only downwards.

Read from the source (``ast``), so an import hidden inside a function counts as much as one at
the top of a module: a cycle "broken" by a function-local import is still a cycle.

Layers (docs/architecture.md): ``optimizer/`` and ``inference/`` never import ns-3 or
``ns3_glue``; ``ns3_glue`` imports nothing of ``dtoee``, ``optimizer`` or ``inference`` (it
receives a plain network description).
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dtoee", "optimizer", "inference", "ns3_glue")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def imported_names(path: Path, module: str) -> set[str]:
    """Every module name ``path`` imports, anywhere in it (top level, functions, branches).
    ``from a.b import c`` yields both ``a.b`` and ``a.b.c`` (c may be a module)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> nx.DiGraph:
    """Edges importer -> imported, between the project's own modules, plus edges to the
    external top-level names ``ns3`` (the ns-3 wheel) and ``torch``, tagged ``external``."""
    modules = project_modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for module, path in modules.items():
        for name in imported_names(path, module):
            if name in modules and name != module:
                graph.add_edge(module, name)
            elif name.split(".")[0] == "ns3":
                graph.add_edge(module, "ns3", external=True)
    return graph


def _edges_between(graph: nx.DiGraph, sources: tuple[str, ...], targets: tuple[str, ...]) -> list[tuple[str, str]]:
    def under(name: str, roots: tuple[str, ...]) -> bool:
        return any(name == root or name.startswith(root + ".") for root in roots)

    return sorted((a, b) for a, b in graph.edges if under(a, sources) and under(b, targets))


def test_the_walker_sees_function_local_and_relative_imports(tmp_path):
    source = tmp_path / "pkg" / "mod.py"
    source.parent.mkdir()
    source.write_text("import os\nfrom . import sibling\n\ndef f():\n    from dtoee.plots import run_plots\n"
                      "    if True:\n        import ns3_glue.build\n")
    names = imported_names(source, "pkg.mod")
    assert {"os", "pkg", "pkg.sibling", "dtoee.plots", "dtoee.plots.run_plots", "ns3_glue.build"} <= names


def test_the_walker_finds_a_planted_cycle():
    graph = import_graph()
    assert graph.number_of_nodes() > 30 and graph.number_of_edges() > 30
    planted = graph.copy()
    planted.add_edge("dtoee.config", "dtoee.compare")  # compare imports config (via sweep)
    assert list(nx.simple_cycles(planted))


def test_no_import_cycles():
    cycles = sorted(sorted(cycle) for cycle in nx.simple_cycles(import_graph()))
    assert cycles == [], f"import cycles: {cycles}"


def test_optimizer_and_inference_never_import_ns3():
    graph = import_graph()
    assert _edges_between(graph, ("optimizer", "inference"), ("ns3", "ns3_glue")) == []


def test_ns3_glue_imports_nothing_of_dtoee_optimizer_or_inference():
    graph = import_graph()
    assert _edges_between(graph, ("ns3_glue",), ("dtoee", "optimizer", "inference")) == []
