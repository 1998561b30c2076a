from __future__ import annotations

from decimal import Decimal
from itertools import product

import pytest

from kameng.catalog.models import Sku
from kameng.orders.events import KIND_ENTERING, fact
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.orders.state import (
    TRANSITIONS,
    IllegalTransitionError,
    can_transition,
    created_event,
    transition,
)
from tests.factories import SkuFactory, UserFactory

S = OrderStatus
ALLOWED = sorted((source, target) for source, targets in TRANSITIONS.items() for target in targets)
ILLEGAL = sorted(
    (source, target) for source, target in product(OrderStatus.values, repeat=2) if not can_transition(source, target)
)


def _order(status: str, sku: Sku | None = None, number: str = "K1") -> Order:
    sku = sku or SkuFactory.create()
    return Order.objects.create(number=number, buyer=UserFactory.create(), sku=sku, title="测试", quantity=1,
                                unit_price=Decimal("9.50"), total_amount=Decimal("9.50"), status=status)


def test_every_status_has_a_row_in_the_table_and_an_event_kind() -> None:
    assert set(TRANSITIONS) == set(OrderStatus.values)
    assert set(KIND_ENTERING) == set(OrderStatus.values)
    assert all(targets <= set(OrderStatus.values) for targets in TRANSITIONS.values())


def test_terminal_states_have_no_way_out() -> None:
    for status in (OrderStatus.COMPLETED, OrderStatus.EXPIRED, OrderStatus.CANCELLED, OrderStatus.REFUNDED):
        assert TRANSITIONS[status] == frozenset()


def test_the_table_matches_the_specified_flow() -> None:
    assert TRANSITIONS[S.PENDING_PAYMENT] == {S.PAID, S.EXPIRED, S.CANCELLED}
    assert S.DELIVERY_FAILED in TRANSITIONS[S.PAID]
    assert S.DELIVERY_FAILED in TRANSITIONS[S.FULFILLING]
    assert TRANSITIONS[S.DELIVERY_FAILED] == {S.REFUNDED}
    assert {S.DELIVERED, S.REFUNDED, S.PARTIALLY_REFUNDED} <= TRANSITIONS[S.AFTER_SALES]


@pytest.mark.django_db
@pytest.mark.parametrize(("source", "target"), ALLOWED)
def test_every_allowed_move_works_and_writes_an_event(source: str, target: str) -> None:
    order = _order(source)

    event = transition(order, target)
    order.save(update_fields=["status", "updated_at"])
    event.save()

    assert Order.objects.get(pk=order.pk).status == target
    rows = list(OrderEvent.objects.filter(order=order).values_list("from_status", "to_status", "kind", "params"))
    assert rows == [(source, target, KIND_ENTERING[target], {})]


@pytest.mark.django_db
def test_what_the_caller_says_is_kept() -> None:
    order = _order(OrderStatus.PENDING_PAYMENT)

    said = fact(OrderEventKind.PAID, channel="支付宝", amount=Decimal("9.50"))
    event = transition(order, OrderStatus.PAID, said=said)

    assert (event.from_status, event.to_status, event.kind, event.params) == (
        "pending_payment", "paid", "paid", {"channel": "支付宝", "amount": "9.50"})
    assert event.message == "已通过支付宝支付 ¥9.50"


@pytest.mark.parametrize(("source", "target"), ILLEGAL)
def test_illegal_moves_raise_and_leave_the_order_alone(source: str, target: str) -> None:
    order = Order(status=source)

    with pytest.raises(IllegalTransitionError) as error:
        transition(order, target)

    assert order.status == source
    assert error.value.code == "illegal_transition"
    assert error.value.status_code == 409
    assert error.value.extra == {"from": source, "to": target}
    assert error.value.message == (
        f"订单状态为「{OrderStatus(source).label}」，不能变为「{OrderStatus(target).label}」"
    )


@pytest.mark.parametrize(
    ("source", "target"),
    [("pending_payment", "delivered"), ("delivered", "paid"), ("expired", "paid"), ("refunded", "delivered"),
     ("cancelled", "pending_payment"), ("completed", "after_sales"), ("paid", "paid"), ("delivery_failed", "paid")],
)
def test_a_sample_of_illegal_moves_is_in_the_illegal_set(source: str, target: str) -> None:
    assert (source, target) in ILLEGAL


def test_created_event_starts_the_timeline() -> None:
    order = Order(status=OrderStatus.PENDING_PAYMENT)

    event = created_event(order)

    assert (event.from_status, event.to_status, event.kind, event.params) == ("", "pending_payment", "created", {})
    assert event.message == "订单已创建，等待支付"
