from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.core.cache import cache
from django.http import HttpRequest
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse

from kameng.accounts.services import user_register

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-9"


def _login(client: Client, username: str, password: str) -> int:
    return client.post(reverse("web:login"), {"username": username, "password": password}).status_code


def test_five_wrong_passwords_lock_the_login_even_for_the_right_one(client: Client) -> None:
    user_register(login="alice_01", password=PASSWORD)
    user_register(login="bob_02", password=PASSWORD)

    assert [_login(client, "alice_01", "wrong-password") for _ in range(5)] == [400] * 5
    response = client.post(reverse("web:login"), {"username": "alice_01", "password": PASSWORD})

    assert response.status_code == 429
    assert "登录失败次数过多，请 15 分钟后再试" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert authenticate(RequestFactory().post("/"), username="ALICE_01", password=PASSWORD) is None
    assert _login(client, "bob_02", PASSWORD) == 302  # another account is not locked


def test_a_right_password_clears_the_logins_count(client: Client) -> None:
    user = user_register(login="carol_3", password=PASSWORD)

    for _ in range(4):
        assert authenticate(username="carol_3", password="wrong-password") is None
    assert authenticate(username="carol_3", password=PASSWORD) == user
    for _ in range(4):
        assert authenticate(username="carol_3", password="wrong-password") is None

    assert authenticate(username="carol_3", password=PASSWORD) == user


@override_settings(KAMENG_LOGIN_MAX_FAILURES_PER_ADDRESS=6)
def test_one_address_trying_many_logins_is_locked_out() -> None:
    user = user_register(login="dave_4", password=PASSWORD)
    attacker = RequestFactory().post("/", REMOTE_ADDR="203.0.113.9")
    office = RequestFactory().post("/", REMOTE_ADDR="198.51.100.7")

    for index in range(6):
        assert authenticate(attacker, username=f"guess_{index}", password="wrong-password") is None

    assert authenticate(attacker, username="dave_4", password=PASSWORD) is None
    assert authenticate(office, username="dave_4", password=PASSWORD) == user


def test_the_admin_login_is_throttled_too(client: Client) -> None:
    from kameng.accounts.models import User

    User.objects.create_superuser(username="root_1", password=PASSWORD)
    for _ in range(5):
        client.post(reverse("admin:login"), {"username": "root_1", "password": "wrong-password"})

    client.post(reverse("admin:login"), {"username": "root_1", "password": PASSWORD})

    assert "_auth_user_id" not in client.session


def test_the_counter_is_keyed_by_a_blind_index_not_by_the_login() -> None:
    from kameng.accounts.throttle import _login_key

    authenticate(username="13800138000", password="wrong-password")

    key = _login_key("13800138000")
    assert "13800138000" not in key
    assert cache.get(key) == 1


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
        authenticate(through_proxy("203.0.113.9"), username=f"guess_{index}", password="wrong-password")

    assert authenticate(through_proxy("203.0.113.9"), username="erin_5", password=PASSWORD) is None
    assert authenticate(through_proxy("198.51.100.7"), username="erin_5", password=PASSWORD) == user


@override_settings(KAMENG_LOGIN_MAX_FAILURES_PER_ADDRESS=3)
def test_ipv6_addresses_are_counted_per_64_block() -> None:
    user = user_register(login="fred_6", password=PASSWORD)

    for index in range(3):  # a different address of one /64 each time
        authenticate(RequestFactory().post("/", REMOTE_ADDR=f"2001:db8:1:2::{index + 1}"),
                     username=f"guess_{index}", password="wrong-password")

    same_block = RequestFactory().post("/", REMOTE_ADDR="2001:db8:1:2::ffff")
    other_block = RequestFactory().post("/", REMOTE_ADDR="2001:db8:1:3::1")
    assert authenticate(same_block, username="fred_6", password=PASSWORD) is None
    assert authenticate(other_block, username="fred_6", password=PASSWORD) == user


def test_the_address_limit_sits_far_above_the_login_limit() -> None:
    from django.conf import settings

    assert settings.KAMENG_LOGIN_MAX_FAILURES_PER_ADDRESS >= 50 * settings.KAMENG_LOGIN_MAX_FAILURES
