#!/usr/bin/env python3
"""Run the site's processes and keep them running: what `make run` uses.

    supervise.py [--ready-url URL] [--ready-banner TEXT] [--ready-timeout S]
                 (--together [--port N] [--web-concurrency N] [--web-threads N]
                             [--beat-schedule PATH] [--access-log]
                  | --service 'NAME=COMMAND ARGS...' [--service ...])

`--together` is the site's three services, gunicorn (together.wsgi on
127.0.0.1:PORT), a Celery worker and Celery beat: what `make run` starts, and
what the fault suite (tests/faults/) starts against its own PostgreSQL and Redis.

Each service runs in a process group of its own. When one exits (a crash, an
`Unrecoverable error`, a `kill -9`), the supervisor logs it, kills whatever is
left of its group (a dead Celery worker's pool children) and starts it again
after a back-off: 1 s, doubling up to 30 s, back to 1 s once the service has
stayed up for 60 s. The other services are never touched: the API keeps
serving while the worker restarts.

SIGINT (Ctrl-C) or SIGTERM stops every service (SIGTERM to each group, SIGKILL
after 10 s) and exits 130 or 143.

With --ready-url the supervisor prints --ready-banner once the URL answers
(any HTTP status); if it does not within --ready-timeout seconds (default 60)
everything is stopped and the exit status is 1, as a start-up failure should be.

Standard library only; production uses systemd or another process manager with
the same policy (README.md, "Running in production").
"""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0  # seconds up before the back-off resets
STOP_GRACE = 10.0


def log(message: str) -> None:
    stamp = time.strftime("%H:%M:%S", time.gmtime())
    print(f"==> [supervise {stamp}] {message}", file=sys.stderr, flush=True)


class Service:
    def __init__(self, name: str, argv: list[str]):
        self.name = name
        self.argv = argv
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0
        self.backoff = BACKOFF_FIRST
        self.restart_at: float | None = None
        self.starts = 0

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, start_new_session=True)
        self.started_at = time.monotonic()
        self.restart_at = None
        self.starts += 1
        if self.starts == 1:
            log(f"started {self.name} (pid {self.proc.pid})")
        else:
            log(f"restarted {self.name} (pid {self.proc.pid}, start #{self.starts})")

    def signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def group_alive(self) -> bool:
        if self.proc is None:
            return False
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # The leader may be a zombie we have not reaped yet: that alone is not "alive".
        return self.proc.poll() is None or _group_has_others(self.proc.pid)


def _group_has_others(pgid: int) -> bool:
    try:
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == pgid:
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    except OSError:
        return False
    return False


def parse_service(spec: str) -> Service:
    name, sep, command = spec.partition("=")
    if not sep or not name.strip() or not command.strip():
        raise SystemExit(f"--service wants NAME=COMMAND, got {spec!r}")
    return Service(name.strip(), shlex.split(command))


def together_services(args) -> list[Service]:
    """gunicorn, the Celery worker and beat, from this interpreter's virtualenv.

    The worker skips gossip, mingle and event heartbeats: broadcast chatter
    that adds nothing with one worker and more to tear down and rebuild when
    Redis goes away (`celery inspect ping` still answers)."""
    bin_dir = os.path.dirname(sys.executable)
    gunicorn = [
        os.path.join(bin_dir, "gunicorn"), "together.wsgi", "--bind", f"127.0.0.1:{args.port}",
        "--workers", str(args.web_concurrency), "--threads", str(args.web_threads), "--graceful-timeout", "5",
    ]
    if args.access_log:
        gunicorn += ["--access-logfile", "-"]
    if args.control_socket:
        gunicorn += ["--control-socket", args.control_socket]
    celery = os.path.join(bin_dir, "celery")
    return [
        Service("gunicorn", gunicorn),
        Service("celery-worker", [celery, "-A", "together", "worker", "--loglevel", args.celery_loglevel,
                                  "--concurrency", "2", "--without-gossip", "--without-mingle", "--without-heartbeat"]),
        Service("celery-beat", [celery, "-A", "together", "beat", "--loglevel", args.celery_loglevel,
                                "--schedule", args.beat_schedule]),
    ]


def wait_ready(url: str, timeout: float, services: list[Service], stopping: threading.Event) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopping.is_set():
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return True
        except urllib.error.HTTPError:
            return True  # it answered: 503 while a dependency is down is still "serving"
        except OSError:
            pass
        stopping.wait(0.5)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--service", action="append", default=[], metavar="NAME=COMMAND")
    parser.add_argument("--together", action="store_true", help="gunicorn, the Celery worker and beat")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--web-concurrency", type=int, default=3)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--beat-schedule", default="var/celerybeat-schedule")
    parser.add_argument("--control-socket")
    parser.add_argument("--access-log", action="store_true")
    parser.add_argument("--celery-loglevel", default="INFO")
    parser.add_argument("--ready-url")
    parser.add_argument("--ready-banner", default="")
    parser.add_argument("--ready-timeout", type=float, default=60.0)
    args = parser.parse_args()
    services = (together_services(args) if args.together else []) + [parse_service(spec) for spec in args.service]
    if not services:
        parser.error("nothing to run: --together or --service NAME=COMMAND")

    stopping = threading.Event()
    exit_status = {"code": 0}

    def on_signal(signum, _frame):
        exit_status["code"] = 128 + signum
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    for service in services:
        service.start()

    ready = threading.Event()
    if args.ready_url:
        def check_ready():
            if wait_ready(args.ready_url, args.ready_timeout, services, stopping):
                if args.ready_banner:
                    print(args.ready_banner, flush=True)
                ready.set()
            elif not stopping.is_set():
                log(f"{args.ready_url} did not answer within {args.ready_timeout:.0f} s; stopping")
                exit_status["code"] = 1
                stopping.set()
        threading.Thread(target=check_ready, daemon=True).start()
    else:
        ready.set()

    while not stopping.is_set():
        now = time.monotonic()
        for service in services:
            if service.proc is not None and service.restart_at is None:
                code = service.proc.poll()
                if code is None:
                    if now - service.started_at >= STABLE_AFTER:
                        service.backoff = BACKOFF_FIRST
                    continue
                how = f"signal {-code}" if code < 0 else f"status {code}"
                uptime = now - service.started_at
                # Whatever the dead leader left in its group (pool children) goes too.
                service.signal_group(signal.SIGKILL)
                delay = service.backoff
                service.backoff = min(service.backoff * 2, BACKOFF_MAX)
                service.restart_at = now + delay
                log(f"{service.name} exited ({how}) after {uptime:.1f} s; restarting in {delay:.0f} s")
            elif service.restart_at is not None and now >= service.restart_at:
                service.start()
        stopping.wait(0.2)

    log("stopping " + ", ".join(s.name for s in services))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for service in services:
        service.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    while time.monotonic() < deadline and any(s.group_alive() for s in services):
        for service in services:
            if service.proc is not None:
                service.proc.poll()
        time.sleep(0.1)
    for service in services:
        service.signal_group(signal.SIGKILL)
        if service.proc is not None:
            try:
                service.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
    return exit_status["code"]


if __name__ == "__main__":
    sys.exit(main())
