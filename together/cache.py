"""Django's Redis cache with one client object per connection pool (issue 15).

django.core.cache.backends.redis builds a new `redis.Redis` for every operation,
and redis-py's constructor copies its ~170 response callbacks into a fresh
case-insensitive dict each time: half the CPU of a cache read. A `redis.Redis` is
safe to share between threads (each command takes a connection from the pool), so
each pool gets one, made on first use."""
from __future__ import annotations

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient
