"""Wrong passwords sent all at once: no more are checked than the login throttle allows (kameng.accounts.throttle).

Each try is counted before its password is checked, so the tries already in flight when a limit is reached are
refused, not checked. Run on the test suite's cache (Redis when it is running) and on the local-memory cache; the
password check is slowed down so the tries really overlap.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.core.cache import cache
from django.test import RequestFactory, override_settings

from kameng.accounts.models import User
from kameng.accounts.services import user_register
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-9"
ATTACKER = "203.0.113.9"
TRIES = 24
CHECK_SECONDS = 0.05  # a real PBKDF2 check takes tens of milliseconds; the tests' MD5 hasher takes none


class _Checks:
    """Counts password checks (and the dummy hash of an unknown login), each made slow."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def made(self) -> None:
        with self._lock:
            self.count += 1
        time.sleep(CHECK_SECONDS)


@pytest.fixture(params=["default", "locmem"])
def cache_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    requires_postgresql()
    if request.param == "default" and not hasattr(getattr(cache, "_cache", None), "get_client"):
        pytest.skip("Redis is not running: the default cache is the local-memory one")
    if request.param == "locmem":
        with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                                   "LOCATION": "login-throttle-race"}}):
            cache.clear()
            yield request.param
            cache.clear()
    else:
        yield request.param


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> _Checks:
    counter = _Checks()
    check_password = User.check_password
    set_password = User.set_password

    def counted_check(user: User, raw_password: str | None) -> bool:
        counter.made()
        return check_password(user, raw_password)

    def counted_set(user: User, raw_password: str | None) -> None:
        counter.made()
        set_password(user, raw_password)

    monkeypatch.setattr(User, "check_password", counted_check)
    monkeypatch.setattr(User, "set_password", counted_set)
    return counter


def _attempt(address: str, username: str, password: str = "wrong-password") -> Any:
    return authenticate(RequestFactory().post("/", REMOTE_ADDR=address), username=username, password=password)


def test_one_account_from_one_address_gets_exactly_the_limit_checked(cache_backend: str, checks: _Checks) -> None:
    user = user_register(login="race_alice", password=PASSWORD)
    checks.count = 0

    outcomes = run_in_threads(TRIES, lambda index: _attempt(ATTACKER, "race_alice"))

    assert unexpected(outcomes) == []
    assert [outcome.value for outcome in outcomes] == [None] * TRIES
    assert checks.count == 5  # KAMENG_LOGIN_MAX_FAILURES
    assert _attempt(ATTACKER, "race_alice", PASSWORD) is None  # locked there, even for the right password
    assert checks.count == 5
    assert _attempt("198.51.100.7", "race_alice", PASSWORD) == user  # and nowhere else


@override_settings(KAMENG_LOGIN_ACCOUNT_BACKOFF_AFTER=6)
def test_one_account_from_many_addresses_gets_the_backoff_threshold_checked(cache_backend: str,
                                                                           checks: _Checks) -> None:
    user_register(login="race_bob", password=PASSWORD)
    checks.count = 0

    outcomes = run_in_threads(TRIES, lambda index: _attempt(f"203.0.113.{index + 1}", "race_bob"))

    assert unexpected(outcomes) == []
    # The sixth failure starts the first wait; the tries that came with it wait too.
    assert checks.count == 6


@override_settings(KAMENG_LOGIN_MAX_FAILURES_PER_ADDRESS=7)
def test_one_address_trying_unknown_logins_gets_the_address_limit_checked(cache_backend: str,
                                                                         checks: _Checks) -> None:
    outcomes = run_in_threads(TRIES, lambda index: _attempt(ATTACKER, f"nobody_{index}"))

    assert unexpected(outcomes) == []
    assert checks.count == 7


def test_right_passwords_at_once_give_their_tries_back(cache_backend: str, checks: _Checks) -> None:
    user = user_register(login="race_carol", password=PASSWORD)

    outcomes = run_in_threads(4, lambda index: _attempt(ATTACKER, "race_carol", PASSWORD))
    for _ in range(4):
        assert _attempt(ATTACKER, "race_carol") is None

    assert unexpected(outcomes) == []
    assert [outcome.value for outcome in outcomes] == [user] * 4
    assert _attempt(ATTACKER, "race_carol", PASSWORD) == user  # the four right ones took nothing from the five
