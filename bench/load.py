"""Closed-loop HTTP load: N connections, each sending its next request as soon
as the last answer arrives, for a fixed time after a warm-up.

Uses `wrk` when it is installed (plain GETs, and POSTs of bodies picked at
random from a list by a small Lua script: run_post_load), otherwise
worker processes of threads, each thread holding one keep-alive connection
(http.client: lighter than requests, so the client takes less of the CPU the
server needs). BENCH_CLIENT=python always uses the python client.
"""
from __future__ import annotations

import http.client
import multiprocessing
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    requests: int  # completed in the measured window
    errors: int  # non-2xx answers and failed connections in the window
    seconds: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    client: str = "python"

    @property
    def rps(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


# --- python client ---------------------------------------------------------------

def _thread_loop(host, port, method, path, headers, body, start_at, measure_from, stop_at, out):
    conn = None
    count = errors = 0
    latencies = []
    while time.monotonic() < start_at:
        time.sleep(0.001)
    while True:
        began = time.monotonic()
        if began >= stop_at:
            break
        try:
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            ok = 200 <= response.status < 300
            if response.will_close:
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException):
            ok = False
            if conn is not None:
                conn.close()
            conn = None
        ended = time.monotonic()
        if measure_from <= began and ended <= stop_at:
            count += 1
            errors += 0 if ok else 1
            latencies.append((ended - began) * 1000)
    if conn is not None:
        conn.close()
    out.append((count, errors, latencies))


def _process_main(args, queue):
    host, port, method, path, headers, body, threads, start_at, measure_from, stop_at = args
    out: list = []
    workers = [
        threading.Thread(target=_thread_loop,
                         args=(host, port, method, path, headers, body, start_at, measure_from, stop_at, out))
        for _ in range(threads)
    ]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    queue.put(out)


def _python_load(url, method, headers, body, duration, warmup, concurrency) -> LoadResult:
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    processes = max(1, min(concurrency, int(os.environ.get("BENCH_CLIENT_PROCESSES", "2"))))
    per_process = [concurrency // processes + (1 if i < concurrency % processes else 0) for i in range(processes)]
    start_at = time.monotonic() + 0.3  # CLOCK_MONOTONIC is shared by the forked processes
    measure_from = start_at + warmup
    stop_at = measure_from + duration
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    procs = [
        context.Process(target=_process_main, args=(
            (parts.hostname, parts.port or 80, method, path, headers, body, n, start_at, measure_from, stop_at), queue))
        for n in per_process if n
    ]
    for p in procs:
        p.start()
    results = [item for _ in procs for item in queue.get(timeout=warmup + duration + 60)]
    for p in procs:
        p.join()
    latencies = sorted(lat for _, _, lats in results for lat in lats)
    return LoadResult(
        requests=sum(c for c, _, _ in results),
        errors=sum(e for _, e, _ in results),
        seconds=duration,
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        client=f"python ({processes} processes, {concurrency} connections)",
    )


# --- wrk -------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk_ms(text: str) -> float | None:
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def _lua_string(value: bytes) -> str:
    return '"' + "".join(f"\\{b:03d}" if b < 32 or b > 126 or b in (34, 92) else chr(b) for b in value) + '"'


def _post_script(bodies: list[bytes]) -> str:
    """A wrk script POSTing a body picked at random (per thread seeded) from `bodies`."""
    table = ",\n".join(_lua_string(b) for b in bodies)
    return (f"local bodies = {{\n{table}\n}}\n"
            "wrk.method = \"POST\"\n"
            "local n = 0\n"
            "function setup(thread) n = n + 1; thread:set(\"seed\", n) end\n"
            "function init(args) math.randomseed(tonumber(seed) * 7919 + os.time()) end\n"
            "function request() return wrk.format(nil, nil, nil, bodies[math.random(#bodies)]) end\n")


def _wrk_load(url, method, headers, duration, warmup, concurrency, *, bodies: list[bytes] | None = None) -> LoadResult:
    wrk = shutil.which("wrk")
    threads = max(1, min(2, concurrency))
    args = [wrk, f"-t{threads}", f"-c{concurrency}", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    if bodies:
        import tempfile

        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write(_post_script(bodies))
        script.close()
        args += ["-s", script.name]
    if warmup > 0:
        subprocess.run(args + [f"-d{max(1, round(warmup))}s", url], capture_output=True, check=True)
    out = subprocess.run(args + [f"-d{duration}s", url], capture_output=True, text=True, check=True).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0)
    # The Latency Distribution lines only: "+/- Stdev" columns such as "91.50%" also end in "50%".
    p50 = re.search(r"^\s*50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.M)
    if bodies:
        os.unlink(script.name)
    return LoadResult(requests=total, errors=errors, seconds=duration,
                      p50_ms=_wrk_ms(p50.group(1)) if p50 else None, p99_ms=_wrk_ms(p99.group(1)) if p99 else None,
                      client=f"wrk ({threads} threads, {concurrency} connections)")


def run_post_load(url: str, *, headers: dict[str, str], bodies: list[bytes], duration: float = 5.0, warmup: float = 1.0,
                  concurrency: int = 8) -> LoadResult | None:
    """POSTs of a body picked at random from `bodies`, by wrk; None when wrk is not
    installed or BENCH_CLIENT=python (the caller then uses its own Python loop)."""
    if os.environ.get("BENCH_CLIENT", "auto") == "python" or shutil.which("wrk") is None:
        return None
    return _wrk_load(url, "POST", headers, int(duration), warmup, concurrency, bodies=bodies)


def run_load(url: str, *, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None,
             duration: float = 5.0, warmup: float = 1.0, concurrency: int = 8) -> LoadResult:
    headers = dict(headers or {})
    choice = os.environ.get("BENCH_CLIENT", "auto")
    # wrk needs a Lua script for anything but a plain GET: those always use the python client.
    use_wrk = choice != "python" and shutil.which("wrk") is not None and method == "GET" and body is None
    if use_wrk:
        return _wrk_load(url, method, headers, int(duration), warmup, concurrency)
    return _python_load(url, method, headers, body, duration, warmup, concurrency)
