"""Dependencies point one way.

The import graph of our own modules (every .py of `together/` and of each of
our installed apps, outside migrations and tests) is read with `ast`: every
`import` and `from … import`, at the top of a module or inside a function
(a lazy import is still a dependency). It must have no cycle between modules,
and nothing in `together/` (the base every app builds on) may import an app:
apps reach `together/` through settings (class paths as strings) and URLs.
"""
from __future__ import annotations

import ast
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
# The two modules of the base that name the apps: the list of them and their URLs.
BASE_MAY_NAME_APPS = {"together.settings", "together.urls"}


def our_packages() -> list[str]:
    names = {"together"}
    for app in settings.INSTALLED_APPS:
        top = app.split(".")[0]
        if (ROOT / top / "__init__.py").exists():
            names.add(top)
    return sorted(names)


def module_files(packages: list[str]) -> dict[str, Path]:
    modules = {}
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts or "tests" in parts:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """{module: the modules of ours it imports}."""

    def ours(name: str) -> str | None:
        while name:
            if name in modules:
                return name
            name = name.rpartition(".")[0]
        return None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(ours(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                # `from pkg import module` imports the module; `from module import name` the module.
                targets.update(ours(f"{base}.{alias.name}") or ours(base) for alias in node.names)
        targets.discard(None)
        targets.discard(module)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def describe(component: list[str], graph: dict[str, set[str]]) -> str:
    return "; ".join(f"{m} -> {', '.join(sorted(graph[m] & set(component)))}" for m in component)


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph(module_files(our_packages()))
    assert "webhooks.events" in graph["donations.services"]  # from webhooks.events import event_record
    assert "organisations.services" in graph["organisations.api.authentication"]
    assert "together.celery" in graph["together"]  # from together.celery import app (in __init__)


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules():
    graph = import_graph(module_files(our_packages()))
    found = [describe(component, graph) for component in cycles(graph)]
    assert found == [], "import cycles:\n" + "\n".join(found)


def test_the_base_imports_no_app():
    packages = our_packages()
    apps = set(packages) - {"together"}
    assert {"organisations", "donations", "webhooks"} <= apps
    graph = import_graph(module_files(packages))
    upward = {
        module: sorted(t for t in targets if t.split(".")[0] in apps)
        for module, targets in graph.items()
        if module.split(".")[0] == "together" and module not in BASE_MAY_NAME_APPS
    }
    assert {m: t for m, t in upward.items() if t} == {}
