"""The API contract as integrators meet it: the served /api/v1/openapi.json,
written to a file, fed to the tools they use (openapi-python-client,
openapi-typescript + tsc --strict, Redocly, schemathesis).

The Node tools are pinned in tests/contract/package.json and its lock file,
installed by scripts/ensure-node-tools.sh (`make test` runs it; the fixture
runs it too, so `pytest -m contract` works on its own; it is a no-op when the
lock file has not changed). Every subprocess has a timeout."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NODE_BIN = HERE / "node_modules" / ".bin"
VENV_BIN = Path(sys.executable).parent


def run(cmd: list[str], *, cwd: Path, timeout: int, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a tool, bounded; the result carries its output for the assertion message."""
    full_env = {**os.environ, **(env or {})}
    full_env["PATH"] = f"{VENV_BIN}{os.pathsep}{full_env.get('PATH', '')}"
    try:
        return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:  # pragma: no cover - only on a wedged tool
        pytest.fail(f"{' '.join(map(str, cmd))} did not finish in {timeout}s:\n{exc.stdout}\n{exc.stderr}")


def output_of(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"


@pytest.fixture(scope="session")
def served_document(django_db_blocker) -> dict:
    """The document exactly as the site serves it to integrators."""
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200, response.content[:500]
    return response.json()


@pytest.fixture(scope="session")
def document_path(served_document, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("contract") / "openapi.json"
    path.write_text(json.dumps(served_document, indent=2))
    return path


@pytest.fixture(scope="session")
def node_tools() -> Path:
    result = run(["bash", str(ROOT / "scripts" / "ensure-node-tools.sh")], cwd=ROOT, timeout=900)
    assert result.returncode == 0, f"scripts/ensure-node-tools.sh failed\n{output_of(result)}"
    for tool in ("openapi-typescript", "tsc", "redocly"):
        assert (NODE_BIN / tool).exists(), f"{tool} missing from {NODE_BIN}"
    return NODE_BIN


# Redocly: no telemetry, no update check (CI may be offline apart from npm).
NODE_ENV = {"REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true", "NO_COLOR": "1", "FORCE_COLOR": "0"}
