"""HTTP for webhooks: Standard Webhooks signing and a pooled, vetted POST.

A worker process keeps a small pool of keep-alive connections per endpoint
address (plain `http.client`: half the CPU of a general-purpose client per
request), so a batch of deliveries to one receiver reuses its connections and
is sent by several threads at once. The connection goes to the very address
that was vetted (the TLS server name and the Host header stay the URL's host).
Redirects are never followed; nothing is retried at this level (the delivery
schedule owns retries), except a request that found a kept-alive connection
closed by the receiver before it was read.
"""
from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import http.client
import select
import socket
import ssl
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from webhooks.addresses import Target

USER_AGENT = "Together-Webhooks/1.0"
EXCERPT_BYTES = 1024
DRAIN_LIMIT_BYTES = 64 * 1024
MAX_RETRY_AFTER_SECONDS = 24 * 3600


def sign(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` of `{id}.{timestamp}.{body}`, keyed by the secret's UTF-8 bytes."""
    digest = hmac.new(secret.encode("utf-8"), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


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


# -- connection pools ------------------------------------------------------------

_TLS = ssl.create_default_context()


class ConnectionPool:
    """Idle keep-alive connections to one target, shared by a process's sender threads."""

    def __init__(self, target: Target, maxsize: int):
        self.target = target
        self.maxsize = maxsize
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _new(self, timeout: float) -> http.client.HTTPConnection:
        t = self.target
        if t.scheme == "https":
            conn = http.client.HTTPSConnection(t.host, t.port, timeout=timeout, context=_TLS)
        else:
            conn = http.client.HTTPConnection(t.host, t.port, timeout=timeout)
        if t.address is not None:
            address = t.address

            def pinned(_address, timeout=None, source_address=None):
                return socket.create_connection((address, t.port), timeout, source_address)

            conn._create_connection = pinned  # connect to the vetted address, keep the name for TLS
        return conn

    def get(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._new(timeout), False
            sock = conn.sock
            if sock is None or select.select([sock], [], [], 0)[0]:  # closed by the peer (or junk): drop it
                conn.close()
                continue
            conn.timeout = timeout
            sock.settimeout(timeout)
            return conn, True

    def put(self, conn: http.client.HTTPConnection) -> None:
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
    if isinstance(exc, ssl.SSLError) or isinstance(exc, ssl.CertificateError):
        return f"TLS error: {exc}"[:500]
    if isinstance(exc, (ConnectionError, http.client.RemoteDisconnected)):
        return f"connection error: {exc}"[:500]
    if isinstance(exc, OSError):
        return f"connection failed: {exc}"[:500]
    return f"{type(exc).__name__}: {exc}"[:500]


_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def post(*, pool: ConnectionPool, target: Target, msg_id: str, body: bytes, secrets: list[str],
         timeout: float) -> SendResult:
    """One signed POST. 2xx within `timeout` seconds is success; anything else is a failure."""
    timestamp = int(time.time())
    headers = headers_for(msg_id=msg_id, timestamp=timestamp, body=body, secrets=secrets,
                          host_header=target.host_header if target.address else None)
    started = time.perf_counter()
    for retry in (False, True):
        conn, reused = pool.get(timeout)
        try:
            conn.request("POST", target.path, body=body, headers=headers)
            response = conn.getresponse()
            break
        except _STALE as exc:
            conn.close()
            if reused and not retry:
                continue  # the receiver closed a kept-alive connection before reading: once more, on a new one
            return SendResult(succeeded=False, latency_ms=int((time.perf_counter() - started) * 1000),
                              error=_describe(exc, timeout))
        except (OSError, http.client.HTTPException, ValueError) as exc:
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
        conn.close()
        return SendResult(succeeded=False, status_code=status, latency_ms=int((time.perf_counter() - started) * 1000),
                          error=_describe(exc, timeout))
    if reusable:
        pool.put(conn)
    else:
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
