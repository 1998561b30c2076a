"""The database out of reach (a restart, a failover, backends terminated) answers 503 with Retry-After, not 500:
a page on the storefront and in the admin, JSON in the API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import OperationalError, connection
from django.test import Client, RequestFactory

from kameng.web.errors import server_error
from tests.factories import SkuFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def database_gone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every new cursor fails as when the server closed the connection."""
    SkuFactory.create()  # the page and the API then have something to read

    def refuse(*_args: object, **_kwargs: object) -> object:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(connection, "create_cursor", refuse)
    yield
    monkeypatch.undo()  # before the ledger check that follows every test reads the database


@pytest.mark.usefixtures("database_gone")
def test_storefront_page_answers_503_with_retry_after() -> None:
    response = Client(raise_request_exception=False).get("/")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response["Content-Type"].startswith("text/html")
    assert "服务暂时不可用" in response.content.decode()


@pytest.mark.usefixtures("database_gone")
def test_api_answers_503_json_with_retry_after() -> None:
    response = Client(raise_request_exception=False).get("/api/v1/shop/products")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json() == {"code": "service_unavailable", "message": "服务暂时不可用，请稍后重试"}


def test_api_checkout_answers_503_when_the_database_breaks_mid_request(monkeypatch: pytest.MonkeyPatch) -> None:
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory.create())
    sku = SkuFactory.create()

    def refuse(*_args: object, **_kwargs: object) -> object:
        raise OperationalError("terminating connection due to administrator command")

    with monkeypatch.context() as patch:
        patch.setattr(connection, "create_cursor", refuse)
        response = client.post("/api/v1/shop/orders", data={"sku_id": sku.pk, "quantity": 1, "request_id": "r-503"},
                               content_type="application/json")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["code"] == "service_unavailable"


def test_an_error_outside_a_view_is_answered_503_too() -> None:
    request = RequestFactory().get("/orders/")
    try:
        raise OperationalError("connection refused")
    except OperationalError:
        response = server_error(request)

    assert response.status_code == 503
    assert response["Retry-After"] == "5"


def test_other_errors_outside_a_view_stay_500() -> None:
    request = RequestFactory().get("/orders/")
    try:
        raise ValueError("a bug")
    except ValueError:
        response = server_error(request)

    assert response.status_code == 500
