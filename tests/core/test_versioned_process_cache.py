"""kameng.core.cache.VersionedProcessCache: a value held per process, checked against a version token in the shared
cache at most every N seconds, reloaded (its entries dropped) when the token moved, never kept when it was loaded
before a change in this process — and between checks no load and no cache call."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache

from kameng.core import cache as cache_module
from kameng.core.cache import VersionedProcessCache
from tests.clock_support import MonotonicClock, monotonic_clock_install


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> MonotonicClock:
    return monotonic_clock_install(monkeypatch, cache_module)


@pytest.fixture
def key() -> Iterator[str]:
    key = f"test:versioned:{uuid.uuid4().hex}"  # the test Redis is shared: a key of this test's own
    yield key
    cache.delete(key)


class Loads:
    """The load function: answers (token, how many loads so far) and counts them."""

    def __init__(self) -> None:
        self.count = 0
        self.during: Callable[[], None] | None = None

    def __call__(self, token: str) -> tuple[str, int]:
        self.count += 1
        if self.during is not None:
            self.during()
        return token, self.count


def _held(key: str, **options: Any) -> tuple[VersionedProcessCache[tuple[str, int], int, str], Loads]:
    loads = Loads()
    return VersionedProcessCache[tuple[str, int], int, str](key=key, load=loads, **options), loads


def test_the_value_is_loaded_once_and_not_checked_again_within_the_interval(
        clock: MonotonicClock, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    held, loads = _held(key, check_seconds=1.0)
    first = held.value()
    assert loads.count == 1
    assert cache.get(key) == first[0]  # the first process to look started the shared token

    calls: list[str] = []
    monkeypatch.setattr(cache_module.cache, "get", lambda *args, **kwargs: calls.append("get"))
    clock.now += 0.999
    assert held.value() == first
    assert held.token() == first[0]
    assert calls == []  # no cache round trip within the interval
    assert loads.count == 1


def test_another_processs_change_is_seen_at_the_next_check_and_not_before(clock: MonotonicClock, key: str) -> None:
    held, loads = _held(key, check_seconds=1.0)
    held.value()
    cache.set(key, "another-process-changed")  # what `changed()` in another process writes

    clock.now += 0.5
    assert held.value()[1] == 1
    clock.now += 0.5
    assert held.value() == ("another-process-changed", 2)
    clock.now += 5.0
    assert held.value() == ("another-process-changed", 2)  # same token: checked, not loaded again
    assert loads.count == 2


def test_a_change_in_this_process_applies_at_once_and_moves_the_shared_token(clock: MonotonicClock, key: str) -> None:
    held, _ = _held(key, check_seconds=60.0)
    before = held.value()
    held.entry(7, lambda buyer_id: "old")

    held.changed()

    assert cache.get(key) != before[0]
    assert held.value() == (cache.get(key), 2)
    assert held.entry(7, lambda buyer_id: "new") == "new"


def test_entries_are_held_until_the_token_moves(clock: MonotonicClock, key: str) -> None:
    held, _ = _held(key, check_seconds=1.0)
    computed: list[int] = []

    def compute(buyer_id: int) -> str:
        computed.append(buyer_id)
        return f"tier-of-{buyer_id}-{len(computed)}"

    assert held.entry(1, compute) == "tier-of-1-1"
    clock.now += 3600
    assert held.entry(1, compute) == "tier-of-1-1"  # no time limit without entry_seconds
    assert computed == [1]
    cache.set(key, "moved")
    clock.now += 1.0
    assert held.entry(1, compute) == "tier-of-1-2"


def test_entry_seconds_and_entries_max(clock: MonotonicClock, key: str) -> None:
    held, _ = _held(key, check_seconds=1000.0, entry_seconds=5.0, entries_max=3)
    counter = iter(range(100))

    def compute(buyer_id: int) -> str:
        return f"{buyer_id}:{next(counter)}"

    assert held.entry(1, compute) == "1:0"
    clock.now += 4.9
    assert held.entry(1, compute) == "1:0"
    clock.now += 0.1
    assert held.entry(1, compute) == "1:1"  # 5 s after it was stored

    held.entries_set([(2, "2:set"), (3, "3:set")])
    assert held.entry(2, compute) == "2:set"
    held.entry(4, compute)  # a fourth: all forgotten at once, then this one held
    assert held.entry(2, compute) == "2:3"


def test_an_entry_read_before_the_token_moved_is_not_kept_after_the_reload(clock: MonotonicClock, key: str) -> None:
    held, _ = _held(key, check_seconds=1.0)
    held.value()

    def slow_compute(buyer_id: int) -> str:
        # While this read of the old rows is under way, another thread's check finds the moved token and reloads.
        cache.set(key, "moved")
        clock.now += 1.0
        held.value()
        return "read before the move"

    assert held.entry(1, slow_compute) == "read before the move"  # the caller gets what it read…
    assert held.entry(1, lambda buyer_id: "read after") == "read after"  # …but it was not kept


def test_a_load_begun_before_a_change_here_is_not_kept(clock: MonotonicClock, key: str) -> None:
    held, loads = _held(key, check_seconds=60.0)
    loads.during = held.changed  # staff saved while this thread read the old rows
    assert held.value()[1] == 1
    loads.during = None
    assert held.value() == (cache.get(key), 2)


def test_max_age_reloads_whatever_the_token_says(clock: MonotonicClock, key: str) -> None:
    max_age = [60.0]
    held, loads = _held(key, check_seconds=1.0, max_age_seconds=lambda: max_age[0])
    held.value()
    clock.now += 59.0
    held.value()
    assert loads.count == 1
    clock.now += 1.0
    held.value()
    assert loads.count == 2


def test_check_seconds_may_be_read_at_each_check(clock: MonotonicClock, key: str) -> None:
    interval = [1.0]
    held, loads = _held(key, check_seconds=lambda: interval[0])
    held.value()
    cache.set(key, "moved")
    interval[0] = 10.0
    clock.now += 5.0
    held.value()
    assert loads.count == 1
    interval[0] = 5.0
    held.value()
    assert loads.count == 2


class CacheDownError(Exception):
    pass


def _cache_down(*args: Any, **kwargs: Any) -> None:
    raise CacheDownError


def test_an_unreadable_token_keeps_the_held_value_only_when_asked(
        clock: MonotonicClock, key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tolerant, tolerant_loads = _held(key, check_seconds=1.0, keeps_value_on_cache_error=True)
    strict, _ = _held(key, check_seconds=1.0)
    never_loaded, _ = _held(key, check_seconds=1.0, keeps_value_on_cache_error=True)
    kept = tolerant.value()
    strict.value()

    monkeypatch.setattr(cache_module.cache, "get", _cache_down)
    monkeypatch.setattr(cache_module.cache, "set", _cache_down)
    clock.now += 1.0
    assert tolerant.value() == kept
    with pytest.raises(CacheDownError):
        strict.value()
    with pytest.raises(CacheDownError):
        never_loaded.value()  # nothing to keep

    tolerant.changed()  # cannot publish: this process still drops its copy
    with pytest.raises(CacheDownError):
        strict.changed()
    monkeypatch.undo()
    assert tolerant.value()[1] == tolerant_loads.count == 2


def test_threads_read_while_another_changes(key: str) -> None:
    held, _ = _held(key, check_seconds=0.0)
    errors: list[BaseException] = []
    start = threading.Barrier(9)

    def reader(buyer_id: int) -> None:
        start.wait()
        try:
            for _ in range(300):
                token, _ = held.value()
                assert token
                assert held.entry(buyer_id, lambda buyer: f"entry-{buyer}") == f"entry-{buyer_id}"
        except BaseException as error:  # reported below
            errors.append(error)

    def changer() -> None:
        start.wait()
        for _ in range(50):
            held.changed()

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(8)] + [threading.Thread(target=changer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert held.value()[0] == cache.get(key)  # after the last change, the value is the last token's
