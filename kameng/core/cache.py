"""Django's Redis cache backend, minus one redis.Redis client built per cache call; and `VersionedProcessCache`,
what a process holds of rarely changed tables (price rules, sub-sites, risk rules), checked against a version
token in the shared cache.

## The Redis backend

`django.core.cache.backends.redis.RedisCacheClient.get_client()` returns `redis.Redis(connection_pool=pool)` anew
on every get/set/delete. The pool (the sockets) is already shared, but constructing the client object is not
cheap: redis-py copies its ~170 response callbacks into a fresh dict each time, 100–170 µs of CPU per cache call
measured here, against ~130 µs for the whole `cache.get()` once the client is reused (cached_db sessions read the
cache on every authenticated request; bench/README.md).

A redis.Redis client holds no per-command state of its own — each command takes a connection from the pool and
gives it back (redis-py documents clients as safe to share between threads) — so one client per pool is enough,
and it follows the pool across a fork (the pool notices the new pid and drops the parent's sockets). Everything
else (serialisation, timeouts, several servers with reads spread over the replicas) is Django's code, unchanged,
but for the client's name and version sent on each new connection: worked out once per process (`_DRIVER_INFO`).

    CACHES = {"default": {"BACKEND": "kameng.core.cache.RedisCache", "LOCATION": "redis://…"}}

## The versioned process cache

A value loaded from the database (a price table, a routing table, a rules snapshot) is held by each process, with
a dictionary of entries derived from it (a buyer's tier, a sub-site's details). A version token in the shared
cache (Redis in production, so every process sees it) is looked at at most once every `check_seconds`; when it
moved, the value is loaded again and the entries are dropped. `changed()` writes a new token (call it after the
commit that changed the tables) and drops this process's copy at once, so this process sees the change on its
next call and every other one within `check_seconds`. Between checks a read costs no query and no cache call.

Threads share one copy and take no lock to read it. No lock is held across a query: threads that find the check
due at the same moment may each load (the same rows; the last one stays). An entry computed from rows read before
the token moved is stored into the dictionary of the copy it was read under, so it is dropped with that copy even
when it lands after the reload; a copy loaded before a `changed()` in this process is not kept.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient
from redis import Redis
from redis.driver_info import DriverInfo

logger = logging.getLogger("kameng.cache")


# What a new connection tells the server about its client (CLIENT SETINFO), worked out once per process: left to
# redis-py, every new connection asks importlib.metadata for redis-py's version — a walk over the installed
# packages' metadata costing milliseconds of CPU, paid by each request thread's first cache call (each thread has
# its own cache client: a server's threads, and those it starts again after they idled).
_DRIVER_INFO = DriverInfo()


class RedisCacheClient(DjangoRedisCacheClient):
    """One redis.Redis client per connection pool, built on first use."""

    def __init__(self, servers: list[str], **options: Any) -> None:
        options.setdefault("driver_info", _DRIVER_INFO)
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


Value = TypeVar("Value")
Key = TypeVar("Key")
Entry = TypeVar("Entry")


@dataclass(frozen=True)
class _Held(Generic[Value, Key, Entry]):
    token: str
    value: Value
    loaded_at: float  # time.monotonic()
    entries: dict[Key, tuple[Entry, float]] = field(default_factory=dict)  # key -> (entry, when it was stored)


class VersionedProcessCache(Generic[Value, Key, Entry]):
    """`load(token)` held per process while the shared token `key` stays the same (module docstring).

    `check_seconds` (a number, or a function read at each check, e.g. a setting) is how long the token is trusted
    without looking; `max_age_seconds`, if given, reloads the value that long after loading it whatever the token
    says (a per-process local-memory cache never sees another process's token). Entries are forgotten all at once
    past `entries_max` (a bound on memory, not an eviction policy) and, with `entry_seconds`, each that long after
    it was stored. With `keeps_value_on_cache_error`, a token that cannot be read keeps the value held (logged;
    raised when nothing is held yet) and a token that cannot be written only drops this process's copy; without,
    the cache's error propagates."""

    def __init__(self, *, key: str, load: Callable[[str], Value], check_seconds: float | Callable[[], float],
                 max_age_seconds: Callable[[], float] | None = None, entries_max: int = 100_000,
                 entry_seconds: float | None = None, keeps_value_on_cache_error: bool = False) -> None:
        self.key = key
        self._load = load
        self._check_seconds = check_seconds if callable(check_seconds) else (lambda: check_seconds)
        self._max_age_seconds = max_age_seconds
        self._entries_max = entries_max
        self._entry_seconds = entry_seconds
        self._keeps_value_on_cache_error = keeps_value_on_cache_error
        self._lock = threading.Lock()  # guards replacing the held copy, never held across a query
        self._held: _Held[Value, Key, Entry] | None = None
        self._checked_at = 0.0
        self._generation = 0  # moved by forget(): a load begun before it is not kept

    def value(self) -> Value:
        """The value, as fresh as the token said within the last `check_seconds`."""
        return self._current().value

    def token(self) -> str:
        """The token the value held was loaded under (checked as `value()` checks it)."""
        return self._current().token

    def entry(self, key: Key, compute: Callable[[Key], Entry]) -> Entry:
        """The entry for `key` under the current value, computed by `compute(key)` on a miss and then held."""
        held = self._current()
        found = held.entries.get(key)
        now = time.monotonic()
        if found is not None and (self._entry_seconds is None or now - found[1] < self._entry_seconds):
            return found[0]
        entry = compute(key)
        self._store(held.entries, ((key, entry),), now)
        return entry

    def entries_set(self, entries: Iterable[tuple[Key, Entry]]) -> None:
        """Hold these entries under the current value (what this process has just written itself)."""
        self._store(self._current().entries, entries, time.monotonic())

    def changed(self) -> None:
        """The tables changed: a new token for every process, and this one drops its copy now (after commit)."""
        try:
            cache.set(self.key, uuid.uuid4().hex, None)
        except Exception:
            if not self._keeps_value_on_cache_error:
                raise
            # the other processes see the change at their copy's max age
            logger.exception("could not publish a new version of %s", self.key)
        finally:
            self.forget()

    def forget(self) -> None:
        """Drop this process's copy and entries (after a change here; tests; a fresh start)."""
        with self._lock:
            self._held = None
            self._checked_at = 0.0
            self._generation += 1

    def _current(self) -> _Held[Value, Key, Entry]:
        now = time.monotonic()
        held = self._held
        if held is not None and now - self._checked_at < self._check_seconds():
            return held
        generation = self._generation
        try:
            token = self._shared_token()
        except Exception:
            if held is None or not self._keeps_value_on_cache_error:
                raise
            logger.warning("version of %s unreadable (cache down?): keeping the loaded copy", self.key,
                           exc_info=True)
            self._checked_at = now
            return held
        if held is not None and held.token == token and (
                self._max_age_seconds is None or now - held.loaded_at < self._max_age_seconds()):
            self._checked_at = now
            return held
        loaded = _Held[Value, Key, Entry](token=token, value=self._load(token), loaded_at=time.monotonic())
        with self._lock:
            if generation == self._generation:
                self._held = loaded
                self._checked_at = now
        return loaded

    def _shared_token(self) -> str:
        token = cache.get(self.key)
        if token is None:  # never written, or evicted: start one that every process then shares
            cache.add(self.key, uuid.uuid4().hex, None)
            token = cache.get(self.key) or ""
        return str(token)

    def _store(self, entries: dict[Key, tuple[Entry, float]], new: Iterable[tuple[Key, Entry]], now: float) -> None:
        for key, entry in new:
            if len(entries) >= self._entries_max:
                entries.clear()
            entries[key] = (entry, now)
