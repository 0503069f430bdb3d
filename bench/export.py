"""Export row of `make bench` (issue 10): the 1,000,000-donation CSV export.

Data: the bench organisation's 1M COPY-loaded donations (`manage.py seed_bench`,
shared with bench/records.py), dated 2024-07-01 to 2026-10-28.

Scenario: GET /api/v1/reports/donations?format=csv&from=2024-07-01&to=2026-12-31
through gunicorn, the body read to the end in 1 MB reads (hashed and counted).
Baseline: `psql -c "COPY (<the same SELECT, parameters inlined>) TO STDOUT WITH
(FORMAT csv, HEADER)"` in the same run, its output read the same way. The two
streams must be byte-identical (same SHA-256): the same rows, the same cells.
Best of BENCH_EXPORT_RUNS (default 3) runs each, interleaved.

Memory: the peak RSS (VmHWM) of the gunicorn worker that served the export,
its high-water mark reset (/proc/<pid>/clear_refs) before each run.

Goals (issue 15): within 1.2x of psql's COPY, and under 100 MB peak (the
measurement's `peak_rss_mb` metric, which the row's Goal checks).
"""
from __future__ import annotations

import hashlib
import http.client
import os
import statistics
import subprocess
import time
from urllib.parse import urlsplit

from django.conf import settings

from bench.scenarios import BenchContext, Goal, Measurement, baseline, scenario

RUNS = int(os.environ.get("BENCH_EXPORT_RUNS", "3"))
DATE_FROM, DATE_TO = "2024-07-01", "2026-12-31"
READ_BYTES = 1024 * 1024
PSQL = "psql COPY (same SELECT) TO STDOUT, 1M rows"
EXPORT = "GET /api/v1/reports/donations?format=csv, 1M rows"
MEMORY_GOAL_MB = 100
RATIO_GOAL = 1.2

_state: dict = {}


def _seed(ctx: BenchContext) -> None:
    from bench.records import _seed as records_seed

    records_seed(ctx)


def _copy_statement(ctx: BenchContext) -> str:
    """The export's own COPY statement, with its parameters inlined by psycopg."""
    if "statement" not in _state:
        from django.db import connection

        from reports.services import report_spec
        from reports.writers import copy_statement

        spec = report_spec(organisation=ctx.organisation, name="donations", data={"from": DATE_FROM, "to": DATE_TO})
        sql, params = spec.exporter.query(spec)
        with connection.cursor() as cursor:
            _state["statement"] = copy_statement(cursor.mogrify(sql, params))
        connection.close()
    return _state["statement"]


def _psql_url() -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgresql://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def _drain(stream) -> tuple[int, str, float | None, float]:
    """Read a stream to its end: (bytes, sha256, seconds to the first byte, seconds)."""
    started = time.perf_counter()
    digest, total, first = hashlib.sha256(), 0, None
    while True:
        chunk = stream.read(READ_BYTES)
        if not chunk:
            break
        if first is None:
            first = time.perf_counter() - started
        digest.update(chunk)
        total += len(chunk)
    return total, digest.hexdigest(), first, time.perf_counter() - started


def _psql_once(ctx: BenchContext) -> dict:
    started = time.perf_counter()
    proc = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", _psql_url(), "-c", _copy_statement(ctx)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    size, digest, first, _ = _drain(proc.stdout)
    proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"psql failed: {proc.stderr.read().decode()[:500]}")
    return {"seconds": time.perf_counter() - started, "bytes": size, "sha256": digest, "first": first}


# --- the serving process's memory -------------------------------------------------------------

def _listening_pids(port: int) -> list[int]:
    """Processes holding the listening socket of `port` (gunicorn's master and workers)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{name}/fd"):
                link = os.readlink(f"/proc/{name}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    pids.append(int(name))
                    break
        except OSError:
            continue
    return pids


def _status_kb(pid: int, field: str) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _cpu_ticks(pid: int) -> int:
    """user + system CPU of `pid` (/proc/<pid>/stat), in clock ticks."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def _reset_peaks(pids: list[int]) -> bool:
    ok = True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")  # reset the peak RSS to the current RSS
        except OSError:
            ok = False
    return ok


