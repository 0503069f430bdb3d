# Shared helpers for the scripts in this directory. Source it; do not run it.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

export DATABASE_URL="${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/together}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
# Where Stripe is: unset means localstripe on 127.0.0.1:8420 (the settings' default
# in development). Not exported: the settings decide for Django.
STRIPE_API_BASE="${STRIPE_API_BASE:-http://127.0.0.1:8420}"
STRIPE_API_BASE="${STRIPE_API_BASE%/}"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run as root, or through sudo when there is one.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root for: $*"
    fi
}

# host and port of a URL, "host port" on one line (defaults given as $2 $3).
url_host_port() {
    local url="$1" default_port="$2"
    python3 - "$url" "$default_port" <<'PY'
import sys
from urllib.parse import urlsplit
u = urlsplit(sys.argv[1])
print(u.hostname or "127.0.0.1", u.port or int(sys.argv[2]))
PY
}

is_local_host() {
    case "$1" in
        127.0.0.1|localhost|::1|/*) return 0 ;;
        *) return 1 ;;
    esac
}

# Exit 0 when our localstripe launcher (devtools/localstripe_together.py of this
# checkout) answers at the URL $1, 1 when nothing does, 2 when something else does,
# 3 when an older launcher does (its pid printed: ensure-services.sh replaces it).
localstripe_answers() {
    "$PY" - "$1" "$ROOT/devtools/localstripe_together.py" <<'PY'
import hashlib, json, sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1] + "/_config/together", timeout=2) as response:
        answer = json.loads(response.read())
except urllib.error.HTTPError:
    sys.exit(2)
except OSError:
    sys.exit(1)
except ValueError:
    sys.exit(2)
if not isinstance(answer, dict) or "together" not in answer:
    sys.exit(2)
with open(sys.argv[2], "rb") as f:
    current = hashlib.sha256(f.read()).hexdigest()[:16]
if answer["together"] != current:
    print(answer.get("pid", ""))
    sys.exit(3)
PY
}
