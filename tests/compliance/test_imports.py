"""Dependencies point one way: no import cycle passes through a module of
compliance or donations (imports inside functions included: a deferred import
is still a dependency). compliance.rules, the compliance arithmetic, imports
models only, so every reader can ask it."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("compliance", "donations")


def _modules() -> dict[str, Path]:
    modules = {}
    for package in ROOT.iterdir():
        if not (package / "__init__.py").is_file() or package.name == "tests":
            continue
        for path in package.rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def _graph() -> dict[str, set[str]]:
    modules = _modules()

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {known(alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from compliance import rules` imports the module compliance.rules.
                targets |= {known(f"{node.module}.{alias.name}") if f"{node.module}.{alias.name}" in modules else known(node.module)
                            for alias in node.names}
        graph[name] = targets - {None, name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_through_compliance_or_donations():
    graph = _graph()
    assert "compliance.rules" in graph and "donations.services" in graph
    assert "compliance.rules" in graph["donations.selectors"]
    involved = [c for c in _cycles(graph) if any(m.split(".")[0] in CHECKED for m in c)]
    assert involved == []


def test_the_rules_import_models_only():
    project = {m.split(".")[0] for m in _graph()}
    assert {m for m in _graph()["compliance.rules"] if m.split(".")[0] in project} == {"compliance.models", "donations.models"}
