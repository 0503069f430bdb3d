"""Dependencies point one way around the compliance arithmetic: no import cycle
passes through compliance or donations (the regex they shared now lives with
revenue codes in compliance.models), and compliance.rules imports models only, so
every reader (services, selectors, dashboard, reports, payments) may ask it.
The graph is tests/hardening/test_import_graph.py's (lazy imports included)."""
from __future__ import annotations

from tests.hardening.test_import_graph import cycles, import_graph, module_files, our_packages


def test_no_import_cycle_through_compliance_or_donations():
    graph = import_graph(module_files(our_packages()))
    assert "compliance.models" in graph["donations.services"]  # REVENUE_CODE_RE
    assert not {"donations.services", "donations.views"} & graph["compliance.services"]
    assert [c for c in cycles(graph) if any(m.split(".")[0] in ("compliance", "donations") for m in c)] == []


def test_the_rules_import_models_only():
    graph = import_graph(module_files(our_packages()))
    assert graph["compliance.rules"] == {"compliance.models", "donations.models"}
