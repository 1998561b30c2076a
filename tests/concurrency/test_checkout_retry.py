"""An idempotent checkout (request id given) whose database connection drops is retried once, on a fresh
connection, and the replay rules answer it: a new order if nothing had landed, the first order if it had."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest
from django.db import OperationalError, connection

from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.orders import checkout
from kameng.orders.models import Order
from kameng.orders.services import order_checkout
from kameng.purchases import services as purchase_services
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from tests.concurrency.threads import requires_postgresql
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    requires_postgresql()


def _drop_connection() -> None:
    """Terminate this connection's backend from another connection, as a database restart or an operator's
    pg_terminate_backend would: the next statement on it fails with OperationalError."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


def _buyer_and_sku() -> tuple[int, int]:
    buyer = UserFactory.create()
    fund_wallet(buyer, "20.00")
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 5)
    return buyer.pk, sku.pk


def _buy(buyer_id: int, sku_id: int, request_id: str | None) -> Any:
    return purchase_create(buyer_id=buyer_id, sku_id=sku_id, quantity=1, payment=PaymentChoice(PayBy.WALLET),
                           request_id=request_id)


def test_a_connection_dropped_before_commit_is_retried_once_and_the_order_is_made(
        monkeypatch: pytest.MonkeyPatch) -> None:
    buyer_id, sku_id = _buyer_and_sku()
    calls = []
    real = checkout._journals_post

    def dropping_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            _drop_connection()
        return real(*args, **kwargs)  # the first time on the terminated connection: OperationalError

    monkeypatch.setattr(checkout, "_journals_post", dropping_once)

    result = _buy(buyer_id, sku_id, "retry-1")

    assert result.created
    assert len(result.secrets) == 1
    assert len(calls) == 2
    assert Order.objects.count() == 1
    assert wallet_balance(user_id=buyer_id) == Decimal("15.00")
    assert ledger_problems() == []


def test_a_checkout_that_landed_before_the_connection_dropped_is_answered_as_its_replay(
        monkeypatch: pytest.MonkeyPatch) -> None:
    buyer_id, sku_id = _buyer_and_sku()
    landed: list[Any] = []

    def landing_then_dropping(**kwargs: Any) -> Any:
        if landed:
            return order_checkout(**kwargs)
        landed.append(order_checkout(**kwargs))
        _drop_connection()
        with connection.cursor() as cursor:  # the answer's next statement finds the connection gone
            cursor.execute("SELECT 1")
        return None

    monkeypatch.setattr(purchase_services, "order_checkout", landing_then_dropping)

    result = _buy(buyer_id, sku_id, "retry-2")

    assert not result.created
    assert result.order.pk == landed[0].order.pk
    assert result.secrets == landed[0].secrets
    assert Order.objects.count() == 1
    assert wallet_balance(user_id=buyer_id) == Decimal("15.00")


def test_without_a_request_id_a_dropped_connection_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    buyer_id, sku_id = _buyer_and_sku()
    calls = []

    real = checkout._journals_post

    def dropping(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        _drop_connection()
        return real(*args, **kwargs)

    monkeypatch.setattr(checkout, "_journals_post", dropping)

    with pytest.raises(OperationalError):
        _buy(buyer_id, sku_id, None)

    connection.close()
    assert len(calls) == 1
    assert Order.objects.count() == 0
    assert wallet_balance(user_id=buyer_id) == Decimal("20.00")
