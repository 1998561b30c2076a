"""Orders of products fulfilled by hand (人工发货): paid into the orders-in-progress hold, moved to staff by the
task after commit (or the sweeper), delivered with a note (hold → revenue) or failed (hold → wallet, once)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum

from kameng.core.errors import ApplicationError, ConflictError
from kameng.ledger.models import AccountKind, Entry, Journal, JournalKind, Side
from kameng.ledger.selectors import wallet_balance
from kameng.orders.events import GatewayPayment
from kameng.orders.fulfilment import order_deliver_manually, order_fail_delivery, orders_redrive_stuck
from kameng.orders.models import Order, OrderEvent, OrderStatus
from kameng.orders.services import order_checkout, order_pay_with_wallet
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from tests.factories import UserFactory, fund_wallet, manual_sku

pytestmark = pytest.mark.django_db


def _balance(kind: str) -> Decimal:
    """Credits minus debits of the platform account of `kind` (credit-normal, like every account used here)."""
    entries = Entry.objects.filter(account__kind=kind)
    credits = entries.filter(side=Side.CREDIT).aggregate(total=Sum("amount"))["total"] or Decimal("0.00")
    debits = entries.filter(side=Side.DEBIT).aggregate(total=Sum("amount"))["total"] or Decimal("0.00")
    return credits - debits


def _bought(capture: Callable[..., Any], price: str = "58.00") -> Order:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    sku = manual_sku(price)
    with capture(execute=True):
        result = purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, payment=PaymentChoice(PayBy.WALLET),
                                 request_id="manual-1")
    assert result.created
    assert result.secrets == []
    return Order.objects.get(pk=result.order.pk)


def test_a_manual_order_paid_from_the_wallet_is_held_and_handed_to_staff(
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    order = _bought(django_capture_on_commit_callbacks)

    assert order.status == OrderStatus.FULFILLING
    assert wallet_balance(user_id=order.buyer_id) == Decimal("42.00")
    assert _balance(AccountKind.ORDERS_IN_PROGRESS) == Decimal("58.00")
    assert _balance(AccountKind.PLATFORM_REVENUE) == Decimal("0.00")
    assert list(OrderEvent.objects.filter(order=order).values_list("from_status", "to_status")) == [
        ("", OrderStatus.PENDING_PAYMENT), (OrderStatus.PENDING_PAYMENT, OrderStatus.PAID),
        (OrderStatus.PAID, OrderStatus.FULFILLING)]


def test_staff_deliver_with_a_note_and_the_money_moves_to_revenue(
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    order = _bought(django_capture_on_commit_callbacks)

    order_deliver_manually(order_id=order.pk, note="已充值到账号 12345，请查收")

    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert order.delivery_note == "已充值到账号 12345，请查收"
    assert order.delivered_at is not None
    assert _balance(AccountKind.ORDERS_IN_PROGRESS) == Decimal("0.00")
    assert _balance(AccountKind.PLATFORM_REVENUE) == Decimal("58.00")
    assert wallet_balance(user_id=order.buyer_id) == Decimal("42.00")
    with pytest.raises(ConflictError):
        order_deliver_manually(order_id=order.pk, note="again")
    assert Journal.objects.filter(kind=JournalKind.ORDER_SALE, reference=order.number).count() == 1


def test_a_delivery_needs_a_note() -> None:
    with pytest.raises(ApplicationError) as error:
        order_deliver_manually(order_id=1, note="   ")
    assert error.value.code == "delivery_note_required"


def test_staff_fail_a_manual_order_and_the_wallet_gets_it_back_exactly_once(
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    order = _bought(django_capture_on_commit_callbacks)

    order_fail_delivery(order_id=order.pk, reason="账号不存在")

    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert order.refunded_amount == Decimal("58.00")
    assert wallet_balance(user_id=order.buyer_id) == Decimal("100.00")
    assert _balance(AccountKind.ORDERS_IN_PROGRESS) == Decimal("0.00")
    with pytest.raises(ConflictError):
        order_fail_delivery(order_id=order.pk, reason="账号不存在")
    with pytest.raises(ConflictError):
        order_deliver_manually(order_id=order.pk, note="too late")
    assert wallet_balance(user_id=order.buyer_id) == Decimal("100.00")
    assert Journal.objects.filter(kind=JournalKind.ORDER_REFUND, reference=order.number).count() == 1
    assert list(OrderEvent.objects.filter(order=order).order_by("id").values_list("to_status", flat=True))[-2:] == [
        OrderStatus.DELIVERY_FAILED, OrderStatus.REFUNDED]


def test_a_manual_order_paid_later_goes_to_staff_too(django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    buyer = UserFactory.create()
    sku = manual_sku("30.00")
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=2, pay_with_wallet=False).order
    assert order.status == OrderStatus.PENDING_PAYMENT
    fund_wallet(buyer, "60.00")

    with django_capture_on_commit_callbacks(execute=True):
        order_pay_with_wallet(order_id=order.pk, buyer_id=buyer.pk, gateway_payment=GatewayPayment(
            channel="测试通道", amount=Decimal("60.00"), number="P20261203000009"))

    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLING
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")
    assert _balance(AccountKind.ORDERS_IN_PROGRESS) == Decimal("60.00")


def test_the_sweeper_hands_on_a_paid_manual_order_whose_task_was_lost(
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "58.00")
    sku = manual_sku()
    with django_capture_on_commit_callbacks(execute=False):  # the task is never sent
        order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID

    assert orders_redrive_stuck(older_than_seconds=0) == 1
    assert Order.objects.get(pk=order.pk).status == OrderStatus.FULFILLING
    assert orders_redrive_stuck(older_than_seconds=0) == 0  # waiting for staff is not stuck
