"""HTTP for webhooks: Standard Webhooks signing and a pooled, vetted POST.

Signing is the `standardwebhooks` package's (`Webhook.sign`), the library the
receivers' samples verify with.

A worker process keeps a small pool of keep-alive sockets per endpoint address,
so a batch of deliveries to one receiver reuses its connections and is sent by
several threads at once. Each request goes out in one write (head and body
together) and the answer is parsed by `http.client.HTTPResponse`: a third of
the CPU of a general-purpose client. The connection goes to the very address
that was vetted (the TLS server name and the Host header stay the URL's host).
Redirects are never followed; nothing is retried at this level (the delivery
schedule owns retries), except a request that found a kept-alive connection
closed by the receiver before it was read.

Why not urllib3 (issue 20, point 9): its HTTPSConnectionPool does the same
pinning (connect to the vetted address, `server_hostname` = the URL's host) and
passes our transport tests, but it costs 720 µs of CPU per request against
420 µs here (one thread, local receiver, 3 runs of 3,000 POSTs, steady to
±3 %). The webhook row of `make bench` (best of 3, on a shared 2-core machine)
gave 2,671 deliveries/s with it against 3,260 and 2,816 with this client: a
difference inside that machine's noise, so the CPU figure decides. Sending is
the delivery worker's whole job and the row is CPU-bound (2 worker processes),
so +70 % CPU per request matters; this client stays.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import http.client
import select
import socket
import ssl
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from standardwebhooks.webhooks import Webhook

from webhooks.addresses import Target

USER_AGENT = "Together-Webhooks/1.0"
EXCERPT_BYTES = 1024
DRAIN_LIMIT_BYTES = 64 * 1024
MAX_RETRY_AFTER_SECONDS = 24 * 3600


def sign(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}`; the key is the secret's
    UTF-8 bytes (webhooks.md: receivers give their library those bytes base64-encoded)."""
    when = dt.datetime.fromtimestamp(timestamp, tz=dt.timezone.utc)
    return Webhook(secret.encode("utf-8")).sign(msg_id=msg_id, timestamp=when, data=body.decode("utf-8"))


