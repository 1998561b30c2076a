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

# The order state machine as the SPEC states it, written out here rather than read from kameng.orders.state, so a
# change to the table in the code has to be made here too, on purpose.
STATUSES = [
    "pending_payment", "paid", "under_review", "fulfilling", "delivered", "completed", "expired", "cancelled",
    "delivery_failed", "refunded", "partially_refunded", "after_sales",
]
ALLOWED = sorted([
    ("pending_payment", "paid"), ("pending_payment", "expired"), ("pending_payment", "cancelled"),
    ("paid", "under_review"), ("paid", "fulfilling"), ("paid", "delivered"), ("paid", "delivery_failed"),
    ("under_review", "fulfilling"), ("under_review", "delivered"), ("under_review", "delivery_failed"),
    ("under_review", "refunded"),
    ("fulfilling", "delivered"), ("fulfilling", "delivery_failed"),
    ("delivered", "completed"), ("delivered", "after_sales"), ("delivered", "partially_refunded"),
    ("delivered", "refunded"),
    ("after_sales", "delivered"), ("after_sales", "refunded"), ("after_sales", "partially_refunded"),
    ("delivery_failed", "refunded"),
    # A second partial refund stays partially refunded.
    ("partially_refunded", "partially_refunded"), ("partially_refunded", "refunded"),
    ("partially_refunded", "completed"),
])
# Every other pair of statuses, staying put included (only a partial refund may repeat itself).
ILLEGAL = sorted(set(product(STATUSES, repeat=2)) - set(ALLOWED))
TERMINAL = ["completed", "expired", "cancelled", "refunded"]
# The event a move writes when its caller says nothing more specific: kind, by the status entered.
ENTERING = {
    "pending_payment": "created", "paid": "paid", "under_review": "under_review", "fulfilling": "fulfilling",
    "delivered": "delivered", "completed": "completed", "expired": "expired", "cancelled": "cancelled",
    "delivery_failed": "delivery_failed", "refunded": "refunded", "partially_refunded": "partially_refunded",
    "after_sales": "after_sales",
}


def _order(status: str, sku: Sku | None = None, number: str = "K1") -> Order:
    sku = sku or SkuFactory.create()
    return Order.objects.create(number=number, buyer=UserFactory.create(), sku=sku, title="测试", quantity=1,
                                unit_price=Decimal("9.50"), total_amount=Decimal("9.50"), status=status)


def test_the_statuses_are_the_specified_ones_each_with_an_event_kind() -> None:
    assert sorted(OrderStatus.values) == sorted(STATUSES)
    assert KIND_ENTERING == ENTERING


def test_the_table_is_exactly_the_specified_flow() -> None:
    table = sorted((source, target) for source, targets in TRANSITIONS.items() for target in targets)

    assert sorted(TRANSITIONS) == sorted(STATUSES)
    assert table == ALLOWED


@pytest.mark.parametrize("status", TERMINAL)
def test_terminal_states_have_no_way_out(status: str) -> None:
    assert TRANSITIONS[status] == frozenset()
    assert [target for target in STATUSES if can_transition(status, target)] == []


@pytest.mark.django_db
@pytest.mark.parametrize(("source", "target"), ALLOWED)
def test_every_allowed_move_works_and_writes_an_event(source: str, target: str) -> None:
    order = _order(source)

    event = transition(order, target)
    order.save(update_fields=["status", "updated_at"])
    event.save()

    assert Order.objects.get(pk=order.pk).status == target
    rows = list(OrderEvent.objects.filter(order=order).values_list("from_status", "to_status", "kind", "params"))
    assert rows == [(source, target, ENTERING[target], {})]


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


def test_created_event_starts_the_timeline() -> None:
    order = Order(status=OrderStatus.PENDING_PAYMENT)

    event = created_event(order)

    assert (event.from_status, event.to_status, event.kind, event.params) == ("", "pending_payment", "created", {})
    assert event.message == "订单已创建，等待支付"
