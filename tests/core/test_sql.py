"""The set-based INSERT and UPDATE of model rows in plain SQL (kameng.core.sql): every kind of value written as the
ORM would write it, ids set back by a unique key, a row that does not exist refused."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from kameng.core.sql import rows_insert, rows_update
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.suppliers.models import AttemptStatus, TopupAttempt
from tests.factories import SkuFactory, SupplierOfferFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _order(number: str) -> Order:
    sku = SkuFactory.create()
    return Order.objects.create(number=number, buyer=UserFactory.create(), sku=sku, title="话费 50 元", quantity=2,
                                unit_price=Decimal("25.00"), total_amount=Decimal("50.00"),
                                status=OrderStatus.FULFILLING, price_lines=[{"code": "vip", "amount": "-1.00"}])


def test_rows_are_inserted_as_the_orm_would_write_them_and_get_their_ids() -> None:
    order = _order("K1")
    offer = SupplierOfferFactory.create(sku=order.sku)
    due = timezone.now() + timedelta(seconds=30)
    attempts = [TopupAttempt(order=order, offer=offer, supplier=offer.supplier, sequence=sequence,
                             customer_order_no=f"K1-{sequence}", cost=Decimal("48.10"), next_check_at=due)
                for sequence in (1, 2)]
    rows_insert(TopupAttempt, attempts, key="customer_order_no")
    stored = {attempt.customer_order_no: attempt for attempt in TopupAttempt.objects.all()}
    assert {attempt.customer_order_no: attempt.pk for attempt in attempts} == {
        number: attempt.pk for number, attempt in stored.items()}
    first = stored["K1-1"]
    assert (first.cost, first.status, first.next_check_at, first.submitted_at, first.submit_count,
            first.is_submit_outstanding) == (Decimal("48.10"), AttemptStatus.RECORDED, due, None, 0, False)
    assert first.created_at is not None
    assert first.updated_at is not None

    events = [OrderEvent(order=order, kind=OrderEventKind.ROUTED, params={"supplier": "甲 \"供货\"", "price": "48.10"}),
              OrderEvent(order=order, from_status=OrderStatus.PAID, to_status=OrderStatus.FULFILLING,
                         kind=OrderEventKind.TOPUP_SUBMITTING, params={})]
    rows_insert(OrderEvent, events)
    assert list(OrderEvent.objects.filter(order=order).order_by("pk").values_list(
        "kind", "from_status", "to_status", "params")) == [
        (OrderEventKind.ROUTED, "", "", {"supplier": "甲 \"供货\"", "price": "48.10"}),
        (OrderEventKind.TOPUP_SUBMITTING, OrderStatus.PAID, OrderStatus.FULFILLING, {})]


def test_rows_are_updated_in_one_statement_and_a_missing_row_is_refused() -> None:
    first, second = _order("K2"), _order("K3")
    delivered = timezone.now()
    first.status, first.delivered_at, first.price_lines = OrderStatus.DELIVERED, delivered, []
    second.status, second.refunded_amount = OrderStatus.DELIVERY_FAILED, Decimal("50.00")
    rows_update(Order, [first, second], ["status", "delivered_at", "refunded_amount", "price_lines"])
    assert list(Order.objects.filter(pk__in=[first.pk, second.pk]).order_by("pk").values_list(
        "status", "delivered_at", "refunded_amount", "price_lines")) == [
        (OrderStatus.DELIVERED, delivered, Decimal("0.00"), []),
        (OrderStatus.DELIVERY_FAILED, None, Decimal("50.00"), [{"code": "vip", "amount": "-1.00"}])]
    gone = Order(pk=second.pk + 1000, status=OrderStatus.DELIVERED)
    with pytest.raises(RuntimeError, match="1 of 2 rows updated"):
        rows_update(Order, [first, gone], ["status"])
