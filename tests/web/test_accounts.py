from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()


def test_register_with_username_logs_in_and_redirects_home(client: Client) -> None:
    response = client.post(reverse("web:register"), {"login": "alice_01", "password": "correct-horse-9",
                                                     "password_again": "correct-horse-9"})

    assert response.status_code == 302
    assert response["Location"] == reverse("web:home")
    user = User.objects.get(username="alice_01")
    assert client.session["_auth_user_id"] == str(user.pk)


def test_register_with_phone_then_log_in_by_phone(client: Client) -> None:
    response = client.post(reverse("web:register"), {"login": "13800138000", "password": "correct-horse-9",
                                                     "password_again": "correct-horse-9"})
    assert response.status_code == 302
    user = User.objects.get()
    assert user.phone == "13800138000"
    assert user.username.startswith("m-")
    client.post(reverse("web:logout"))
    assert "_auth_user_id" not in client.session

    response = client.post(reverse("web:login"), {"username": "13800138000", "password": "correct-horse-9"})

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_log_in_by_phone_finds_a_user_whose_username_differs() -> None:
    from kameng.accounts.selectors import phone_index_of

    user = UserFactory.create(username="carol")
    user.phone = "13912345678"
    user.phone_index = phone_index_of("13912345678")
    user.save()
    client = Client()

    response = client.post(reverse("web:login"), {"username": "13912345678", "password": "correct-horse-9"})

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_login_with_wrong_password_shows_error_and_stays_logged_out(client: Client) -> None:
    UserFactory.create(username="dave")

    response = client.post(reverse("web:login"), {"username": "dave", "password": "wrong-password"})

    assert response.status_code == 400
    assert "用户名/手机号或密码不正确" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_register_with_a_taken_username_is_400_says_not_available_and_keeps_the_form(client: Client) -> None:
    UserFactory.create(username="erin_x")

    response = client.post(reverse("web:register"), {"login": "erin_x", "password": "correct-horse-9",
                                                     "password_again": "correct-horse-9"})

    assert response.status_code == 400
    body = response.content.decode()
    assert "该用户名不可用，请换一个" in body
    assert "已注册" not in body
    assert 'value="erin_x"' in body
    assert User.objects.filter(username="erin_x").count() == 1


def test_taken_and_reserved_usernames_get_the_same_page(client: Client) -> None:
    UserFactory.create(username="erin_y")
    form = {"password": "correct-horse-9", "password_again": "correct-horse-9"}

    taken = client.post(reverse("web:register"), {"login": "erin_y", **form})
    reserved = client.post(reverse("web:register"), {"login": "admin", **form})

    def page(body: bytes) -> str:  # without the per-response CSRF tokens
        return re.sub(r'(csrfmiddlewaretoken" value="|X-CSRFToken": ")[^"]+', "", body.decode())

    assert (taken.status_code, reserved.status_code) == (400, 400)
    assert page(taken.content).replace("erin_y", "admin") == page(reserved.content)
    assert User.objects.count() == 1


def test_registration_from_one_address_is_throttled_with_a_clear_429() -> None:
    client = Client(REMOTE_ADDR="203.0.113.9")
    for index in range(5):
        response = client.post(reverse("web:register"), {"login": f"bulk_{index}", "password": "correct-horse-9",
                                                         "password_again": "correct-horse-9"})
        assert response.status_code == 302
        client.post(reverse("web:logout"))

    response = client.post(reverse("web:register"), {"login": "bulk_5", "password": "correct-horse-9",
                                                     "password_again": "correct-horse-9"})

    assert response.status_code == 429
    assert 3590 <= int(response["Retry-After"]) <= 3600  # the hour's window, less the seconds this test took
    assert "当前网络注册过于频繁，请 60 分钟后再试" in response.content.decode()
    assert 'value="bulk_5"' in response.content.decode()
    assert User.objects.count() == 5
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    english = client.post(reverse("web:register"), {"login": "bulk_5", "password": "correct-horse-9",
                                                    "password_again": "correct-horse-9"})
    assert "Too many sign-ups from your network: try again in 60 minutes" in english.content.decode()
    other = Client(REMOTE_ADDR="198.51.100.7").post(
        reverse("web:register"), {"login": "bulk_6", "password": "correct-horse-9",
                                  "password_again": "correct-horse-9"})
    assert other.status_code == 302


