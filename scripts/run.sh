#!/usr/bin/env bash
# `make run`: prepare everything, load the demo data, then serve the site with
# gunicorn beside a Celery worker and Celery beat, under scripts/supervise.py:
# a service that exits is restarted, the others keep running. Ctrl-C (SIGINT)
# or SIGTERM stops all three: each runs in a process group of its own, and the
# supervisor signals those groups, so gunicorn's and Celery's children go too.
set -euo pipefail

# A shell that starts a command in the background (`make run &`) without job
# control hands it SIGINT ignored, and bash cannot trap a signal that was
# ignored on entry: restore the default once, so SIGINT always stops us.
if [ -z "${_TOGETHER_RUN_SIGINT_RESET:-}" ]; then
    export _TOGETHER_RUN_SIGINT_RESET=1
    exec python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' bash "${BASH_SOURCE[0]}" "$@"
fi

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

PORT="${PORT:-8000}"
# Links in emails and on pages name the address we serve on, unless told otherwise.
export SITE_URL="${SITE_URL:-http://127.0.0.1:${PORT}}"
WEB_CONCURRENCY="${WEB_CONCURRENCY:-3}"
WEB_THREADS="${WEB_THREADS:-4}"

bash "$ROOT/scripts/bootstrap.sh"

# Stripe's events for this site: localstripe (started by ensure-services.sh when
# Stripe is local) signs them with the first STRIPE_WEBHOOK_SECRET and posts them
# to $SITE_URL/webhooks/stripe. Real Stripe's endpoint is set in its dashboard.
"$PY" - "$SITE_URL/webhooks/stripe" <<'PY'
import os, sys, urllib.parse, urllib.request
from urllib.parse import urlsplit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "together.settings")
from django.conf import settings

base = settings.STRIPE_API_BASE
if urlsplit(base).hostname in ("127.0.0.1", "localhost", "::1") and settings.STRIPE_WEBHOOK_SECRETS:
    body = urllib.parse.urlencode({"url": sys.argv[1], "secret": settings.STRIPE_WEBHOOK_SECRETS[0]}).encode()
    urllib.request.urlopen(f"{base}/_config/webhooks/together", data=body, timeout=5).close()
    print(f"==> Stripe events from localstripe ({base}) go to {sys.argv[1]}", file=sys.stderr)
PY

log "migrating"
"$PY" manage.py migrate --noinput
log "loading demo data"
demo_output="$("$PY" manage.py load_demo)"
printf '%s\n' "$demo_output"

if ! "$PY" - "$PORT" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
then
    die "port $PORT is already in use on 127.0.0.1; stop what is using it or set PORT=..."
fi

mkdir -p var
url="http://127.0.0.1:$PORT"
banner="$(printf '\nTogether is serving on %s (Ctrl-C stops it)\n%s\n  API reference: %s/developer/api\n' \
    "$url" "$demo_output" "$url")"

# scripts/supervise.py runs the three services (gunicorn, the Celery worker and
# beat), each in a process group of its own, and restarts one that exits
# (back-off 1 s doubling to 30 s) without touching the others: a worker that
# dies in a Redis outage never takes the API down. Ctrl-C or SIGTERM stops all.
exec "$PY" "$ROOT/scripts/supervise.py" --together \
    --port "$PORT" --web-concurrency "$WEB_CONCURRENCY" --web-threads "$WEB_THREADS" \
    --access-log --control-socket var/gunicorn.ctl --beat-schedule var/celerybeat-schedule \
    --ready-url "$url/api/v1/health" --ready-banner "$banner" --ready-timeout 60
