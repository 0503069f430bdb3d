"""Per-organisation token bucket in Redis: one Lua script, one round trip,
exact across any number of server processes (Redis's clock is the only clock)."""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings

from together.redis import client

log = logging.getLogger("together.ratelimit")

TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local data = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(data[1])
local ts = tonumber(data[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
tokens = math.min(burst, tokens + elapsed * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 2)
return {allowed, tostring(tokens), tostring(now)}
"""

_script = None


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    limit: int
    remaining: int | None
    reset_seconds: int | None
    reset_epoch: int | None
    retry_after: int | None

    def headers(self) -> dict[str, str]:
        out = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Policy": f"{self.limit};w=1",
            "X-RateLimit-Limit": str(self.limit),
        }
        if self.remaining is not None:
            out.update({
                "RateLimit-Remaining": str(self.remaining),
                "RateLimit-Reset": str(self.reset_seconds),
                "X-RateLimit-Remaining": str(self.remaining),
                "X-RateLimit-Reset": str(self.reset_epoch),
            })
        return out


def rate_limit_take(*, organisation_id: str) -> RateLimitResult:
    """Take one token from the organisation's bucket. Fails open if Redis is down."""
    global _script
    rate, burst = settings.RATE_LIMIT_RATE, settings.RATE_LIMIT_BURST
    try:
        redis_client = client()
        if _script is None:
            _script = redis_client.register_script(TOKEN_BUCKET)
        # The client is passed on every call: the script object must not pin the
        # first client it was registered with (a reconfigured client would be ignored).
        allowed, tokens_s, now_s = _script(keys=[f"ratelimit:{organisation_id}"], args=[rate, burst], client=redis_client)
    except Exception as exc:  # noqa: BLE001 - any Redis failure fails open
        log.error("RATE LIMITER UNAVAILABLE, failing open: %s", exc, extra={"organisation_id": organisation_id})
        return RateLimitResult(True, burst, None, None, None, None)
    tokens, now = float(tokens_s), float(now_s)
    reset = max(0, math.ceil((burst - tokens) / rate))
    retry_after = None if allowed else max(1, math.ceil((1 - tokens) / rate))
    return RateLimitResult(
        allowed=bool(allowed),
        limit=burst,
        remaining=int(math.floor(tokens)),
        reset_seconds=reset,
        reset_epoch=int(math.ceil(now)) + reset if now else int(time.time()) + reset,
        retry_after=retry_after,
    )
