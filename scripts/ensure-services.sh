#!/usr/bin/env bash
# Start PostgreSQL, Redis and localstripe when they are local and not answering.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

wait_for() {  # wait_for <what> <command...>
    local what="$1"; shift
    for _ in $(seq 1 60); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    die "$what did not come up"
}

read -r pg_host pg_port < <(url_host_port "$DATABASE_URL" 5432)
if ! pg_isready -q -h "$pg_host" -p "$pg_port"; then
    is_local_host "$pg_host" || die "PostgreSQL at $pg_host:$pg_port is not answering"
    log "starting PostgreSQL"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
    wait_for PostgreSQL pg_isready -q -h "$pg_host" -p "$pg_port"
fi

read -r redis_host redis_port < <(url_host_port "$REDIS_URL" 6379)
if ! redis-cli -h "$redis_host" -p "$redis_port" ping 2>/dev/null | grep -q PONG; then
    is_local_host "$redis_host" || die "Redis at $redis_host:$redis_port is not answering"
    log "starting Redis"
    as_root mkdir -p /var/lib/redis /var/log/redis
    as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$redis_port" --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_for Redis bash -c "redis-cli -h '$redis_host' -p '$redis_port' ping | grep -q PONG"
fi

# Stripe: localstripe extended by devtools/localstripe_together.py, when
# STRIPE_API_BASE is local (unset: http://127.0.0.1:8420, the settings' default in
# development). It runs in the background and outlives this script, like the
# database; its log is var/localstripe.log, its objects var/localstripe.pickle
# (kept across restarts). A launcher older than this checkout is replaced.
read -r stripe_host stripe_port < <(url_host_port "$STRIPE_API_BASE" 443)
if is_local_host "$stripe_host"; then
    [ -x "$PY" ] || die "no virtualenv at $VENV for localstripe: run scripts/ensure-venv.sh first"
    stripe_status=0
    old_pid="$(localstripe_answers "$STRIPE_API_BASE")" || stripe_status=$?
    if [ "$stripe_status" -eq 2 ]; then
        die "something other than devtools/localstripe_together.py answers on $STRIPE_API_BASE; stop it or set STRIPE_API_BASE"
    fi
    if [ "$stripe_status" -eq 3 ]; then
        [ -n "$old_pid" ] || die "an older localstripe launcher answers on $STRIPE_API_BASE; stop it"
        log "replacing localstripe (pid $old_pid): devtools/localstripe_together.py changed"
        kill "$old_pid" 2>/dev/null || true
        for _ in $(seq 1 40); do kill -0 "$old_pid" 2>/dev/null || break; sleep 0.25; done
        stripe_status=1
    fi
    if [ "$stripe_status" -eq 1 ]; then
        log "starting localstripe on $stripe_host:$stripe_port"
        mkdir -p "$ROOT/var"
        stripe_log="$ROOT/var/localstripe.log"
        if [ -f "$stripe_log" ] && [ "$(stat -c %s "$stripe_log")" -gt 10000000 ]; then
            mv "$stripe_log" "$stripe_log.1"
        fi
        nohup setsid "$PY" "$ROOT/devtools/localstripe_together.py" --host "$stripe_host" --port "$stripe_port" \
            >>"$ROOT/var/localstripe.log" 2>&1 </dev/null &
        wait_for localstripe localstripe_answers "$STRIPE_API_BASE"
    fi
fi
