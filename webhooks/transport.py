"""HTTP for webhooks: Standard Webhooks signing and a pooled, vetted POST.

A worker process keeps one urllib3 connection pool per endpoint address, so a
batch of deliveries to the same receiver reuses its keep-alive connections and
is sent by several threads at once. Redirects are never followed; no retry
happens at this level (the delivery schedule owns retries).
"""
from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError, HTTPError, NewConnectionError, ProtocolError, ReadTimeoutError, SSLError,
)

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

_POOLS: OrderedDict[tuple, urllib3.HTTPConnectionPool] = OrderedDict()
_POOLS_LOCK = threading.Lock()
MAX_POOLS = 256


def pool_for(target: Target, *, maxsize: int) -> urllib3.HTTPConnectionPool:
    key = (target.scheme, target.host, target.port, target.address)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is not None:
            _POOLS.move_to_end(key)
            return pool
        connect_to = target.address or target.host
        common = dict(port=target.port, maxsize=maxsize, block=False, retries=False)
        if target.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                connect_to, server_hostname=target.host, assert_hostname=target.host, cert_reqs="CERT_REQUIRED", **common
            )
        else:
            pool = urllib3.HTTPConnectionPool(connect_to, **common)
        _POOLS[key] = pool
        while len(_POOLS) > MAX_POOLS:
            _, old = _POOLS.popitem(last=False)
            old.close()
        return pool


def pools_clear() -> None:
    with _POOLS_LOCK:
        while _POOLS:
            _, pool = _POOLS.popitem()
            pool.close()


def _describe(exc: Exception, timeout: float) -> str:
    if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError, TimeoutError)):
        return f"timeout: no response within {timeout:g} s"
    if isinstance(exc, NewConnectionError):
        return f"connection failed: {exc.__cause__ or exc}"[:500]
    if isinstance(exc, SSLError):
        return f"TLS error: {exc}"[:500]
    if isinstance(exc, ProtocolError):
        return f"connection error: {exc}"[:500]
    return f"{type(exc).__name__}: {exc}"[:500]


def post(*, pool: urllib3.HTTPConnectionPool, target: Target, msg_id: str, body: bytes, secrets: list[str],
         timeout: float) -> SendResult:
    """One signed POST. 2xx within `timeout` seconds is success; anything else is a failure."""
    timestamp = int(time.time())
    headers = headers_for(msg_id=msg_id, timestamp=timestamp, body=body, secrets=secrets,
                          host_header=target.host_header if target.address else None)
    started = time.perf_counter()
    try:
        response = pool.urlopen(
            "POST", target.path, body=body, headers=headers, redirect=False, retries=False,
            timeout=urllib3.Timeout(connect=min(timeout, 10.0), read=timeout), preload_content=False,
            assert_same_host=False, release_conn=False,
        )
    except (HTTPError, OSError) as exc:
        latency = int((time.perf_counter() - started) * 1000)
        return SendResult(succeeded=False, latency_ms=latency, error=_describe(exc, timeout))
    try:
        raw = response.read(EXCERPT_BYTES, decode_content=False)
        if not response.isclosed():
            response.read(DRAIN_LIMIT_BYTES, decode_content=False)  # finish a small body: keep the connection
        if not response.isclosed():
            response.close()  # a big or endless body: drop the connection rather than read it
    except (HTTPError, OSError) as exc:
        response.close()
        latency = int((time.perf_counter() - started) * 1000)
        return SendResult(succeeded=False, status_code=response.status, latency_ms=latency, error=_describe(exc, timeout))
    finally:
        response.release_conn()
    latency = int((time.perf_counter() - started) * 1000)
    status = response.status
    excerpt = raw.decode("utf-8", "replace") if raw else None
    if latency > timeout * 1000:
        return SendResult(succeeded=False, status_code=status, latency_ms=latency, excerpt=excerpt,
                          error=f"timeout: the response took {latency} ms (limit {timeout:g} s)")
    if 200 <= status < 300:
        return SendResult(succeeded=True, status_code=status, latency_ms=latency, excerpt=excerpt)
    error = f"HTTP {status}"
    if 300 <= status < 400:
        error = f"HTTP {status}: redirects are not followed"
    retry_after = parse_retry_after(response.headers.get("retry-after")) if status in (429, 503) else None
    return SendResult(succeeded=False, status_code=status, latency_ms=latency, excerpt=excerpt, error=error,
                      retry_after=retry_after, gone=status == 410)
