#!/usr/bin/env bash
# Create .venv if it is missing and install the pinned dependencies from
# pyproject.toml. The install runs again only when pyproject.toml's content
# changes: its sha256 is kept in .venv/.deps-stamp.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.deps-stamp"

if [ ! -x "$PY" ] || ! "$PY" -c 'import sys' >/dev/null 2>&1; then
    log "creating $VENV with $($PYTHON --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
    rm -f "$STAMP"
fi

want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$want" != "$have" ]; then
    log "installing pinned dependencies (pyproject.toml changed or first run)"
    "$PY" -m pip install --disable-pip-version-check --no-input --quiet -e ".[dev]"
    printf '%s\n' "$want" > "$STAMP"
fi
