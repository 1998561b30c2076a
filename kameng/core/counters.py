"""Counters in a time window, in the cache (Redis in production): rate limits and failure counts.

A window opens with the first hit at its key and closes `window` seconds later, taking its count with it.

On Redis (Django's backend, which kameng.core.cache.RedisCache is) a hit is one script run by the server: INCR, and
the window's expiry set when the counter has none yet — one command, one round trip, atomic, and never a counter
left without an expiry; the seconds left are the counter's TTL. On any other cache (the in-process cache of a server
without REDIS_URL, the tests' fallback) the window is opened with `add`, counted with `incr` (atomic under the
local cache's lock) and its end kept beside it at `<key>:ends`. Keys go through the cache's `make_key` either way,
so its prefix and version apply, and `cache.get` / `cache.delete` of a counter's key work on both.

`counter_hit_after_add` adds a marker and counts one only if the marker was new: the Open API's nonce (kept while
a replay could still pass the timestamp check) and its per-key rate limit, in the same one script on Redis — and,
there, a note in a hash when counted (the key's last use, written to the database later in one statement for all).
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import NoScriptError

# Count one at KEYS[counter] within a window of ARGV[window] ms, leaving `count` and `left` (ms) in Lua locals. A
# counter without an expiry (left by a client that died between two commands of another scheme) gets one here, so
# no window stays open for good.
_COUNT = """
local count = redis.call('INCR', KEYS[{counter}])
local left = redis.call('PTTL', KEYS[{counter}])
if left < 0 then
    left = tonumber(ARGV[{window}])
    redis.call('PEXPIRE', KEYS[{counter}], left)
end
"""
# KEYS[1] the counter; ARGV[1] the window in ms. Returns {count, ms left}.
_HIT = _COUNT.format(counter=1, window=1) + "return {count, left}\n"
# Add the marker KEYS[1] (value ARGV[1], kept ARGV[2] ms) unless it is there; if it was, return {0, 0} at once.
_ADD = """
if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
    return {0, 0}
end"""
# Set field {field} of the hash at {hash} to {value} unless it holds more already (a note: a host whose clock is
# behind does not take one back).
_KEEP_NEWER = """
local noted = tonumber(redis.call('HGET', {hash}, {field}))
if not noted or noted < tonumber({value}) then
    redis.call('HSET', {hash}, {field}, {value})
end
"""
# KEYS[1] the marker, KEYS[2] the counter; ARGV[1] the marker's value, ARGV[2] how long it is kept (ms), ARGV[3] the
# window (ms). Returns {0, 0} when the marker was there (nothing counted), else {1, count, ms left}.
_ADD_THEN_HIT = _ADD + _COUNT.format(counter=2, window=3) + "return {1, count, left}\n"
# The same, and when counted, the note ARGV[5] for field ARGV[4] of the hash at KEYS[3] (`counter_hit_after_add`).
_ADD_THEN_HIT_NOTE = (_ADD + _COUNT.format(counter=2, window=3)
                      + _KEEP_NEWER.format(hash="KEYS[3]", field="ARGV[4]", value="ARGV[5]")
                      + "return {1, count, left}\n")
# KEYS[1] a hash of notes: its fields and values, and the hash gone, atomically (`counter_notes_take`).
_NOTES_TAKE = "local notes = redis.call('HGETALL', KEYS[1])\nredis.call('DEL', KEYS[1])\nreturn notes\n"
# KEYS[1] a hash of notes, ARGV field, value, field, value…: each kept unless the hash holds more for it already.
_NOTES_PUT_BACK = ("for index = 1, #ARGV, 2 do"
                   + _KEEP_NEWER.format(hash="KEYS[1]", field="ARGV[index]", value="ARGV[index + 1]")
                   + "end\nreturn {}\n")
_SHA = {script: hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
        for script in (_HIT, _ADD_THEN_HIT, _ADD_THEN_HIT_NOTE, _NOTES_TAKE, _NOTES_PUT_BACK)}


def _redis() -> tuple[RedisCache, Any] | None:
    """The default cache and its writing client, when the cache is Redis."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return None
    return backend, backend._cache.get_client(write=True)


