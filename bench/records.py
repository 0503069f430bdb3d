"""Records rows of `make bench` (issue 5) and the compliance create row (issue 6).

Data: `manage.py seed_bench` COPY-loads 200k donors and 1M donations into the
bench organisation (once; later runs top up only).

Rows:
- first page of GET /api/v1/donations?limit=100, mean ms per request on one
  keep-alive connection, against the same 100 rows fetched by plain psycopg
  and JSON-encoded with orjson (goal ≤ 3×);
- a page deep in the 1M rows (cursor ~90 % down), against the first page
  (goal ≤ 1.1×);
  the three measured in one loop taking turns, so other load weighs on each alike;
- POST /api/v1/donations per second (8 connections, gifts spread over bench
  donors), with compliance rules in force (FEDERAL code: cap check, aggregates)
  and without (UNREGULATED code), against raw single-row INSERTs per second
  (goal ≥ 200/s).
"""
from __future__ import annotations

import http.client
import random
import threading
import time
from urllib.parse import urlsplit

import orjson
import psycopg
from django.conf import settings

from bench.scenarios import BenchContext, Goal, Measurement, baseline, scenario

DONORS, DONATIONS = 200_000, 1_000_000
PAGE = 100
COLUMNS = ("id, donor_id, campaign_id, donation_type, amount_cents, currency, donation_date, source, status, payment_method, "
           "reference, in_kind_category, in_kind_description, in_kind_valuation_method, revenue_code, jurisdiction, notes, "
           "external_id, metadata, void_reason, voided_at, refund_date, refund_reason, refunded_at, created_at, updated_at")

_seeded = False


def _seed(ctx: BenchContext) -> None:
    global _seeded
    if _seeded:
        return
    from django.core.management import call_command

    from compliance.services import revenue_code_create
    from compliance.models import RevenueCode
    from together.actors import Actor

    call_command("seed_bench", org=ctx.organisation.slug, donors=DONORS, donations=DONATIONS)
    for code, jurisdiction in (("ADMIN-FUND", "UNREGULATED"), ("FCA-BENCH", "FEDERAL")):
        if not RevenueCode.objects.for_organisation(ctx.organisation).filter(code_lower=code.lower()).exists():
            revenue_code_create(organisation=ctx.organisation, actor=Actor.system("bench"), code=code, jurisdiction=jurisdiction)
    from django.db import connection

    checkpoint(connection)
    connection.close()
    _seeded = True


def checkpoint(connection) -> None:
    """Write out what seeding (or a new database's migrations) left dirty before anything is
    timed, rather than let the checkpointer do it under the first rows' load."""
    from django.db import DatabaseError

    try:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError:  # not a superuser (nor pg_checkpoint): the rows are timed as they come
        pass


def _dsn() -> str:
    db = settings.DATABASES["default"]
    return f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} dbname={db['NAME']} user={db['USER'] or 'postgres'}"


PSYCOPG_FIRST = "psycopg: 100 donations → JSON (ms)"
API_FIRST = "GET /api/v1/donations?limit=100, first page"
API_DEEP = "GET /api/v1/donations?limit=100, cursor 90% deep in 1M"
RAW_INSERT = "psycopg: single-row INSERT (8 threads)"


_lists: dict = {}


