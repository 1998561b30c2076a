"""Aftercare: the listeners in KAMENG_ORDER_AFTERCARE hear of orders delivered and refunded after commit, once per
registration, never for a transaction that rolled back, and all of them even when one fails."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings

from kameng.orders.aftercare import AftercareEvent, aftercare_run, order_aftercare
from kameng.orders.fulfilment import order_deliver_manually
from kameng.orders.models import Order
from kameng.orders.refunds import order_refund_to_wallet
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from tests.factories import SkuFactory, UserFactory, fund_wallet, manual_sku, stock_sku

pytestmark = pytest.mark.django_db

HEARD: list[tuple[list[int], str]] = []


def recording_listener(*, order_ids: list[int], event: str) -> None:
    HEARD.append((list(order_ids), event))


LISTENING = override_settings(KAMENG_ORDER_AFTERCARE=["tests.orders.test_aftercare.recording_listener"])


@pytest.fixture(autouse=True)
def _clear() -> None:
    HEARD.clear()


def _buy(capture: Callable[..., Any], *, sku_id: int, buyer_id: int, request_id: str) -> Order:
    with capture(execute=True):
        result = purchase_create(buyer_id=buyer_id, sku_id=sku_id, quantity=1, payment=PaymentChoice(PayBy.WALLET),
                                 request_id=request_id)
    return result.order


@LISTENING
def test_a_card_key_order_delivered_at_checkout_is_heard_once_after_commit(
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "20.00")
    sku = SkuFactory.create()
    stock_sku(sku, 2)

    order = _buy(django_capture_on_commit_callbacks, sku_id=sku.pk, buyer_id=buyer.pk, request_id="a-1")

    assert [([order.pk], "delivered")] == HEARD


@LISTENING
def test_manual_delivery_and_a_partial_then_full_refund_are_each_heard(
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    sku = manual_sku("58.00")
    order = _buy(django_capture_on_commit_callbacks, sku_id=sku.pk, buyer_id=buyer.pk, request_id="m-1")
    assert HEARD == []  # paid and waiting for staff: nothing settled yet

    with django_capture_on_commit_callbacks(execute=True):
        order_deliver_manually(order_id=order.pk, note="已充值到账")
    with django_capture_on_commit_callbacks(execute=True):
        order_refund_to_wallet(order_id=order.pk, amount=Decimal("8.00"), reference="r-1")
    with django_capture_on_commit_callbacks(execute=True):
        order_refund_to_wallet(order_id=order.pk, amount=Decimal("50.00"), reference="r-2")

    assert [([order.pk], "delivered"), ([order.pk], "refunded"), ([order.pk], "refunded")] == HEARD


@LISTENING
def test_nothing_is_heard_of_a_transaction_that_rolled_back(
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    def register_then_fail() -> None:
        with transaction.atomic():
            order_aftercare(order_ids=[1, 2], event=AftercareEvent.DELIVERED)
            raise RuntimeError("rolled back")

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        register_then_fail()

    assert callbacks == []
    assert HEARD == []


@override_settings(KAMENG_ORDER_AFTERCARE=[])  # the default lists the delivery e-mail (and more)
def test_without_listeners_nothing_is_registered(django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        order_aftercare(order_ids=[1], event=AftercareEvent.DELIVERED)

    assert callbacks == []


@LISTENING
def test_ids_are_sent_once_each_and_in_order(django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        order_aftercare(order_ids=[5, 3, 5, 4], event=AftercareEvent.REFUNDED)

    assert HEARD == [([3, 4, 5], "refunded")]


def test_every_listener_runs_when_one_fails_and_the_error_is_raised_at_the_end() -> None:
    def failing(*, order_ids: list[int], event: str) -> None:
        raise ValueError("listener broke")

    with pytest.raises(ValueError, match="listener broke"):
        aftercare_run(order_ids=[7], event="delivered", listeners=lambda: (failing, recording_listener))

    assert HEARD == [([7], "delivered")]