def _export_once(ctx: BenchContext) -> dict:
    parts = urlsplit(ctx.base_url)
    pids = _listening_pids(parts.port)
    reset = _reset_peaks(pids)
    before = {pid: _status_kb(pid, "VmRSS") for pid in pids}
    cpu_before = {pid: _cpu_ticks(pid) for pid in pids}
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    started = time.perf_counter()
    conn.request("GET", f"/api/v1/reports/donations?format=csv&from={DATE_FROM}&to={DATE_TO}",
                 headers={"Authorization": f"Bearer {ctx.read_key}"})
    response = conn.getresponse()  # returns with the headers, which gunicorn sends with the first chunk
    headers_after = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"export answered {response.status}: {response.read()[:300]!r}")
    size, digest, first, _ = _drain(response)
    seconds = time.perf_counter() - started
    first = headers_after + (first or 0)
    conn.close()
    peaks = {pid: _status_kb(pid, "VmHWM") for pid in pids}
    # The worker that served it is the one that worked (a worker whose peak did not move, the
    # export fitting under its earlier high-water mark, is still the one that spent the CPU).
    served_by = max(pids, key=lambda pid: _cpu_ticks(pid) - cpu_before[pid]) if pids else None
    return {"seconds": seconds, "bytes": size, "sha256": digest, "first": first, "peak_kb": peaks.get(served_by, 0),
            "rss_before_kb": before.get(served_by, 0), "peak_reset": reset, "pid": served_by}


def _runs(ctx: BenchContext) -> dict:
    """Interleaved runs of both, measured once for the baseline and the scenario."""
    if "runs" in _state:
        return _state["runs"]
    _seed(ctx)
    _copy_statement(ctx)
    _psql_once(ctx)  # warm the cache: both read the same pages
    psql, export = [], []
    for _ in range(RUNS):
        psql.append(_psql_once(ctx))
        export.append(_export_once(ctx))
    _state["runs"] = {"psql": psql, "export": export}
    return _state["runs"]


def _rows(size_bytes: int) -> str:
    return f"{size_bytes / 1e6:,.1f} MB"


@baseline(PSQL)
def psql_copy(ctx: BenchContext) -> Measurement:
    runs = _runs(ctx)["psql"]
    best = min(runs, key=lambda r: r["seconds"])
    return Measurement(best["seconds"], unit="s", higher_is_better=False,
                       detail=f"best of {len(runs)} (median {statistics.median(r['seconds'] for r in runs):.2f} s), "
                              f"{_rows(best['bytes'])}, first byte after {best['first']:.2f} s")


@scenario(EXPORT, baseline=PSQL, goal=Goal.of("issue 15", ("ratio", "<=", RATIO_GOAL), ("peak_rss_mb", "<", MEMORY_GOAL_MB, "MB")))
def export_csv(ctx: BenchContext) -> Measurement:
    runs = _runs(ctx)
    export, psql = runs["export"], runs["psql"]
    best = min(export, key=lambda r: r["seconds"])
    best_psql = min(psql, key=lambda r: r["seconds"])
    same = {r["sha256"] for r in export} == {r["sha256"] for r in psql} and len({r["sha256"] for r in export}) == 1
    peak_mb = max(r["peak_kb"] for r in export) / 1024
    ratio = best["seconds"] / best_psql["seconds"]
    errors = 0 if same else 1
    detail = (
        f"best of {len(export)} (median {statistics.median(r['seconds'] for r in export):.2f} s), {_rows(best['bytes'])} at "
        f"{best['bytes'] / best['seconds'] / 1e6:,.0f} MB/s, first byte after {best['first']:.2f} s; "
        f"ratio {ratio:.2f}x (goal <= {RATIO_GOAL}x: {'met' if ratio <= RATIO_GOAL else 'MISSED'}); "
        f"peak RSS of the serving worker {peak_mb:.0f} MB (was {best['rss_before_kb'] / 1024:.0f} MB before; goal < "
        f"{MEMORY_GOAL_MB} MB: {'met' if peak_mb < MEMORY_GOAL_MB else 'MISSED'}"
        f"{'' if best['peak_reset'] else '; peak not resettable: lifetime high-water mark'}); "
        f"bytes {'identical to' if same else 'DIFFER from'} psql's (sha256)"
    )
    return Measurement(best["seconds"], unit="s", higher_is_better=False, errors=errors, detail=detail,
                       metrics={"peak_rss_mb": round(peak_mb, 1), "rss_before_mb": round(best["rss_before_kb"] / 1024, 1)})