def _list_runs(ctx: BenchContext) -> dict[str, Measurement]:
    """The psycopg baseline, the API's first page and its deep page, measured in one
    loop that takes turns (one of each per round, for 3 x ctx.duration), so that the
    machine's other load weighs on the three alike: the ratios compare like with like."""
    if _lists:
        return _lists
    _seed(ctx)
    with psycopg.connect(_dsn(), autocommit=True) as pg:
        cursor_id = pg.execute(
            "SELECT id FROM donations_donation WHERE organisation_id = %s ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
            [ctx.organisation.id, int(DONATIONS * 0.9)],
        ).fetchone()[0]  # OFFSET only here, in the bench's own setup, to find a deep cursor
        sql = f"SELECT {COLUMNS} FROM donations_donation WHERE organisation_id = %s ORDER BY created_at DESC, id DESC LIMIT {PAGE + 1}"

        def psycopg_page():
            cur = pg.execute(sql, [ctx.organisation.id])
            names = [d.name for d in cur.description]
            rows = [dict(zip(names, r)) for r in cur.fetchall()[:PAGE]]
            orjson.dumps({"data": rows, "has_more": True}, default=str)
            return True

        parts = urlsplit(ctx.base_url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        headers = {"Authorization": f"Bearer {ctx.read_key}", "Accept": "application/json"}

        def get(path):
            def call():
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
                return response.status == 200 and bool(body)

            return call

        kinds = {PSYCOPG_FIRST: psycopg_page, API_FIRST: get(f"/api/v1/donations?limit={PAGE}"),
                 API_DEEP: get(f"/api/v1/donations?limit={PAGE}&starting_after={cursor_id}")}
        times = {name: [] for name in kinds}
        errors = dict.fromkeys(kinds, 0)
        warm_until = time.perf_counter() + ctx.warmup
        while time.perf_counter() < warm_until:
            for fn in kinds.values():
                fn()
        stop = time.perf_counter() + 3 * ctx.duration
        while time.perf_counter() < stop:
            for name, fn in kinds.items():
                began = time.perf_counter()
                ok = fn()
                times[name].append((time.perf_counter() - began) * 1000)
                errors[name] += 0 if ok else 1
        conn.close()
    for name, ms in times.items():
        ordered = sorted(ms)
        what = "fetch+encode loops" if name == PSYCOPG_FIRST else "sequential requests on one connection"
        _lists[name] = Measurement(
            sum(ms) / len(ms), unit="ms/page", higher_is_better=False, errors=errors[name],
            detail=f"{len(ms)} {what}, taking turns with the other two; mean, p50 {ordered[len(ordered) // 2]:.2f} ms",
            metrics={"p50_ms": ordered[len(ordered) // 2]},
        )
    return _lists


@baseline(PSYCOPG_FIRST)
def psycopg_first_page(ctx: BenchContext) -> Measurement:
    return _list_runs(ctx)[PSYCOPG_FIRST]


@baseline(API_FIRST)
def api_first_page_baseline(ctx: BenchContext) -> Measurement:
    return _list_runs(ctx)[API_FIRST]


@scenario(API_FIRST, baseline=PSYCOPG_FIRST, goal=Goal.of("issue 15", ("ratio", "<=", 3), note="aim 2x"))
def api_first_page(ctx: BenchContext) -> Measurement:
    return ctx.baseline(API_FIRST)


@scenario(API_DEEP, baseline=API_FIRST, goal=Goal.of("issue 15", ("ratio", "<=", 1.1)))
def api_deep_page(ctx: BenchContext) -> Measurement:
    return _list_runs(ctx)[API_DEEP]


@baseline(RAW_INSERT)
def raw_insert(ctx: BenchContext) -> Measurement:
    _seed(ctx)
    from donations.management.commands.seed_bench import bench_id
    from together.ids import new_id

    stop = time.perf_counter() + ctx.warmup + ctx.duration
    counts = []

    inserted: list[list[str]] = []

    def worker(seed):
        rng = random.Random(seed)
        n = 0
        ids = []
        inserted.append(ids)
        with psycopg.connect(_dsn(), autocommit=True) as conn:
            measure_from = time.perf_counter() + ctx.warmup
            while time.perf_counter() < stop:
                ids.append(new_id())
                conn.execute(
                    "INSERT INTO donations_donation (id, organisation_id, donor_id, donation_type, amount_cents, currency, donation_date, "
                    "source, status, payment_method, revenue_code, jurisdiction, metadata, refunded_cents, acknowledgement_status, "
                    "custom_fields, created_at, updated_at) "
                    "VALUES (%s, %s, %s, 'MONETARY', 5000, 'AUD', '2027-03-01', 'MANUAL', 'CONFIRMED', 'CHEQUE', 'ADMIN-FUND', "
                    "'UNREGULATED', '{}', 0, 'NEEDS_RECEIPT', '{}', now(), now())",
                    [ids[-1], ctx.organisation.id, bench_id("bdr", rng.randrange(DONORS))],
                )
                if time.perf_counter() >= measure_from:
                    n += 1
        counts.append(n)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(ctx.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Gone again: left behind, each run's ~30,000 rows went to the same donors (the workers' seeds), and later
    # runs measured ever longer ledgers on more than the 1M donations (seed_bench removes those of earlier runs).
    with psycopg.connect(_dsn(), autocommit=True) as conn:
        conn.execute("DELETE FROM donations_donation WHERE id = ANY(%s)", [[i for ids in inserted for i in ids]])
    return Measurement(sum(counts) / ctx.duration, unit="creates/s", detail=f"{sum(counts)} INSERTs")


def _post_load(ctx: BenchContext, revenue_code: str, date: str) -> Measurement:
    from donations.management.commands.seed_bench import bench_id

    _seed(ctx)
    # Other donors each run: with one seed every run gave the same 2,000 donors a gift more, and their
    # ledgers (which each create reads and recomputes) grew run after run.
    rng = random.Random()
    bodies = [orjson.dumps({"donor_id": bench_id("bdr", rng.randrange(DONORS)), "donation_type": "MONETARY",
                            "amount_cents": 5_000, "donation_date": date, "payment_method": "CHEQUE", "revenue_code": revenue_code})
              for _ in range(2_000)]
    from bench.load import run_post_load

    loaded = run_post_load(ctx.base_url + "/api/v1/donations", bodies=bodies, duration=ctx.duration, warmup=ctx.warmup,
                           concurrency=ctx.concurrency,
                           headers={"Authorization": f"Bearer {ctx.write_key}", "Content-Type": "application/json"})
    if loaded is not None:  # wrk: the load generator takes next to no CPU from the server
        ok = loaded.requests - loaded.errors
        return Measurement(ok / ctx.duration, unit="creates/s", errors=loaded.errors,
                           detail=f"{ok} donations created, p50 {loaded.p50_ms:.1f} ms, p99 {loaded.p99_ms:.1f} ms; {loaded.client}")
    parts = urlsplit(ctx.base_url)
    stop = time.perf_counter() + ctx.warmup + ctx.duration
    results = []

    def worker(seed):
        rng = random.Random(seed)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        ok = errors = 0
        measure_from = time.perf_counter() + ctx.warmup
        while time.perf_counter() < stop:
            body = orjson.dumps({"donor_id": bench_id("bdr", rng.randrange(DONORS)), "donation_type": "MONETARY",
                                 "amount_cents": 5_000, "donation_date": date, "payment_method": "CHEQUE", "revenue_code": revenue_code})
            conn.request("POST", "/api/v1/donations", body=body,
                         headers={"Authorization": f"Bearer {ctx.write_key}", "Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if time.perf_counter() >= measure_from:
                if response.status == 201:
                    ok += 1
                else:
                    errors += 1
        conn.close()
        results.append((ok, errors))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(ctx.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = sum(r[0] for r in results)
    return Measurement(ok / ctx.duration, unit="creates/s", errors=sum(r[1] for r in results), detail=f"{ok} donations created")


@scenario("POST /api/v1/donations, no rule in force (UNREGULATED code)", baseline=RAW_INSERT, goal=Goal.of("issue 15", note="context for the compliance-on row"))
def post_unregulated(ctx: BenchContext) -> Measurement:
    return _post_load(ctx, "ADMIN-FUND", "2027-03-01")


@scenario("POST /api/v1/donations, compliance on (FEDERAL 2027: cap check + aggregates)", baseline=RAW_INSERT, goal=Goal.of("issue 15", ("value", ">=", 200, "creates/s"), ("queries_per_create", "<=", 10)))
def post_federal(ctx: BenchContext) -> Measurement:
    result = _post_load(ctx, "FCA-BENCH", "2027-03-01")
    result.metrics["queries_per_create"] = _queries_per_create(ctx, "FCA-BENCH", "2027-03-01")
    result.detail += f"; {result.metrics['queries_per_create']:.0f} queries per create (one more, counted in this process)"
    return result


def _queries_per_create(ctx: BenchContext, revenue_code: str, date: str) -> int:
    """The statements of one more create, through Django's whole request cycle in this
    process (the API key already known, as it is to a busy worker: a warm-up create first)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from donations.management.commands.seed_bench import bench_id

    client = Client(HTTP_AUTHORIZATION=f"Bearer {ctx.write_key}")
    rng = random.Random(16)

    def create():
        body = orjson.dumps({"donor_id": bench_id("bdr", rng.randrange(DONORS)), "donation_type": "MONETARY", "amount_cents": 5_000,
                             "donation_date": date, "payment_method": "CHEQUE", "revenue_code": revenue_code})
        response = client.post("/api/v1/donations", body, content_type="application/json")
        if response.status_code != 201:
            raise RuntimeError(f"create answered {response.status_code}: {response.content[:300]!r}")

    import logging

    logging.disable(logging.INFO)  # the request log's lines would land in the table's output
    try:
        create()
        with CaptureQueriesContext(connection) as queries:
            create()
    finally:
        logging.disable(logging.NOTSET)
        connection.close()
    return len(queries.captured_queries)
