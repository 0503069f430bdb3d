"""Redocly's recommended rules pass on the served document with zero errors
(warnings are printed, not failed)."""
from __future__ import annotations

import json

import pytest

from tests.contract.conftest import HERE, NODE_ENV, output_of, run

pytestmark = pytest.mark.contract


def test_redocly_recommended_rules_have_no_error(document_path, node_tools):
    result = run(
        [
            str(node_tools / "redocly"), "lint", "--config", str(HERE / "redocly.yaml"), "--format", "json",
            str(document_path),
        ],
        cwd=document_path.parent, timeout=240, env=NODE_ENV,
    )
    start = result.stdout.find("{")
    assert start >= 0, f"redocly printed no JSON report\n{output_of(result)}"
    report = json.loads(result.stdout[start:])
    problems = report.get("problems", [])
    errors = [p for p in problems if p.get("severity") == "error"]
    warnings = [p for p in problems if p.get("severity") != "error"]

    def line(p):
        where = ", ".join(loc.get("pointer", "") for loc in p.get("location", []))
        return f"  {p.get('severity')} {p.get('ruleId')}: {p.get('message')} at {where}"

    for warning in warnings:
        print(line(warning))
    assert not errors, "Redocly recommended rules: errors\n" + "\n".join(map(line, errors))
    assert result.returncode == 0, output_of(result)
