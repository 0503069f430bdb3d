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

# The bucket, as a Lua fragment on `bucket_key` (shared by the two scripts below):
# sets `allowed`, `tokens`, `now`.
_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local data = redis.call('HMGET', bucket_key, 'tokens', 'ts')
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
redis.call('HSET', bucket_key, 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', bucket_key, math.ceil(burst / rate) + 2)
"""

TOKEN_BUCKET = "local bucket_key = KEYS[1]\n" + _BUCKET_LUA + "return {allowed, tostring(tokens), tostring(now)}\n"

# One round trip for an authenticated API request (organisations.keycache):
#   KEYS[1] the API keys' generation, KEYS[2] the key's last-used marker, KEYS[3] the organisation's bucket (or none)
#   ARGV[1], ARGV[2] rate, burst; ARGV[3] the generation the caller's copy of the key was read under; ARGV[4] the
#   marker's lifetime in seconds.
# A generation that moved on (a key or organisation changed since) answers {0} and touches nothing: the caller
# reads the key again, so a revoked key takes no token and leaves no mark.
# Otherwise {1, marker_was_set, allowed, tokens, now} (the last three empty without a bucket).
AUTH_ROUND_TRIP = (
    "if redis.call('GET', KEYS[1]) ~= ARGV[3] then return {0} end\n"
    "local touched = 0\n"
    "if redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[4])) then touched = 1 end\n"
    "if #KEYS < 3 then return {1, touched} end\n"
    "local bucket_key = KEYS[3]\n" + _BUCKET_LUA + "return {1, touched, allowed, tostring(tokens), tostring(now)}\n"
)

_script = None
_auth_script = None


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
        allowed, tokens_s, now_s = _script(keys=[bucket_key(organisation_id)], args=[rate, burst], client=redis_client)
    except Exception as exc:  # noqa: BLE001 - any Redis failure fails open
        log.error("RATE LIMITER UNAVAILABLE, failing open: %s", exc, extra={"organisation_id": organisation_id})
        return RateLimitResult(True, burst, None, None, None, None)
    return _result(allowed, tokens_s, now_s, rate=rate, burst=burst)


def bucket_key(organisation_id: str) -> str:
    return f"ratelimit:{organisation_id}"


def _result(allowed, tokens_s, now_s, *, rate, burst) -> RateLimitResult:
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


@dataclass(frozen=True)
class AuthRoundTrip:
    current: bool  # the generation was the one expected: the caller's copy of the key holds
    touched: bool = False  # the last-used marker was set now (first use this interval)
    rate_limit: RateLimitResult | None = None  # the bucket's answer, when one was asked for


def auth_round_trip(*, generation_key: str, generation: str, touch_key: str, touch_seconds: int,
                    organisation_id: str | None) -> AuthRoundTrip:
    """One Redis call: is `generation` still current, set the last-used marker, and (when `organisation_id` is
    given) take a token from the organisation's bucket. Raises when Redis does not answer: the caller decides."""
    global _auth_script
    rate, burst = settings.RATE_LIMIT_RATE, settings.RATE_LIMIT_BURST
    redis_client = client()
    if _auth_script is None:
        _auth_script = redis_client.register_script(AUTH_ROUND_TRIP)
    keys = [generation_key, touch_key] + ([bucket_key(organisation_id)] if organisation_id else [])
    answer = _auth_script(keys=keys, args=[rate, burst, generation, int(touch_seconds)], client=redis_client)
    if not int(answer[0]):
        return AuthRoundTrip(current=False)
    limit = _result(answer[2], answer[3], answer[4], rate=rate, burst=burst) if organisation_id else None
    return AuthRoundTrip(current=True, touched=bool(int(answer[1])), rate_limit=limit)


def rate_limit_unavailable(*, organisation_id: str, exc: Exception) -> RateLimitResult:
    """Redis down: the bucket fails open, loudly."""
    log.error("RATE LIMITER UNAVAILABLE, failing open: %s", exc, extra={"organisation_id": organisation_id})
    return RateLimitResult(True, settings.RATE_LIMIT_BURST, None, None, None, None)
