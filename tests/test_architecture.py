"""Structure checks: no import circle between the project's modules, no capability probing."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "baselines", "metrics")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """``{module: project modules it imports}``, counting imports inside functions too (a lazy import is still
    a dependency) and the packages an import runs (``a.b.c`` runs ``a`` and ``a.b`` first)."""
    files = {module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    files["run_bench"] = REPO / "run_bench.py"
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                candidates = [base, *(f"{base}.{a.name}" for a in node.names)]
            else:
                continue
            # a submodule importing a sibling runs no package __init__ it is not already inside
            inside = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
            for candidate in candidates:
                parts = candidate.split(".")
                targets |= ({".".join(parts[:i]) for i in range(1, len(parts) + 1)} & set(files)) - inside
        graph[name] = targets - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_project_has_no_import_circle():
    graph = import_graph()
    assert graph["bench.runner"] >= {"bench.executors", "bench.report.render"}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_capability_probing():
    found = subprocess.run(["git", "grep", "-n", "hasattr", "--", "baselines", "bench"], cwd=REPO,
                           capture_output=True, text=True).stdout
    assert found == "", found
