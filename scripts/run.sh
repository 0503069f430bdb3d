#!/usr/bin/env bash
# `make run`: prepare everything, load the demo data, then serve the site with
# gunicorn beside a Celery worker and Celery beat. Ctrl-C (SIGINT) or SIGTERM
# stops all three: each runs in a process group of its own (setsid), and the
# trap below signals those groups, so gunicorn's and Celery's own child
# processes go too.
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
groups=()   # process-group ids of the services (each equals its leader's pid)

stop_all() {
    local status=$?
    trap - INT TERM EXIT
    trap '' INT TERM   # a second Ctrl-C must not interrupt the clean-up
    if [ "${#groups[@]}" -gt 0 ]; then
        log "stopping gunicorn and celery"
        for g in "${groups[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
        for _ in $(seq 1 100); do   # up to 10 s for a graceful stop
            local alive=0
            for g in "${groups[@]}"; do kill -0 -- "-$g" 2>/dev/null && alive=1; done
            [ "$alive" -eq 0 ] && break
            sleep 0.1
        done
        for g in "${groups[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
        wait 2>/dev/null || true
    fi
    exit "$status"
}
trap 'exit 130' INT
trap 'exit 143' TERM
trap stop_all EXIT

start() {  # start <name> <command...>: run in a new session / process group
    local name="$1"; shift
    setsid "$@" &
    groups+=("$!")
    log "started $name (pid $!)"
}

start gunicorn "$VENV/bin/gunicorn" together.wsgi \
    --bind "127.0.0.1:$PORT" --workers "$WEB_CONCURRENCY" --threads "$WEB_THREADS" \
    --graceful-timeout 5 --access-logfile - --control-socket var/gunicorn.ctl
start celery-worker "$VENV/bin/celery" -A together worker --loglevel INFO --concurrency 2
start celery-beat "$VENV/bin/celery" -A together beat --loglevel INFO --schedule var/celerybeat-schedule

url="http://127.0.0.1:$PORT"
ready=0
for _ in $(seq 1 120); do
    for g in "${groups[@]}"; do kill -0 "$g" 2>/dev/null || die "a service exited during start-up"; done
    if "$PY" - "$url/api/v1/health" >/dev/null 2>&1 <<'PY'
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=2)
PY
    then
        printf '\nTogether is serving on %s (Ctrl-C stops it)\n%s\n  API reference: %s/developer/api\n\n' \
            "$url" "$demo_output" "$url"
        ready=1
        break
    fi
    sleep 0.5
done
[ "$ready" -eq 1 ] || die "$url/api/v1/health did not answer within 60 s"

# Stay until a service exits or a signal arrives.
wait -n || true
log "a service exited; stopping the others"
exit 1