@pytest.mark.parametrize(
    ("language", "expected", "stock"),
    [("zh-hans", "密码至少需要 8 个字符", "确保该变量"),
     ("en", "The password needs at least 8 characters", "Ensure this value")],
)
def test_a_short_password_is_said_plainly(client: Client, language: str, expected: str, stock: str) -> None:
    client.post(reverse("set_language"), {"language": language, "next": "/"})

    response = client.post(reverse("web:register"), {"login": "frank_z", "password": "short1",
                                                     "password_again": "short1"})

    body = response.content.decode()
    assert response.status_code == 400
    assert expected in body
    assert stock not in body
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("language", "expected"),
    [("zh-hans", ["请输入用户名或手机号", "请输入密码", "请再次输入密码"]),
     ("en", ["Enter your username or phone number", "Enter your password", "Enter the password again"])],
)
def test_empty_register_fields_say_what_is_missing(client: Client, language: str, expected: list[str]) -> None:
    client.post(reverse("set_language"), {"language": language, "next": "/"})

    body = client.post(reverse("web:register"), {"login": "", "password": "", "password_again": ""}).content.decode()

    assert [text for text in expected if text in body] == expected
    assert "这个字段是必填项" not in body
    assert "This field is required" not in body


@pytest.mark.parametrize(
    ("language", "expected"),
    [("zh-hans", "密码不能全是数字。"), ("en", "The password cannot be only digits.")],
)
def test_a_numeric_password_is_said_plainly(client: Client, language: str, expected: str) -> None:
    client.post(reverse("set_language"), {"language": language, "next": "/"})

    response = client.post(reverse("web:register"), {"login": "gina_z", "password": "9384726150",
                                                     "password_again": "9384726150"})

    assert response.status_code == 400
    assert expected in response.content.decode()


def test_empty_login_fields_say_what_is_missing(client: Client) -> None:
    body = client.post(reverse("web:login"), {"username": "", "password": ""}).content.decode()

    assert "请输入用户名或手机号" in body
    assert "请输入密码" in body
    assert "这个字段是必填项" not in body


def test_register_with_bad_phone_is_400(client: Client) -> None:
    response = client.post(reverse("web:register"), {"login": "12345", "password": "correct-horse-9",
                                                     "password_again": "correct-horse-9"})

    assert response.status_code == 400
    assert "手机号格式不正确" in response.content.decode()
    assert not User.objects.exists()


def test_logout_by_get_does_not_log_out(client: Client) -> None:
    client.force_login(UserFactory.create())

    response = client.get(reverse("web:logout"))

    assert response.status_code == 302  # home, still logged in: only the POST of the nav's button logs out
    assert response["Location"] == reverse("web:home")
    assert "_auth_user_id" in client.session


def test_login_page_has_stable_test_ids(client: Client) -> None:
    body = client.get(reverse("web:login")).content.decode()

    assert 'data-testid="login-username"' in body
    assert 'data-testid="login-password"' in body
    assert 'data-testid="login-submit"' in body


def test_logging_in_and_out_say_so(client: Client) -> None:
    user = UserFactory.create(username="erin")
    user.set_password("correct-horse-9")
    user.save()

    home = client.post(reverse("web:login"), {"username": "erin", "password": "correct-horse-9"}, follow=True)
    assert "登录成功" in home.content.decode()

    bye = client.post(reverse("web:logout"), follow=True)
    assert "已退出登录" in bye.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    ("login", "password", "field_error"),
    [("erin_z", "correct-horse-9", "该用户名不可用，请换一个"),
     ("12345", "correct-horse-9", "手机号格式不正确（11 位中国大陆手机号）"),
     ("hank_z", "9384726150", "密码不能全是数字。")],
)
def test_register_refusals_are_said_under_their_field(client: Client, login: str, password: str,
                                                      field_error: str) -> None:
    UserFactory.create(username="erin_z")

    response = client.post(reverse("web:register"), {"login": login, "password": password,
                                                     "password_again": password})

    body = response.content.decode()
    assert response.status_code == 400
    assert f'<small class="field-error">{field_error}</small>' in body
    assert 'data-testid="error-message"' not in body
    assert User.objects.count() == 1
