"""Django's Redis cache backend, minus one redis.Redis client built per cache call.

`django.core.cache.backends.redis.RedisCacheClient.get_client()` returns `redis.Redis(connection_pool=pool)` anew
on every get/set/delete. The pool (the sockets) is already shared, but constructing the client object is not
cheap: redis-py copies its ~170 response callbacks into a fresh dict each time, 100–170 µs of CPU per cache call
measured here, against ~130 µs for the whole `cache.get()` once the client is reused (cached_db sessions read the
cache on every authenticated request; bench/README.md).

A redis.Redis client holds no per-command state of its own — each command takes a connection from the pool and
gives it back (redis-py documents clients as safe to share between threads) — so one client per pool is enough,
and it follows the pool across a fork (the pool notices the new pid and drops the parent's sockets). Everything
else (serialisation, timeouts, several servers with reads spread over the replicas) is Django's code, unchanged.

    CACHES = {"default": {"BACKEND": "kameng.core.cache.RedisCache", "LOCATION": "redis://…"}}
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient
from redis import Redis


class RedisCacheClient(DjangoRedisCacheClient):
    """One redis.Redis client per connection pool, built on first use."""

    def __init__(self, servers: list[str], **options: Any) -> None:
        super().__init__(servers, **options)
        self._clients: dict[int, Redis] = {}  # id(pool) -> client; pools live as long as this object
        self._clients_lock = threading.Lock()

    def get_client(self, key: Any = None, *, write: bool = False) -> Redis:
        # Django's choice of pool (reads spread over replicas when there are several servers), its client class.
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]  # private in Django, not stubbed
        client = self._clients.get(id(pool))
        if client is None:
            with self._clients_lock:
                client = self._clients.get(id(pool))
                if client is None:
                    client = self._clients[id(pool)] = self._client(connection_pool=pool)  # type: ignore[attr-defined]
        return client


class RedisCache(DjangoRedisCache):
    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
