"""Counters in a window (kameng.core.counters) on both of their paths: the Redis script (against the real Redis of
the tests, TEST_REDIS_URL) and the portable one (the in-process cache)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache, caches
from django.test import override_settings

from kameng.core import counters
from kameng.core.counters import (
    counter_hit,
    counter_hit_after_add,
    counter_notes_put_back,
    counter_notes_take,
    counter_seconds_left,
)

LOCMEM = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "counters-test"}


def _redis_cache() -> dict[str, Any] | None:
    configured = settings.CACHES["default"]
    return configured if "Redis" in configured["BACKEND"] else None


@pytest.fixture(params=["redis", "locmem"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "redis":
        configured = _redis_cache()
        if configured is None:
            pytest.skip("the Redis path needs the Redis cache (TEST_REDIS_URL)")
        # a version of its own: the keys are made with the cache's prefix and version, whatever they are
        with override_settings(CACHES={"default": {**configured, "VERSION": 7}}):
            yield "redis"
            _delete_own_keys()
    else:
        with override_settings(CACHES={"default": LOCMEM}):
            cache.clear()
            yield "locmem"


def _delete_own_keys() -> None:
    client = caches["default"]._cache.get_client(write=True)  # type: ignore[attr-defined]
    keys = list(client.scan_iter(match=f"{cache.key_prefix}:7:*", count=1000))
    if keys:
        client.delete(*keys)


def _client() -> Any:
    return caches["default"]._cache.get_client(write=True)  # type: ignore[attr-defined]


def test_hits_count_up_in_one_window_per_key(backend: str) -> None:
    assert [counter_hit(key="t:a", window=60) for _ in range(3)] == [1, 2, 3]
    assert counter_hit(key="t:b", window=60) == 1
    assert cache.get("t:a") == 3  # the counter reads back through the cache, its prefix and version
    assert 59 <= counter_seconds_left(key="t:a", window=60) <= 60
    cache.delete("t:a")  # what a reset does (a successful login)
    assert counter_hit(key="t:a", window=60) == 1


def test_a_window_closes_and_the_next_hit_opens_another(backend: str) -> None:
    assert [counter_hit(key="t:short", window=1) for _ in range(2)] == [1, 2]
    time.sleep(1.1)
    assert counter_hit(key="t:short", window=1) == 1


def test_a_window_not_opened_lasts_the_whole_window(backend: str) -> None:
    assert counter_seconds_left(key="t:never", window=900) == 900


def test_a_marker_counts_once_and_its_replay_counts_nothing(backend: str) -> None:
    first = counter_hit_after_add(marker="t:nonce:1", marker_seconds=900, key="t:rate", window=60)
    replay = counter_hit_after_add(marker="t:nonce:1", marker_seconds=900, key="t:rate", window=60)
    second = counter_hit_after_add(marker="t:nonce:2", marker_seconds=900, key="t:rate", window=60)

    assert (first, replay, second) == (1, None, 2)
    assert cache.get("t:rate") == 2
    assert cache.get("t:nonce:1") == 1  # as cache.add(marker, 1) would have left it
    assert cache.add("t:nonce:1", 1) is False


def test_on_redis_the_counter_and_the_marker_expire_with_their_windows(backend: str) -> None:
    if backend != "redis":
        pytest.skip("Redis only: the expiry is the key's")
    counter_hit_after_add(marker="t:nonce:x", marker_seconds=900, key="t:rate", window=60)
    client = _client()

    assert 59_000 < client.pttl(cache.make_key("t:rate")) <= 60_000
    assert 899_000 < client.pttl(cache.make_key("t:nonce:x")) <= 900_000
    assert client.exists(cache.make_key("t:rate") + ":ends") == 0  # the end is the key's TTL: nothing beside it


def test_on_redis_a_counter_left_without_expiry_gets_one(backend: str) -> None:
    if backend != "redis":
        pytest.skip("Redis only")
    client = _client()
    client.set(cache.make_key("t:stuck"), 5)

    assert counter_hit(key="t:stuck", window=60) == 6
    assert 0 < client.pttl(cache.make_key("t:stuck")) <= 60_000


def test_on_redis_a_script_the_server_forgot_is_loaded_again(backend: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    if backend != "redis":
        pytest.skip("Redis only")
    monkeypatch.setitem(counters._SHA, counters._HIT, "0" * 40)  # a digest the server does not know
    monkeypatch.setitem(counters._SHA, counters._ADD_THEN_HIT, "0" * 40)

    assert counter_hit(key="t:reloaded", window=60) == 1
    assert counter_hit_after_add(marker="t:m", marker_seconds=60, key="t:reloaded", window=60) == 2


def test_on_redis_each_hit_is_one_round_trip(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if backend != "redis":
        pytest.skip("Redis only")
    client = _client()
    counter_hit(key="t:warm", window=60)  # the script loaded
    counter_hit_after_add(marker="t:warm-m", marker_seconds=60, key="t:warm", window=60)
    sent: list[tuple[Any, ...]] = []
    execute = type(client).execute_command

    def counted(self: Any, *args: Any, **options: Any) -> Any:
        sent.append(args)
        return execute(self, *args, **options)

    monkeypatch.setattr(type(client), "execute_command", counted)
    counter_hit(key="t:one", window=60)
    counter_hit_after_add(marker="t:one-m", marker_seconds=60, key="t:one", window=60)

    assert [args[0] for args in sent] == ["EVALSHA", "EVALSHA"]


def test_concurrent_hits_each_get_their_own_count(backend: str) -> None:
    with ThreadPoolExecutor(max_workers=12) as pool:
        counts = list(pool.map(lambda _: counter_hit(key="t:race", window=60), range(240)))

    assert sorted(counts) == list(range(1, 241))


def test_on_redis_a_note_is_left_only_by_a_counted_hit_and_taken_once(backend: str) -> None:
    if backend != "redis":
        with pytest.raises(ValueError, match="Redis"):
            counter_hit_after_add(marker="t:nn:1", marker_seconds=60, key="t:nr", window=60, note=("t:notes", 7, 1))
        assert (cache.get("t:nr"), cache.get("t:nn:1")) == (None, None)  # refused before anything was done
        assert counter_notes_take(key="t:notes") == {}
        return
    first = counter_hit_after_add(marker="t:nn:1", marker_seconds=60, key="t:nr", window=60, note=("t:notes", 7, 100))
    replay = counter_hit_after_add(marker="t:nn:1", marker_seconds=60, key="t:nr", window=60,
                                   note=("t:notes", 7, 200))
    other = counter_hit_after_add(marker="t:nn:2", marker_seconds=60, key="t:nr", window=60, note=("t:notes", 8, 300))
    older = counter_hit_after_add(marker="t:nn:3", marker_seconds=60, key="t:nr", window=60, note=("t:notes", 8, 250))
    client = _client()

    assert (first, replay, other, older) == (1, None, 2, 3)
    assert client.hgetall(cache.make_key("t:notes")) == {b"7": b"100", b"8": b"300"}  # the cache's own key
    assert client.exists("t:notes") == 0
    assert counter_notes_take(key="t:notes") == {7: 100, 8: 300}  # not the replay's, not the older one
    assert counter_notes_take(key="t:notes") == {}


def test_on_redis_notes_put_back_keep_the_newer_of_each(backend: str) -> None:
    if backend != "redis":
        pytest.skip("Redis only")
    counter_hit_after_add(marker="t:pb:1", marker_seconds=60, key="t:pr", window=60, note=("t:pb", 1, 500))

    counter_notes_put_back(key="t:pb", notes={1: 400, 2: 450})

    assert counter_notes_take(key="t:pb") == {1: 500, 2: 450}
