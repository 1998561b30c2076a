"""Counters in a time window, in the cache (Redis in production): rate limits and failure counts."""

from __future__ import annotations

import math
import time

from django.core.cache import cache


def counter_hit(*, key: str, window: int) -> int:
    """Count one in the window at `key` (opening it if none is open) and return the new count."""
    # add() opens the window only if none is open; incr() is atomic on Redis (and under locmem's lock).
    if cache.add(key, 0, timeout=window):
        cache.set(f"{key}:ends", time.time() + window, timeout=window)
    try:
        return int(cache.incr(key))
    except ValueError:  # the window closed between add() and incr()
        cache.set(key, 1, timeout=window)
        cache.set(f"{key}:ends", time.time() + window, timeout=window)
        return 1


def counter_seconds_left(*, key: str, window: int) -> int:
    """How long the window at `key` stays open (the whole window if the counter's end is unknown)."""
    ends = cache.get(f"{key}:ends")
    if ends is None:
        return window
    return max(1, math.ceil(float(ends) - time.time()))
