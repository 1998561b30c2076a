from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.core.cache import cache
from django.http import HttpRequest
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse

from kameng.accounts import throttle
from kameng.accounts.models import User
from kameng.accounts.selectors import phone_index_of
from kameng.accounts.services import user_register
from kameng.core import counters

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-9"
ATTACKER = "203.0.113.9"
OWNER = "198.51.100.7"


def _login(client: Client, username: str, password: str) -> int:
    return client.post(reverse("web:login"), {"username": username, "password": password}).status_code


def _from(address: str) -> HttpRequest:
    return RequestFactory().post("/", REMOTE_ADDR=address)


def _cache_keys() -> list[str]:
    backend = getattr(cache, "_cache", None)
    if backend is not None and hasattr(backend, "get_client"):  # Redis
        client = backend.get_client()
        return [key.decode() for key in client.scan_iter(match=f"{cache.key_prefix}:*", count=1000)]
    return [str(key) for key in backend]  # type: ignore[union-attr]  # locmem: its dict of keys


class _Clock:
    """Stands in for the time module inside kameng.accounts.throttle."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(throttle, "time", fake)
    monkeypatch.setattr(counters, "time", fake)  # windows' ends too: else a slow second reads 899
    return fake


def test_five_wrong_passwords_lock_the_login_even_for_the_right_one(client: Client, clock: _Clock) -> None:
    user_register(login="alice_01", password=PASSWORD)
    user_register(login="bob_02", password=PASSWORD)

    assert [_login(client, "alice_01", "wrong-password") for _ in range(5)] == [400] * 5
    response = client.post(reverse("web:login"), {"username": "alice_01", "password": PASSWORD})

    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    assert "登录失败次数过多，请 15 分钟后再试" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert authenticate(RequestFactory().post("/"), username="ALICE_01", password=PASSWORD) is None
    assert _login(client, "bob_02", PASSWORD) == 302  # another account is not locked


def test_the_lock_message_is_translated(client: Client, clock: _Clock) -> None:
    user_register(login="alice_02", password=PASSWORD)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    for _ in range(5):
        _login(client, "alice_02", "wrong-password")

    response = client.post(reverse("web:login"), {"username": "alice_02", "password": PASSWORD})

    assert response.status_code == 429
    assert "Too many failed attempts: try again in 15 minutes" in response.content.decode()
    assert "登录失败次数过多" not in response.content.decode()


def test_a_right_password_clears_the_logins_count() -> None:
    user = user_register(login="carol_3", password=PASSWORD)

    for _ in range(4):
        assert authenticate(username="carol_3", password="wrong-password") is None
    assert authenticate(username="carol_3", password=PASSWORD) == user
    for _ in range(4):
        assert authenticate(username="carol_3", password="wrong-password") is None

    assert authenticate(username="carol_3", password=PASSWORD) == user


def test_a_guesser_locks_out_only_their_own_address() -> None:
    user = user_register(login="owner_1", password=PASSWORD)

    for _ in range(5):
        assert authenticate(_from(ATTACKER), username="owner_1", password="wrong-password") is None

    assert authenticate(_from(ATTACKER), username="owner_1", password=PASSWORD) is None
    assert authenticate(_from(OWNER), username="owner_1", password=PASSWORD) == user


def test_a_storefront_guesser_does_not_lock_staff_out_of_the_admin() -> None:
    User.objects.create_superuser(username="admin", password=PASSWORD)
    attacker = Client(REMOTE_ADDR=ATTACKER)
    staff = Client(REMOTE_ADDR=OWNER)

    assert [_login(attacker, "admin", "wrong-password") for _ in range(6)] == [400] * 5 + [429]
    response = staff.post(reverse("admin:login"), {"username": "admin", "password": PASSWORD,
                                                   "next": reverse("admin:index")})

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    assert staff.session["_auth_user_id"] == str(User.objects.get(username="admin").pk)


def test_the_admin_login_is_throttled_too_and_says_so(client: Client) -> None:
    User.objects.create_superuser(username="root_1", password=PASSWORD)
    for _ in range(5):
        client.post(reverse("admin:login"), {"username": "root_1", "password": "wrong-password"})

    response = client.post(reverse("admin:login"), {"username": "root_1", "password": PASSWORD})

    assert response.status_code == 200  # Django's admin login answers its form errors with 200
    assert "登录失败次数过多，请 15 分钟后再试" in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("typed", ["13800138000", "phone_user", "PHONE_USER", " Phone_User "])
def test_every_identifier_of_an_account_counts_under_one_key(typed: str) -> None:
    user = user_register(login="phone_user", password=PASSWORD)
    user.phone = "13800138000"
    user.phone_index = phone_index_of("13800138000")
    user.save()

    for login in ("13800138000", "phone_user", "PHONE_USER", "13800138000", "Phone_User"):
        assert authenticate(_from(ATTACKER), username=login, password="wrong-password") is None

    assert authenticate(_from(ATTACKER), username=typed, password=PASSWORD) is None
    assert authenticate(_from(OWNER), username=typed, password=PASSWORD) == user


def test_a_phone_account_and_its_generated_username_count_as_one() -> None:
    user = user_register(login="13900139000", password=PASSWORD)
    assert user.username.startswith("m-")

    for login in ("13900139000", user.username, user.username.upper(), "13900139000", user.username):
        assert authenticate(_from(ATTACKER), username=login, password="wrong-password") is None

    assert authenticate(_from(ATTACKER), username="13900139000", password=PASSWORD) is None
    assert authenticate(_from(OWNER), username="13900139000", password=PASSWORD) == user


@override_settings(KAMENG_LOGIN_ACCOUNT_BACKOFF_AFTER=4, KAMENG_LOGIN_ACCOUNT_BACKOFF_MAX_SECONDS=300)
def test_guesses_from_many_addresses_make_the_account_wait_longer_and_longer(clock: _Clock) -> None:
    user = user_register(login="spread_1", password=PASSWORD)
    account = throttle.login_account(login="spread_1", user=user)
    addresses = iter(f"203.0.113.{index}" for index in range(1, 200))

    for _ in range(3):  # one wrong password from each of three addresses: below the account's threshold
        assert authenticate(_from(next(addresses)), username="spread_1", password="wrong-password") is None
    assert throttle.login_lock(account=account, address=next(addresses)) is None

    waits = []
    for _ in range(11):
        assert authenticate(_from(next(addresses)), username="spread_1", password="wrong-password") is None
        lock = throttle.login_lock(account=account, address=next(addresses))
        assert lock is not None
        assert lock.reason == "account"
        waits.append(lock.seconds)
        # Refused while it waits: no password is checked, nothing more is counted, the wait does not grow.
        assert authenticate(_from(next(addresses)), username="spread_1", password=PASSWORD) is None
        clock.now += lock.seconds
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]

    assert authenticate(_from(next(addresses)), username="spread_1", password=PASSWORD) == user  # after the wait


@override_settings(KAMENG_LOGIN_ACCOUNT_BACKOFF_AFTER=2)
def test_the_account_wait_spares_addresses_the_owner_logged_in_from(clock: _Clock) -> None:
    User.objects.create_superuser(username="boss_1", password=PASSWORD)
    assert authenticate(_from(OWNER), username="boss_1", password=PASSWORD) is not None

    for index in range(8):
        authenticate(_from(f"203.0.113.{index + 1}"), username="boss_1", password="wrong-password")
        clock.now += 400  # each wait over before the next guess

    for index in range(8):  # a fresh guesser waits ...
        authenticate(_from(f"192.0.2.{index + 1}"), username="boss_1", password="wrong-password")
    assert authenticate(_from("192.0.2.200"), username="boss_1", password=PASSWORD) is None
    staff = Client(REMOTE_ADDR=OWNER)  # ... staff at their usual address log in at once
    response = staff.post(reverse("admin:login"), {"username": "boss_1", "password": PASSWORD})
    assert response.status_code == 302
    assert "_auth_user_id" in staff.session


@override_settings(KAMENG_LOGIN_ACCOUNT_BACKOFF_AFTER=2)
def test_the_storefront_says_when_the_account_waits(client: Client, clock: _Clock) -> None:
    user_register(login="spread_2", password=PASSWORD)
    for index in range(3):
        clock.now += 1  # the one-second wait after the second failure is over by the third
        assert _login(Client(REMOTE_ADDR=f"203.0.113.{index + 1}"), "spread_2", "wrong-password") == 400

    response = client.post(reverse("web:login"), {"username": "spread_2", "password": PASSWORD})

    assert response.status_code == 429
    assert response["Retry-After"] == "2"
    assert "该账号近期在多处登录失败，为保护账号安全，请 2 秒后再试" in response.content.decode()
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    english = client.post(reverse("web:login"), {"username": "spread_2", "password": PASSWORD}).content.decode()
    assert "This account has had many failed logins from several places recently. To keep it safe, try again in " \
           "2 seconds" in english


def test_counters_are_keyed_by_blind_indexes_not_by_logins_or_addresses() -> None:
    user = user_register(login="13800138000", password=PASSWORD)

    authenticate(_from(ATTACKER), username="13800138000", password="wrong-password")

    keys = _cache_keys()
    assert len([key for key in keys if "login-fail:" in key and not key.endswith(":ends")]) == 3
    assert not [key for key in keys if "13800138000" in key or user.username in key]
    assert not [key for key in keys if ATTACKER in key and "login-fail:ip:" not in key]


@override_settings(KAMENG_LOGIN_MAX_FAILURES_PER_ADDRESS=6)
def test_one_address_trying_many_logins_is_locked_out() -> None:
    user = user_register(login="dave_4", password=PASSWORD)
    attacker = _from(ATTACKER)
    office = _from(OWNER)

    for index in range(6):
        assert authenticate(attacker, username=f"guess_{index}", password="wrong-password") is None

    assert authenticate(attacker, username="dave_4", password=PASSWORD) is None
    assert authenticate(office, username="dave_4", password=PASSWORD) == user


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [("203.0.113.9", "", "203.0.113.9"),
     ("203.0.113.9", "10.0.0.1", "203.0.113.9"),  # not through our proxy: the header proves nothing
     ("127.0.0.1", "", "127.0.0.1"),
     ("127.0.0.1", "198.51.100.7", "198.51.100.7"),
     ("127.0.0.1", "1.2.3.4, 198.51.100.7", "198.51.100.7"),  # the client wrote 1.2.3.4 itself
     ("::1", "198.51.100.7, 127.0.0.1", "198.51.100.7")],
)
def test_client_address_believes_only_trusted_proxies(remote: str, forwarded: str, expected: str) -> None:
    from kameng.core.http import client_address

    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)

    assert client_address(request) == expected


@override_settings(KAMENG_LOGIN_MAX_FAILURES_PER_ADDRESS=3)
def test_behind_the_local_proxy_each_client_is_counted_apart() -> None:
    user = user_register(login="erin_5", password=PASSWORD)

    def through_proxy(address: str) -> HttpRequest:
        return RequestFactory().post("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=address)

    for index in range(3):
        authenticate(through_proxy(ATTACKER), username=f"guess_{index}", password="wrong-password")

    assert authenticate(through_proxy(ATTACKER), username="erin_5", password=PASSWORD) is None
    assert authenticate(through_proxy(OWNER), username="erin_5", password=PASSWORD) == user


@override_settings(KAMENG_LOGIN_MAX_FAILURES_PER_ADDRESS=3)
def test_ipv6_addresses_are_counted_per_64_block() -> None:
    user = user_register(login="fred_6", password=PASSWORD)

    for index in range(3):  # a different address of one /64 each time
        authenticate(_from(f"2001:db8:1:2::{index + 1}"), username=f"guess_{index}", password="wrong-password")

    assert authenticate(_from("2001:db8:1:2::ffff"), username="fred_6", password=PASSWORD) is None
    assert authenticate(_from("2001:db8:1:3::1"), username="fred_6", password=PASSWORD) == user


def test_one_account_guessed_from_one_64_block_is_locked_for_the_whole_block() -> None:
    user = user_register(login="gina_7", password=PASSWORD)

    for index in range(5):
        authenticate(_from(f"2001:db8:5:6::{index + 1}"), username="gina_7", password="wrong-password")

    assert authenticate(_from("2001:db8:5:6::abcd"), username="gina_7", password=PASSWORD) is None
    assert authenticate(_from("2001:db8:5:7::1"), username="gina_7", password=PASSWORD) == user


def test_the_address_limit_sits_far_above_the_login_limit(settings: Any) -> None:
    assert settings.KAMENG_LOGIN_MAX_FAILURES_PER_ADDRESS >= 50 * settings.KAMENG_LOGIN_MAX_FAILURES


def test_a_try_refused_by_a_lock_reached_on_its_way_says_locked(client: Client,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from kameng.accounts import forms

    user_register(login="hana_8", password=PASSWORD)
    for _ in range(5):
        _login(client, "hana_8", "wrong-password")
    monkeypatch.setattr(forms, "login_lock", lambda **kwargs: None)  # the form's own look came before the lock

    response = client.post(reverse("web:login"), {"username": "hana_8", "password": PASSWORD})

    assert response.status_code == 429
    assert "登录失败次数过多，请 15 分钟后再试" in response.content.decode()


def test_a_refused_try_counts_nothing() -> None:
    user = user_register(login="ivan_9", password=PASSWORD)
    account = throttle.login_account(login="ivan_9", user=user)
    for _ in range(5):
        authenticate(_from(ATTACKER), username="ivan_9", password="wrong-password")
    counts = {key: cache.get(key) for key in (throttle._address_key(ATTACKER), throttle._account_key(account))}

    for _ in range(3):
        assert authenticate(_from(ATTACKER), username="ivan_9", password="wrong-password") is None

    assert {key: cache.get(key) for key in counts} == counts == {throttle._address_key(ATTACKER): 5,
                                                                 throttle._account_key(account): 5}