def signature_header(*, secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """Several signatures (during a secret rotation) are space-separated, as the standard allows."""
    return " ".join(sign(secret=s, msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets)


def headers_for(*, msg_id: str, timestamp: int, body: bytes, secrets: list[str], host_header: str | None = None) -> dict:
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets=secrets, msg_id=msg_id, timestamp=timestamp, body=body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    if host_header:
        headers["host"] = host_header
    return headers


@dataclass
class SendResult:
    succeeded: bool
    status_code: int | None = None
    latency_ms: int | None = None
    excerpt: str | None = None
    error: str | None = None
    retry_after: float | None = None
    gone: bool = False  # 410: the receiver asks us to stop
    sent: bool = True  # False: not tried (the batch ran out of time); no attempt is recorded


NOT_SENT = SendResult(succeeded=False, sent=False)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, min(seconds, MAX_RETRY_AFTER_SECONDS))


# -- connections -------------------------------------------------------------------

_TLS = ssl.create_default_context()


class Connection:
    """One keep-alive socket to a target: to the vetted address when there is one,
    with the URL's host as the TLS server name (certificates are verified)."""

    __slots__ = ("sock",)

    def __init__(self, target: Target, timeout: float):
        sock = socket.create_connection((target.address or target.host, target.port), timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if target.scheme == "https":
                sock = _TLS.wrap_socket(sock, server_hostname=target.host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    def alive(self, timeout: float) -> bool:
        """Still open, with nothing unexpected to read (a TLS session ticket is fine)."""
        sock = self.sock
        try:
            if not select.select([sock], [], [], 0)[0]:
                sock.settimeout(timeout)
                return True
            sock.setblocking(False)
            try:
                sock.recv(1)
                return False  # b"": closed by the peer; bytes: junk we did not ask for
            except (ssl.SSLWantReadError, BlockingIOError):
                sock.settimeout(timeout)
                return True
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class ConnectionPool:
    """Idle keep-alive connections to one target, shared by a process's sender threads."""

    def __init__(self, target: Target, maxsize: int):
        self.target = target
        self.maxsize = maxsize
        self._idle: list[Connection] = []
        self._lock = threading.Lock()

    def get(self, timeout: float) -> tuple[Connection, bool]:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return Connection(self.target, timeout), False
            if conn.alive(timeout):
                return conn, True
            conn.close()

    def put(self, conn: Connection) -> None:
        with self._lock:
            if len(self._idle) < self.maxsize:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


_POOLS: OrderedDict[tuple, ConnectionPool] = OrderedDict()
_POOLS_LOCK = threading.Lock()
MAX_POOLS = 256


def pool_for(target: Target, *, maxsize: int) -> ConnectionPool:
    key = (target.scheme, target.host, target.port, target.address)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is not None:
            _POOLS.move_to_end(key)
            return pool
        pool = _POOLS[key] = ConnectionPool(target, maxsize)
        while len(_POOLS) > MAX_POOLS:
            _, old = _POOLS.popitem(last=False)
            old.close()
        return pool


def pools_clear() -> None:
    with _POOLS_LOCK:
        while _POOLS:
            _, pool = _POOLS.popitem()
            pool.close()


def _describe(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"timeout: no response within {timeout:g} s"
    if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
        return f"TLS error: {exc}"[:500]
    if isinstance(exc, (ConnectionError, http.client.RemoteDisconnected)):
        return f"connection error: {exc}"[:500]
    if isinstance(exc, OSError):
        return f"connection failed: {exc}"[:500]
    return f"{type(exc).__name__}: {exc}"[:500]


_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def request_bytes(*, target: Target, headers: dict, body: bytes) -> bytes:
    """The whole request in one buffer: one write, one packet for small events."""
    lines = [f"POST {target.path} HTTP/1.1", f"host: {target.host_header}"]
    lines += [f"{name}: {value}" for name, value in headers.items() if name != "host"]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


def post(*, pool: ConnectionPool, target: Target, msg_id: str, body: bytes, secrets: list[str],
         timeout: float) -> SendResult:
    """One signed POST. 2xx within `timeout` seconds is success; anything else is a failure."""
    timestamp = int(time.time())
    payload = request_bytes(
        target=target, body=body,
        headers=headers_for(msg_id=msg_id, timestamp=timestamp, body=body, secrets=secrets),
    )
    started = time.perf_counter()
    for retry in (False, True):
        conn = None
        try:
            conn, reused = pool.get(timeout)
            conn.sock.sendall(payload)
            response = http.client.HTTPResponse(conn.sock, method="POST")
            response.begin()
            break
        except _STALE as exc:
            if conn is not None:
                conn.close()
            if conn is not None and reused and not retry:
                continue  # the receiver closed a kept-alive connection before reading: once more, on a new one
            return SendResult(succeeded=False, latency_ms=int((time.perf_counter() - started) * 1000),
                              error=_describe(exc, timeout))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if conn is not None:
                conn.close()
            return SendResult(succeeded=False, latency_ms=int((time.perf_counter() - started) * 1000),
                              error=_describe(exc, timeout))
    status = response.status
    try:
        raw = response.read(EXCERPT_BYTES)
        if not response.isclosed():
            response.read(DRAIN_LIMIT_BYTES)  # finish a small body: keep the connection
        reusable = response.isclosed() and not response.will_close
    except (OSError, http.client.HTTPException) as exc:
        response.close()
        conn.close()
        return SendResult(succeeded=False, status_code=status, latency_ms=int((time.perf_counter() - started) * 1000),
                          error=_describe(exc, timeout))
    if reusable:
        pool.put(conn)
    else:
        response.close()
        conn.close()  # a big or endless body, or the receiver asked to close
    latency = int((time.perf_counter() - started) * 1000)
    excerpt = raw.decode("utf-8", "replace") if raw else None
    if latency > timeout * 1000:
        return SendResult(succeeded=False, status_code=status, latency_ms=latency, excerpt=excerpt,
                          error=f"timeout: the response took {latency} ms (limit {timeout:g} s)")
    if 200 <= status < 300:
        return SendResult(succeeded=True, status_code=status, latency_ms=latency, excerpt=excerpt)
    error = f"HTTP {status}"
    if 300 <= status < 400:
        error = f"HTTP {status}: redirects are not followed"
    retry_after = parse_retry_after(response.getheader("retry-after")) if status in (429, 503) else None
    return SendResult(succeeded=False, status_code=status, latency_ms=latency, excerpt=excerpt, error=error,
                      retry_after=retry_after, gone=status == 410)
