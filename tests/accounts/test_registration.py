from __future__ import annotations

import pytest
from django.contrib.auth import authenticate
from django.test import override_settings
from django.utils import translation

from kameng.accounts.models import User
from kameng.accounts.selectors import phone_index_of, user_by_login
from kameng.accounts.services import user_register
from kameng.core.errors import ApplicationError

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-9"


def test_register_by_username() -> None:
    user = user_register(login="  alice_01 ", password=PASSWORD)

    stored = User.objects.get(pk=user.pk)
    assert stored.username == "alice_01"
    assert stored.phone is None
    assert stored.phone_index is None
    assert stored.check_password(PASSWORD)


def test_register_by_phone_stores_it_encrypted_with_a_blind_index() -> None:
    user = user_register(login="13800138000", password=PASSWORD)

    stored = User.objects.get(pk=user.pk)
    assert stored.username.startswith("m-")  # the number itself is stored only encrypted
    assert "13800138000" not in stored.username
    assert stored.phone == "13800138000"
    assert stored.phone_index is not None
    assert bytes(stored.phone_index) == phone_index_of("13800138000")
    assert User.objects.count() == 1


@pytest.mark.parametrize(("login", "message"), [("alice_01", "该用户名不可用，请换一个"),
                                                ("13800138000", "该手机号不可用，请换一个")])
def test_duplicate_registration_is_refused_without_saying_the_account_exists(login: str, message: str) -> None:
    user_register(login=login, password=PASSWORD)

    with pytest.raises(ApplicationError) as error:
        user_register(login=login, password="another-pass-77")

    assert error.value.code == "login_unavailable"
    assert error.value.status_code == 400  # as any other form error: not a 409 "conflict with an account"
    assert error.value.message == message
    assert User.objects.count() == 1


@pytest.mark.parametrize("login", ["admin", "Admin", "root", "kefu", "support"])
def test_a_reserved_username_gets_the_same_answer_as_a_taken_one(login: str) -> None:
    user_register(login="taken_1", password=PASSWORD)
    with pytest.raises(ApplicationError) as taken:
        user_register(login="taken_1", password="another-pass-77")

    with pytest.raises(ApplicationError) as reserved:
        user_register(login=login, password="another-pass-77")

    assert (reserved.value.code, reserved.value.status_code, reserved.value.message) == (
        taken.value.code, taken.value.status_code, taken.value.message)
    assert not User.objects.filter(username__iexact=login).exists()


def test_registration_is_limited_per_address_per_hour() -> None:
    for index in range(5):
        user_register(login=f"bulk_{index}", password=PASSWORD, address="203.0.113.9")

    with pytest.raises(ApplicationError) as error:
        user_register(login="bulk_5", password=PASSWORD, address="203.0.113.9")

    assert error.value.code == "too_many_registrations"
    assert error.value.status_code == 429
    assert error.value.message == "当前网络注册过于频繁，请 60 分钟后再试"
    assert set(error.value.extra) == {"retry_after"}
    assert 3590 <= error.value.extra["retry_after"] <= 3600  # the hour's window, less the seconds this test took
    assert User.objects.count() == 5
    user_register(login="elsewhere_1", password=PASSWORD, address="198.51.100.7")
    assert User.objects.count() == 6


@override_settings(KAMENG_REGISTRATIONS_PER_ADDRESS_PER_HOUR=2)
def test_the_registration_limit_is_configurable_and_counts_ipv6_per_64_block() -> None:
    user_register(login="six_1", password=PASSWORD, address="2001:db8:7:8::1")
    user_register(login="six_2", password=PASSWORD, address="2001:db8:7:8::2")

    with pytest.raises(ApplicationError) as error:
        user_register(login="six_3", password=PASSWORD, address="2001:db8:7:8::3")

    assert error.value.code == "too_many_registrations"
    assert sorted(User.objects.values_list("username", flat=True)) == ["six_1", "six_2"]
    user_register(login="six_4", password=PASSWORD, address="2001:db8:7:9::1")


def test_refused_registrations_do_not_use_up_the_addresss_accounts() -> None:
    user_register(login="first_1", password=PASSWORD)
    for _ in range(4):
        with pytest.raises(ApplicationError):
            user_register(login="first_1", password=PASSWORD, address="203.0.113.9")
        with pytest.raises(ApplicationError):
            user_register(login="weak_1", password="short", address="203.0.113.9")

    for index in range(5):
        user_register(login=f"later_{index}", password=PASSWORD, address="203.0.113.9")
    assert User.objects.count() == 6


@override_settings(KAMENG_REGISTRATION_REFUSALS_PER_ADDRESS_PER_HOUR=3)
def test_probing_for_taken_names_is_slowed() -> None:
    user_register(login="known_1", password=PASSWORD)
    user_register(login="13700137000", password=PASSWORD)
    for login in ("known_1", "13700137000", "admin"):
        with pytest.raises(ApplicationError) as error:
            user_register(login=login, password="another-pass-77", address="203.0.113.9")
        assert error.value.code == "login_unavailable"

    with pytest.raises(ApplicationError) as error:
        user_register(login="free_name_1", password=PASSWORD, address="203.0.113.9")

    assert error.value.code == "too_many_registrations"
    assert error.value.status_code == 429
    assert User.objects.count() == 2


@pytest.mark.parametrize("login", ["1380013800", "138001380001", "12800138000", "10000000000"])
def test_invalid_phone_is_refused(login: str) -> None:
    with pytest.raises(ApplicationError) as error:
        user_register(login=login, password=PASSWORD)

    assert error.value.code == "invalid_phone"
    assert error.value.message == "手机号格式不正确（11 位中国大陆手机号）"
    assert error.value.status_code == 400
    assert User.objects.count() == 0


