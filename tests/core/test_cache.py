"""kameng.core.cache: Django's Redis cache, reusing one redis.Redis client per connection pool."""

from __future__ import annotations

import importlib.metadata
import os
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
from pytest_django.fixtures import Settings

from kameng.core.cache import RedisCache

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_reachable() -> bool:
    parsed = urlparse(REDIS_URL)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379), timeout=0.5):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(
    not _redis_reachable() and os.environ.get("CI", "").lower() != "true", reason="Redis is not running")


@pytest.fixture
def cache() -> Iterator[RedisCache]:
    backend = RedisCache(REDIS_URL, {"KEY_PREFIX": f"kameng-test-cache-{os.getpid()}"})
    yield backend
    client = backend._cache.get_client(write=True)
    keys = list(client.scan_iter(match=f"{backend.key_prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


def test_get_set_delete_round_trip(cache: RedisCache) -> None:
    assert cache.get("answer") is None
    cache.set("answer", {"value": 42, "text": "卡密"}, timeout=60)
    assert cache.get("answer") == {"value": 42, "text": "卡密"}
    assert cache.add("answer", "other") is False
    assert cache.delete("answer") is True
    assert cache.get("answer", "gone") == "gone"
    cache.set_many({"a": 1, "b": 2})
    assert cache.get_many(["a", "b", "c"]) == {"a": 1, "b": 2}
    assert cache.incr("a", 5) == 6


def test_get_client_returns_the_same_client_every_time(cache: RedisCache) -> None:
    first = cache._cache.get_client("some-key")
    assert cache._cache.get_client("other-key") is first
    assert cache._cache.get_client(write=True) is first  # one server: reads and writes share its pool
    assert cache.get_backend_timeout(None) is None  # the rest is Django's backend, unchanged


def test_a_new_connection_names_its_client_without_asking_the_package_metadata(
        cache: RedisCache, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request thread opens its own cache client: its connection's CLIENT SETINFO is worked out once per
    process, not by a walk over the installed packages' metadata per connection."""

    def metadata_walk() -> str:
        raise AssertionError("redis-py's version looked up again for a new connection")

    monkeypatch.setattr("redis.utils.get_lib_version", metadata_walk)
    fresh = RedisCache(REDIS_URL, {"KEY_PREFIX": cache.key_prefix})
    fresh.set("named", 1, timeout=60)

    client = fresh._cache.get_client(write=True)
    connection = client.connection_pool.get_connection()
    try:
        assert connection.driver_info is not None
        assert (connection.driver_info.formatted_name, connection.driver_info.lib_version) == (
            "redis-py", importlib.metadata.version("redis"))
    finally:
        client.connection_pool.release(connection)


def test_threads_share_the_client(cache: RedisCache) -> None:
    first = cache._cache.get_client()
    clients: list[object] = []
    start = threading.Barrier(8)

    def grab() -> None:
        start.wait()
        clients.append(cache._cache.get_client())

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(clients) == 8
    assert all(client is first for client in clients)
    cache.set("shared", "ok")
    assert cache.get("shared") == "ok"


def test_settings_use_it_when_redis_is_configured(settings: Settings) -> None:
    if not getattr(settings, "REDIS_URL", ""):
        pytest.skip("the suite runs without Redis here")
    assert settings.CACHES["default"]["BACKEND"] == "kameng.core.cache.RedisCache"
