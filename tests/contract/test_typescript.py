"""TypeScript integrators: openapi-typescript turns the served document into
`schema.d.ts`, and usage.ts (what they write: the quickstart, headers, the
Donation object, errors, webhooks) compiles under `tsc --strict`. Its
`@ts-expect-error` line fails the compile when the donation body is not a
union by donation_type."""
from __future__ import annotations

import re
import shutil

import pytest

from tests.contract.conftest import HERE, NODE_ENV, output_of, run
from webhooks.events import ALL_EVENT_TYPES

pytestmark = pytest.mark.contract


def event_checks() -> str:
    lines, names = [], []
    for event_type in ALL_EVENT_TYPES:
        name = re.sub(r"\W", "_", event_type)
        lines.append(f'const data_{name}: HasTypedData<"{event_type}"> = true;')
        lines.append(f'const type_{name}: WebhookEventType<"{event_type}"> = "{event_type}";')
        names += [f"data_{name}", f"type_{name}"]
    lines.append(f"export {{ {', '.join(names)} }};")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def typescript_dir(document_path, node_tools, tmp_path_factory):
    out = tmp_path_factory.mktemp("typescript")
    result = run(
        [str(node_tools / "openapi-typescript"), str(document_path), "--output", str(out / "schema.d.ts")],
        cwd=out, timeout=180, env=NODE_ENV,
    )
    assert result.returncode == 0, f"openapi-typescript failed\n{output_of(result)}"
    usage = (HERE / "usage.ts").read_text()
    assert "/*EVENT_CHECKS*/" in usage
    (out / "usage.ts").write_text(usage.replace("/*EVENT_CHECKS*/", event_checks()))
    return out


def test_typescript_types_compile_under_strict(typescript_dir, node_tools):
    result = run(
        [
            str(node_tools / "tsc"), "--strict", "--noEmit", "--target", "es2022", "--module", "esnext",
            "--moduleResolution", "bundler", "--pretty", "false", "usage.ts",
        ],
        cwd=typescript_dir, timeout=240, env=NODE_ENV,
    )
    assert result.returncode == 0, (
        f"tsc --strict rejected usage.ts against the generated schema.d.ts ({typescript_dir}):\n{output_of(result)}"
    )