@pytest.mark.parametrize("login", ["ab", "1abc", "_abc", "al ice", "张三丰", "a" * 31, "bob@example", ""])
def test_invalid_username_is_refused(login: str) -> None:
    with pytest.raises(ApplicationError) as error:
        user_register(login=login, password=PASSWORD)

    assert error.value.code == "invalid_username"
    assert error.value.message == "用户名需以字母开头，3–30 位字母、数字或下划线"
    assert User.objects.count() == 0


@pytest.mark.parametrize(
    ("password", "message"),
    [("short1a", "密码至少需要 8 个字符。"), ("password123", "这个密码太常见，很容易被猜到，请换一个。"),
     ("9384726150", "密码不能全是数字。"), ("carol_9x", "密码与用户名、手机号等个人信息太相似。")],
)
def test_weak_password_is_refused_in_the_shops_words(password: str, message: str) -> None:
    with pytest.raises(ApplicationError) as error:
        user_register(login="carol_99", password=password)

    assert error.value.code == "weak_password"
    assert error.value.message == message
    assert User.objects.count() == 0


@pytest.mark.parametrize(
    ("password", "message"),
    [("short1a", "The password needs at least 8 characters."),
     ("password123", "This password is too common and easy to guess. Please choose another one."),
     ("9384726150", "The password cannot be only digits.")],
)
def test_weak_password_messages_in_english(password: str, message: str) -> None:
    with translation.override("en"), pytest.raises(ApplicationError) as error:
        user_register(login="carol_99", password=password)

    assert error.value.message == message


def test_login_by_username() -> None:
    user = user_register(login="dave_42", password=PASSWORD)

    assert authenticate(username="dave_42", password=PASSWORD) == user
    assert authenticate(username=" dave_42 ", password=PASSWORD) == user
    assert authenticate(username="dave_42", password="wrong-password-1") is None


def test_login_by_phone() -> None:
    user = user_register(login="13700137000", password=PASSWORD)

    assert authenticate(username="13700137000", password=PASSWORD) == user
    assert authenticate(username="13700137000", password="wrong-password-1") is None


def test_login_by_phone_bound_to_a_username_account() -> None:
    user = user_register(login="erin_7", password=PASSWORD)
    user.phone = "13600136000"
    user.phone_index = phone_index_of("13600136000")
    user.save()

    assert authenticate(username="13600136000", password=PASSWORD) == user
    assert user_by_login("13600136000") == user


def test_login_unknown_or_inactive_fails() -> None:
    user = user_register(login="frank_1", password=PASSWORD)
    user.is_active = False
    user.save()

    assert authenticate(username="nobody_here", password=PASSWORD) is None
    assert authenticate(username="13500135000", password=PASSWORD) is None
    assert authenticate(username="frank_1", password=PASSWORD) is None
    assert authenticate(username="", password=PASSWORD) is None


def test_no_column_holds_the_phone_number_in_plain_text() -> None:
    from django.db import connection

    user = user_register(login="13800138001", password=PASSWORD)

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_user WHERE id = %s", [user.pk])
        row = cursor.fetchone()
    assert not any("13800138001" in (bytes(value).decode("latin-1") if isinstance(value, (bytes, memoryview))
                                     else str(value)) for value in row)


def test_usernames_are_case_insensitive() -> None:
    user = user_register(login="Alice_01", password=PASSWORD)
    assert User.objects.get(pk=user.pk).username == "alice_01"

    with pytest.raises(ApplicationError) as error:
        user_register(login="ALICE_01", password="another-pass-77")
    assert error.value.code == "login_unavailable"

    assert authenticate(username="ALICE_01", password=PASSWORD) == user
    assert authenticate(username="alice_01", password=PASSWORD) == user


def test_a_staff_created_mixed_case_username_blocks_its_case_variants() -> None:
    User.objects.create(username="Grace")

    with pytest.raises(ApplicationError) as error:
        user_register(login="grace", password=PASSWORD)
    assert error.value.code == "login_unavailable"


def test_login_by_case_variant_is_refused_when_two_accounts_differ_only_in_case() -> None:
    from django.db import connection

    if connection.vendor == "mysql":
        pytest.skip("MariaDB's default collation already makes usernames unique regardless of case")
    first = User.objects.create(username="Heidi")
    first.set_password(PASSWORD)
    first.save()
    second = User.objects.create(username="HEIDI")
    second.set_password(PASSWORD)
    second.save()

    assert authenticate(username="Heidi", password=PASSWORD) == first
    assert authenticate(username="heidi", password=PASSWORD) is None


@pytest.mark.parametrize(
    ("login", "password", "fragment"),
    [("ivan_8", "        ", "密码不能只有空格"),
     ("bob04", "bob04bob04", "密码不能包含用户名或手机号"),
     ("judy_5", "x-JUDY_5-x", "密码不能包含用户名或手机号"),
     ("13800138002", "pw13800138002", "密码不能包含用户名或手机号"),
     ("karl_3", "karl_3karl_", "太相似")],
)
def test_blank_and_username_like_passwords_are_refused(login: str, password: str, fragment: str) -> None:
    with pytest.raises(ApplicationError) as error:
        user_register(login=login, password=password)

    assert error.value.code == "weak_password"
    assert fragment in error.value.message
    assert "。；" not in error.value.message
    assert "。 " not in error.value.message  # one sentence after another, no space between Chinese sentences
    assert User.objects.count() == 0
