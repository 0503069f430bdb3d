"""Fixed-window attempt limits in Redis, and the per-client limit on public POSTs.

One Lua script reserves an attempt atomically (INCR, EXPIRE when the key is new,
and the attempt given straight back when over the limit), so any number of
server processes and threads admit at most `limit` attempts per window; Redis's
clock is the only clock. A caller may give an attempt back (`window_refund`),
e.g. a passphrase exchange whose passphrase was right.

Users: the distribution-passphrase guess limit (recommendations.services.links,
fails closed) and `public_post_take`, the limit on anonymous POSTs that pledge
or pay (the public giving form now; donation forms and checkout links next),
which fails open (logged) so that a Redis outage does not stop giving.
(The API's per-organisation token bucket is together/api/throttling.py.)

The sign-in throttle (organisations.services.signin_attempt_reserve) is this
window, not django-axes (issue 20, point 9): axes counts a failure after the
password was checked (its `user_login_failed` handler; the cache handler's
add/incr per key), so a burst of parallel guesses all pass its check before
any is counted, and its database handler writes rows per failure. Here one
Lua call reserves the attempt for that account from that client before the
password is checked, atomically across processes, and a right password gives
it back.
"""
from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

from django.conf import settings

from together.redis import client

log = logging.getLogger("together.ratelimit")

WINDOW_RESERVE_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
local ttl = redis.call('TTL', KEYS[1])
if n > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return {0, ttl}
end
return {1, ttl}
"""
WINDOW_REFUND_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('GET', KEYS[1])) > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0
"""


class LimiterUnavailable(Exception):
    """Redis did not answer: the caller decides whether to fail open or closed."""


@dataclass(frozen=True)
class WindowResult:
    allowed: bool
    limit: int
    retry_after: int | None = None  # seconds until the window ends, when refused


def key_prefix() -> str:
    """The cache key prefix (CACHE_KEY_PREFIX), so test runs and sites sharing a Redis do not collide."""
    return settings.CACHES.get("default", {}).get("KEY_PREFIX") or "together"


def window_reserve(*, key: str, limit: int, window_seconds: int, redis_client=None) -> WindowResult:
    """Take one attempt from `key`'s window. Raises LimiterUnavailable if Redis is down."""
    try:
        allowed, ttl = (redis_client or client()).eval(WINDOW_RESERVE_LUA, 1, key, int(limit), int(window_seconds))
    except Exception as exc:  # noqa: BLE001 - any Redis failure
        raise LimiterUnavailable(str(exc)) from exc
    if int(allowed):
        return WindowResult(allowed=True, limit=limit)
    return WindowResult(allowed=False, limit=limit, retry_after=max(int(ttl), 1))


def window_refund(*, key: str, redis_client=None) -> None:
    """Give one attempt back (never below zero). Best effort."""
    try:
        (redis_client or client()).eval(WINDOW_REFUND_LUA, 1, key)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not refund an attempt on %s: %s", key, exc)


# --- who is the client ------------------------------------------------------------

def client_ip(request) -> str:
    """The client's address: REMOTE_ADDR, unless settings.CLIENT_IP_HEADER names a
    header set by our own reverse proxy (e.g. HTTP_X_FORWARDED_FOR), whose LAST
    entry is used: that is the one our proxy appended; earlier ones are whatever
    the client sent. Never trust the header unless the proxy is configured."""
    header = getattr(settings, "CLIENT_IP_HEADER", "")
    if header:
        raw = request.META.get(header, "")
        candidate = raw.split(",")[-1].strip() if raw else ""
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            pass
    return request.META.get("REMOTE_ADDR") or "unknown"


def client_bucket(address: str) -> str:
    """IPv4 addresses count one by one; an IPv6 client counts by its /64 (one
    subscriber usually holds a whole /64, so single addresses are free to rotate)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if parsed.version == 6:
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


# --- public POSTs -------------------------------------------------------------------

PUBLIC_POST_DEFAULT = (10, 600)


def public_post_limit() -> tuple[int, int]:
    """settings.PUBLIC_POST_RATE_LIMIT, "N/seconds" (e.g. "10/600"); (0, 0) when off ("0" or "").
    A malformed value keeps the default (logged): a public page never fails over it."""
    spec = str(getattr(settings, "PUBLIC_POST_RATE_LIMIT", "10/600") or "0").strip()
    count, _, window = spec.partition("/")
    try:
        limit, seconds = int(count), int(window or 60)
    except ValueError:
        log.error("PUBLIC_POST_RATE_LIMIT must look like 10/600, not %r: using %s/%s", spec, *PUBLIC_POST_DEFAULT)
        return PUBLIC_POST_DEFAULT
    return (limit, seconds) if limit > 0 and seconds > 0 else (0, 0)


def public_post_key(*, scope: str, client: str) -> str:
    return f"{key_prefix()}:public-post:{scope}:{client_bucket(client)}"


def public_post_take(request, *, scope: str) -> WindowResult:
    """One anonymous POST that pledges or pays, from this client, for `scope` (the
    organisation whose form it is, e.g. "org:<id>"). At most N per window per
    client per scope; fails open (logged) when Redis is down."""
    limit, seconds = public_post_limit()
    if not limit:
        return WindowResult(allowed=True, limit=0)
    address = client_ip(request)
    try:
        result = window_reserve(key=public_post_key(scope=scope, client=address), limit=limit, window_seconds=seconds)
    except LimiterUnavailable as exc:
        log.error("PUBLIC POST LIMITER UNAVAILABLE, failing open: %s", exc, extra={"scope": scope})
        return WindowResult(allowed=True, limit=limit)
    if not result.allowed:
        log.warning("public POST limit reached", extra={"scope": scope, "client": client_bucket(address),
                                                         "retry_after": result.retry_after})
    return result
