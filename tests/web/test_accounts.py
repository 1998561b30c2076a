from __future__ import annotations

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


def test_register_twice_with_same_login_is_409_and_keeps_the_form(client: Client) -> None:
    UserFactory.create(username="erin_x")

    response = client.post(reverse("web:register"), {"login": "erin_x", "password": "correct-horse-9",
                                                     "password_again": "correct-horse-9"})

    assert response.status_code == 409
    body = response.content.decode()
    assert "该用户名或手机号已注册" in body
    assert 'value="erin_x"' in body
    assert User.objects.filter(username="erin_x").count() == 1


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
