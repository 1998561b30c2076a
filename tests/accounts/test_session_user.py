"""The session's user on every request: UsernameOrPhoneBackend.get_user() and django.contrib.auth's checks on it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from kameng.accounts.backends import UsernameOrPhoneBackend
from kameng.accounts.models import User
from kameng.accounts.selectors import phone_index_of
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

WALLET = "/api/v1/shop/wallet"  # any route behind the session: 200 when logged in, 401 when not


def _logged_in_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    assert client.get(WALLET).status_code == 200
    return client


def test_get_user_returns_the_same_user_as_the_orm() -> None:
    user = UserFactory.create(email="buyer@example.com", first_name="小明", phone="13800138000",
                              phone_index=phone_index_of("13800138000"), is_staff=True,
                              last_login=datetime(2025, 5, 1, 8, 30, tzinfo=UTC))
    expected = User.objects.get(pk=user.pk)
    with CaptureQueriesContext(connection) as queries:
        found = UsernameOrPhoneBackend().get_user(user.pk)
    assert len(queries) == 1
    assert found is not None
    assert found._state.adding is False
    assert found._state.db == "default"
    assert found.get_deferred_fields() == set()
    for field in User._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(expected, field.attname), field.name
    assert found.phone == "13800138000"  # decrypted by the field's converter, as the ORM does
    assert found.last_login == datetime(2025, 5, 1, 8, 30, tzinfo=UTC)
    assert found.get_session_auth_hash() == expected.get_session_auth_hash()


def test_get_user_of_an_unknown_or_inactive_user_is_none() -> None:
    user = UserFactory.create(is_active=False)
    with CaptureQueriesContext(connection) as queries:
        assert UsernameOrPhoneBackend().get_user(user.pk) is None
        assert UsernameOrPhoneBackend().get_user(user.pk + 1000) is None
    assert len(queries) == 2


def test_changing_the_password_logs_the_session_out() -> None:
    user = UserFactory.create()
    client = _logged_in_client(user)
    user.set_password("another-horse-7")
    user.save()
    assert client.get(WALLET).status_code == 401
    assert client.get(WALLET).status_code == 401  # the session was flushed, not just refused once


def test_deactivating_the_user_logs_the_session_out() -> None:
    user = UserFactory.create()
    client = _logged_in_client(user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert client.get(WALLET).status_code == 401


def test_deleting_the_user_logs_the_session_out() -> None:
    user = UserFactory.create()
    client = _logged_in_client(user)
    User.objects.filter(pk=user.pk).delete()
    assert client.get(WALLET).status_code == 401


def test_the_request_user_is_a_full_user() -> None:
    user = UserFactory.create(first_name="小红")
    client = _logged_in_client(user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(WALLET)
    assert response.status_code == 200
    # One user lookup per request (MariaDB quotes names with backticks, the others with double quotes).
    assert sum('"accounts_user"' in query["sql"].replace("`", '"') for query in queries) == 1
    request_user = response.wsgi_request.user
    assert isinstance(request_user, User)
    assert request_user.pk == user.pk
    assert request_user.first_name == "小红"
    assert request_user.get_deferred_fields() == set()