def _run(client: Any, script: str, keys: list[str], args: list[int]) -> list[int]:
    """Run a script by its digest; the server loads it once (after a restart or a SCRIPT FLUSH: once again)."""
    try:
        return list(client.evalsha(_SHA[script], len(keys), *keys, *args))
    except NoScriptError:
        return list(client.evalsha(client.script_load(script), len(keys), *keys, *args))


def counter_hit(*, key: str, window: int) -> int:
    """Count one in the window at `key` (opening it if none is open) and return the new count."""
    redis = _redis()
    if redis is not None:
        backend, client = redis
        return int(_run(client, _HIT, [backend.make_and_validate_key(key)], [int(window * 1000)])[0])
    # add() opens the window only if none is open; incr() is atomic under the local cache's lock.
    if cache.add(key, 0, timeout=window):
        cache.set(f"{key}:ends", time.time() + window, timeout=window)
    try:
        return int(cache.incr(key))
    except ValueError:  # the window closed between add() and incr()
        cache.set(key, 1, timeout=window)
        cache.set(f"{key}:ends", time.time() + window, timeout=window)
        return 1


def counters_on_redis() -> bool:
    """Whether the counters are kept in Redis (then `counter_hit_after_add` can take a `note`)."""
    return _redis() is not None


def counter_hit_after_add(*, marker: str, marker_seconds: int, key: str, window: int,
                          note: tuple[str, int, int] | None = None) -> int | None:
    """Add `marker` for `marker_seconds` (as `cache.add(marker, 1, …)`) and, only when it was not there, count one
    at `key` (as `counter_hit`): the new count, or None when the marker was there (nothing counted).

    `note` = (hash key, field, value), on Redis only (`counters_on_redis`; refused elsewhere): when counted, the
    field of that hash (its key through the cache's `make_key`) is set to the value in the same script."""
    redis = _redis()
    if redis is not None:
        backend, client = redis
        keys = [backend.make_and_validate_key(marker), backend.make_and_validate_key(key)]
        args = [1, int(marker_seconds * 1000), int(window * 1000)]
        if note is None:
            answer = _run(client, _ADD_THEN_HIT, keys, args)
        else:
            answer = _run(client, _ADD_THEN_HIT_NOTE, [*keys, backend.make_and_validate_key(note[0])],
                          [*args, note[1], note[2]])
        return int(answer[1]) if answer[0] else None
    if note is not None:
        raise ValueError("a note needs the counters on Redis (counters_on_redis)")
    if not cache.add(marker, 1, timeout=marker_seconds):
        return None
    return counter_hit(key=key, window=window)


def counter_notes_take(*, key: str) -> dict[int, int]:
    """The notes `counter_hit_after_add` left in the hash at `key` (field → value), removed in the same script: a
    note made meanwhile lands in a new hash, taken next time. Empty when the counters are not on Redis."""
    redis = _redis()
    if redis is None:
        return {}
    backend, client = redis
    flat = _run(client, _NOTES_TAKE, [backend.make_and_validate_key(key)], [])
    return {int(flat[index]): int(flat[index + 1]) for index in range(0, len(flat), 2)}


def counter_notes_put_back(*, key: str, notes: dict[int, int]) -> None:
    """Give back notes taken with `counter_notes_take` that could not be used (each kept unless a newer one was
    noted meanwhile). Nothing happens when the counters are not on Redis."""
    redis = _redis()
    if redis is None or not notes:
        return
    backend, client = redis
    _run(client, _NOTES_PUT_BACK, [backend.make_and_validate_key(key)],
         [value for field, noted in notes.items() for value in (field, noted)])


def counter_seconds_left(*, key: str, window: int) -> int:
    """How long the window at `key` stays open (the whole window if the counter's end is unknown)."""
    redis = _redis()
    if redis is not None:
        backend, client = redis
        left = int(client.pttl(backend.make_and_validate_key(key)))
        return window if left < 0 else max(1, math.ceil(left / 1000))
    ends = cache.get(f"{key}:ends")
    if ends is None:
        return window
    return max(1, math.ceil(float(ends) - time.time()))
