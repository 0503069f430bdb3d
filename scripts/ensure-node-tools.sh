#!/usr/bin/env bash
# Install the pinned Node tools of the contract tests (openapi-typescript,
# typescript, @redocly/cli) into tests/contract/node_modules with `npm ci`
# from the committed package-lock.json. The install runs again only when the
# lock file's content changes: its sha256 is kept in node_modules/.deps-stamp.
# Concurrent callers (pytest workers, make) wait on one lock.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR="$ROOT/tests/contract"
STAMP="$DIR/node_modules/.deps-stamp"

command -v npm >/dev/null 2>&1 || die "npm is missing: the contract tests need Node.js (>= 20.19) and npm"

want="$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)"
if [ "$want" = "$(cat "$STAMP" 2>/dev/null || true)" ]; then
    exit 0
fi

exec 9>"$DIR/.node-tools.lock"
flock 9
if [ "$want" != "$(cat "$STAMP" 2>/dev/null || true)" ]; then
    log "installing the contract tests' Node tools (package-lock.json changed or first run)"
    (cd "$DIR" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
    printf '%s\n' "$want" > "$STAMP"
fi
