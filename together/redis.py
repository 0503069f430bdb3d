from __future__ import annotations

import functools

import redis
from django.conf import settings


@functools.lru_cache(maxsize=1)
def client() -> redis.Redis:
    """A shared client with short timeouts: callers must survive Redis being down."""
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.25, socket_connect_timeout=0.25, health_check_interval=30)
