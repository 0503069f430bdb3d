#!/usr/bin/env bash
# venv + pinned deps, PostgreSQL + Redis, and the database in $DATABASE_URL.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bash "$ROOT/scripts/ensure-venv.sh"
bash "$ROOT/scripts/ensure-services.sh"
"$PY" "$ROOT/scripts/ensure_db.py" "$DATABASE_URL"
