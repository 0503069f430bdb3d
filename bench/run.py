"""`make bench`: requests per second of the API against a bare Django view.

    .venv/bin/python bench/run.py [--duration 5] [--warmup 1] [--concurrency 8] [--only TEXT ...] [--recurring-big N]

1. Uses a database of its own, `together_bench` on the server of DATABASE_URL
   (or BENCH_DATABASE_URL), created and migrated if need be.
2. Creates the organisation `bench` (once) and a READ and a WRITE key (each
   run, through organisations.services; revoked at the end).
3. Starts gunicorn (together.wsgi, 2 workers x 4 threads, DEBUG=0,
   rate limits on with a bucket of 1,000,000/s, BENCH_ENDPOINTS=1) on a free local port, logs in
   var/bench/gunicorn.log.
4. Runs every scenario in bench/scenarios.py and prints the table: per row its
   result, its baseline's, the ratio, its goal (from the issues) and whether it
   was met.
5. Writes the same rows to bench/results.json (per machine and per run, so
   ignored by git: compare runs on one machine, not across machines).
6. Stops gunicorn.

Exit status 1 when a scenario had errors (non-2xx answers). A missed goal is
reported, not an error: the table is a measurement, not a test.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from ensure_db import DEFAULT_URL, ensure_database, with_database  # noqa: E402

BENCH_DB_NAME = "together_bench"
RESULTS = ROOT / "bench" / "results.json"
GUNICORN_WORKERS = 2
GUNICORN_THREADS = 4


def bench_database_url() -> str:
    if os.environ.get("BENCH_DATABASE_URL"):
        return os.environ["BENCH_DATABASE_URL"]
    return with_database(os.environ.get("DATABASE_URL", DEFAULT_URL), BENCH_DB_NAME)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited ({proc.returncode}); see var/bench/gunicorn.log")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s; see var/bench/gunicorn.log")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def print_table(rows: list[tuple[str, ...]]) -> None:
    header = ("scenario", "result", "baseline", "ratio", "goal", "met")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("{:<%d}" % w for w in widths)
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))


def measurement_json(m) -> dict | None:
    if m is None:
        return None
    return {"value": m.value, "unit": m.unit, "higher_is_better": m.higher_is_better, "errors": m.errors,
            "metrics": m.metrics, "detail": m.detail}


def write_results(path: Path, *, args, ctx, records: list[dict]) -> None:
    payload = {
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"host": platform.node(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {"duration_s": args.duration, "warmup_s": args.warmup, "concurrency": args.concurrency,
                     "only": args.only, "gunicorn": f"{GUNICORN_WORKERS} workers x {GUNICORN_THREADS} threads"},
        "rows": records,
        "baselines": {name: measurement_json(m) for name, m in ctx.baselines.items()},
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=float(os.environ.get("BENCH_DURATION", "5")))
    parser.add_argument("--warmup", type=float, default=float(os.environ.get("BENCH_WARMUP", "1")))
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("BENCH_CONCURRENCY", "8")))
    parser.add_argument("--only", action="append", help="run only scenarios whose name contains this text (repeat it for more rows, in the table's order)")
    parser.add_argument("--recurring-big", type=int, default=int(os.environ.get("BENCH_RECURRING_BIG", "0")), metavar="N",
                        help="also time one billing run over N due recurring plans (bench/recurring.py; 10000 takes minutes)")
    args = parser.parse_args()
    os.environ["BENCH_RECURRING_BIG"] = str(args.recurring_big)

    database_url = bench_database_url()
    ensure_database(database_url)
    server_env = {
        "DATABASE_URL": database_url,
        "BENCH_ENDPOINTS": "1",
        "DEBUG": "0",
        # The bucket is taken (in the key's own Redis round trip) but never refuses: the load is not a tenant.
        "RATE_LIMIT_ENABLED": "1",
        "RATE_LIMIT_RATE": "1000000",
        "RATE_LIMIT_BURST": "1000000",
        "CACHE_KEY_PREFIX": "together-bench",
        "DJANGO_SETTINGS_MODULE": "together.settings",
    }
    # Stripe: always localstripe (bench/stripe_events.py), with development's test keys.
    from bench.stripe_events import STRIPE_ENV

    server_env.update(STRIPE_ENV)
    os.environ.update(server_env)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from bench import scenarios
    from organisations.models import Organisation, Scope
    from organisations.services import api_key_create, api_key_revoke, organisation_create
    from together.actors import Actor

    for module in [*scenarios.BENCH_MODULES, "bench.imports"]:  # bench.imports: the import row (issue 18)
        __import__(module)

    call_command("migrate", interactive=False, verbosity=0)
    actor = Actor.system("make bench")
    org = Organisation.objects.filter(slug="bench", is_sandbox=False).first() or organisation_create(
        name="Bench", slug="bench")
    read = api_key_create(organisation=org, actor=actor, name="bench read", scope=Scope.READ)
    write = api_key_create(organisation=org, actor=actor, name="bench write", scope=Scope.WRITE)
    from bench.records import checkpoint

    checkpoint(connection)
    connection.close()  # no connection shared with the forked load processes

    port = free_port()
    log_dir = ROOT / "var" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    gunicorn = Path(sys.executable).parent / "gunicorn"
    with open(log_dir / "gunicorn.log", "wb") as log:
        proc = subprocess.Popen(
            [str(gunicorn), "together.wsgi", "--bind", f"127.0.0.1:{port}",
             "--workers", str(GUNICORN_WORKERS), "--threads", str(GUNICORN_THREADS),
             "--no-control-socket", "--graceful-timeout", "3"],
            cwd=ROOT, env={**os.environ, **server_env}, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    failed = False
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_up(base_url + "/_bench/empty", proc)
        ctx = scenarios.BenchContext(
            base_url=base_url, read_key=read.plaintext, write_key=write.plaintext, organisation=org, db=connection,
            duration=args.duration, warmup=args.warmup, concurrency=args.concurrency,
        )
        print(f"gunicorn together.wsgi: {GUNICORN_WORKERS} workers x {GUNICORN_THREADS} threads on {base_url}; "
              f"database {connection.settings_dict['NAME']}; {ctx.concurrency} connections, "
              f"{ctx.warmup:g} s warm-up + {ctx.duration:g} s per measurement", flush=True)
        rows, notes, records = [], [], []
        for sc in scenarios.SCENARIOS:
            if args.only and not any(text in sc.name for text in args.only):
                continue
            result = sc.run(ctx)
            base = ctx.baseline(sc.baseline) if sc.baseline else None
            if base is not None and base.value:
                ratio = result.value / base.value
                ratio_text = f"{ratio:.2f}x"
            else:
                ratio_text = "-"
            verdict, why = sc.goal.verdict(result, base) if sc.goal else ("-", [])
            rows.append((sc.name, str(result), f"{base} ({sc.baseline})" if base else "-", ratio_text,
                         str(sc.goal) if sc.goal else "-", verdict))
            notes.append(f"  {sc.name}: {result.detail}" + (f"; {result.errors} ERRORS" if result.errors else "")
                         + (f"; goal {verdict}: {', '.join(why)}" if why else ""))
            records.append({"scenario": sc.name, "result": measurement_json(result), "baseline": sc.baseline,
                            "ratio": result.value / base.value if base is not None and base.value else None,
                            "goal": str(sc.goal) if sc.goal else None, "met": verdict})
            failed |= result.errors > 0
        for name, measured in ctx.baselines.items():
            notes.append(f"  {name}: {measured.detail}" + (f"; {measured.errors} ERRORS" if measured.errors else ""))
            failed |= measured.errors > 0
        print()
        print_table(rows)
        print()
        print("\n".join(notes))
        write_results(RESULTS, args=args, ctx=ctx, records=records)
        print(f"\nwritten to {RESULTS.relative_to(ROOT)}")
        if proc.poll() is not None:
            print("gunicorn died during the run; see var/bench/gunicorn.log", file=sys.stderr)
            failed = True
    finally:
        stop(proc)
        for key in (read, write):
            api_key_revoke(organisation=org, actor=actor, api_key_id=key.api_key.id)
        connection.close()
    if failed:
        print("make bench: some requests failed (see the notes above and var/bench/gunicorn.log)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
