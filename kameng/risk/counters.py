"""Windowed counters for the velocity rules: one atomic step per attempt, in the shared cache.

On Redis (production, `kameng.core.cache.RedisCache` or Django's own) one Lua script does INCR and, on the first
hit, EXPIRE — one round trip, and no moment where a counter exists without its expiry. Any number of processes and
threads hitting one counter get distinct counts, so exactly `limit` attempts pass.

Anywhere else (the embedded default's local-memory cache) it is kameng.core.counters: add() opens the window and
incr() counts, both atomic under the cache's lock. Limits of that mode: the counts live in one process (each
process of a multi-process server counts on its own, so the effective limit is multiplied by the processes) and
vanish on a restart. Production should run with REDIS_URL.

Windows are fixed: they open at the first hit and close `window` seconds later (not sliding).
"""

from __future__ import annotations

from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

from kameng.core.counters import counter_hit

_INCR_WITH_EXPIRY = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""
_scripts: dict[int, Any] = {}


def window_hit(*, key: str, window: int) -> int:
    """Count one attempt at `key` in a window of `window` seconds; the count including this one."""
    backend: Any = caches["default"]
    if isinstance(backend, RedisCache):
        client = backend._cache.get_client(key, write=True)
        script = _scripts.get(id(client))
        if script is None:
            script = _scripts[id(client)] = client.register_script(_INCR_WITH_EXPIRY)
        return int(script(keys=[backend.make_and_validate_key(key)], args=[int(window)]))
    return counter_hit(key=key, window=window)
