"""Earning points on completed orders and taking them back on refunds: by the order's state, each change a new
journal, the listener safe to run twice, the buyer's points never below zero."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from kameng.ledger.models import JournalKind
from kameng.orders.fulfilment import order_deliver_manually
from kameng.orders.models import Order
from kameng.orders.refunds import order_refund_to_wallet
from kameng.points.models import OrderPoints
from kameng.points.services import order_points_settle, points_aftercare
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from tests.factories import SkuFactory, UserFactory, fund_wallet, manual_sku, stock_sku
from tests.points.support import LISTENER, points_balance, points_journals

pytestmark = pytest.mark.django_db
EARN, REVERSE = JournalKind.POINTS_EARN, JournalKind.POINTS_EARN_REVERSAL


@pytest.fixture(autouse=True)
def _listening(settings: Settings) -> None:
    settings.KAMENG_ORDER_AFTERCARE = [LISTENER]


def _buy(capture: Callable[..., Any], *, buyer_id: int, sku_id: int, quantity: int, request_id: str,
         points: int = 0) -> Order:
    with capture(execute=True):
        return purchase_create(buyer_id=buyer_id, sku_id=sku_id, quantity=quantity, request_id=request_id,
                               payment=PaymentChoice(PayBy.WALLET), points=points).order


def _refund(capture: Callable[..., Any], order: Order, amount: str, reference: str) -> None:
    with capture(execute=True):
        order_refund_to_wallet(order_id=order.pk, amount=Decimal(amount), reference=reference)


def test_a_delivered_order_earns_a_point_per_whole_yuan_paid(
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 5)

    order = _buy(django_capture_on_commit_callbacks, buyer_id=buyer.pk, sku_id=sku.pk, quantity=3, request_id="e-1")

    assert order.total_amount == Decimal("28.50")
    assert points_balance(user_id=buyer.pk) == 28  # floor(28.50 × 1)
    assert points_journals() == [(EARN, f"order:{order.number}:1", 28)]
    record = OrderPoints.objects.get(order=order)
    assert (record.earned, record.returned, record.shortfall, record.journals) == (28, 0, 0, 1)


def test_the_listener_run_again_changes_nothing(django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 5)
    order = _buy(django_capture_on_commit_callbacks, buyer_id=buyer.pk, sku_id=sku.pk, quantity=3, request_id="e-2")

    points_aftercare(order_ids=[order.pk], event="delivered")
    points_aftercare(order_ids=[order.pk], event="refunded")  # a stray event: the state still says delivered
    order_points_settle(order_id=order.pk)

    assert points_balance(user_id=buyer.pk) == 28
    assert points_journals() == [(EARN, f"order:{order.number}:1", 28)]


def test_partial_then_full_refunds_take_back_exactly_what_the_kept_cash_no_longer_earns(
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 5)
    order = _buy(django_capture_on_commit_callbacks, buyer_id=buyer.pk, sku_id=sku.pk, quantity=3, request_id="e-3")

    _refund(django_capture_on_commit_callbacks, order, "8.60", "r-1")  # kept 19.90 → 19 points
    assert points_balance(user_id=buyer.pk) == 19
    _refund(django_capture_on_commit_callbacks, order, "0.40", "r-2")  # kept 19.50 → still 19: no journal
    assert points_balance(user_id=buyer.pk) == 19
    _refund(django_capture_on_commit_callbacks, order, "19.50", "r-3")  # refunded in full → 0
    points_aftercare(order_ids=[order.pk], event="refunded")  # and once more, for nothing

    assert points_balance(user_id=buyer.pk) == 0
    assert points_journals() == [(EARN, f"order:{order.number}:1", 28), (REVERSE, f"order:{order.number}:2", 9),
                                 (REVERSE, f"order:{order.number}:3", 19)]
    record = OrderPoints.objects.get(order=order)
    assert (record.earned, record.shortfall, record.journals) == (0, 0, 3)


def test_points_already_spent_are_not_taken_below_zero_and_the_shortfall_is_recorded(
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "200.00")
    sku = SkuFactory.create(price=Decimal("50.00"))
    stock_sku(sku, 5)
    first = _buy(django_capture_on_commit_callbacks, buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id="g-1")
    # All 50 points go on a second ¥50 order (¥0.50 off), which earns floor(49.50) = 49.
    second = _buy(django_capture_on_commit_callbacks, buyer_id=buyer.pk, sku_id=sku.pk, quantity=1,
                  request_id="g-2", points=50)
    assert (second.points_redeemed, second.total_amount) == (50, Decimal("49.50"))
    # The 49 go on a third (¥0.49 off), which earns floor(49.51) = 49.
    _buy(django_capture_on_commit_callbacks, buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id="g-3",
         points=49)
    assert points_balance(user_id=buyer.pk) == 49

    _refund(django_capture_on_commit_callbacks, first, "50.00", "r-g1")  # 50 to take back, 49 there

    assert points_balance(user_id=buyer.pk) == 0
    record = OrderPoints.objects.get(order=first)
    assert (record.earned, record.shortfall) == (0, 1)
    assert points_journals(REVERSE) == [(REVERSE, f"order:{first.number}:2", 49)]
    order_points_settle(order_id=first.pk)  # run again: the shortfall is not chased
    assert points_balance(user_id=buyer.pk) == 0
    assert OrderPoints.objects.get(order=first).shortfall == 1


def test_the_rate_is_a_setting(settings: Settings, django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    settings.KAMENG_POINTS_PER_YUAN = 2
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 5)

    _buy(django_capture_on_commit_callbacks, buyer_id=buyer.pk, sku_id=sku.pk, quantity=3, request_id="rate")

    assert points_balance(user_id=buyer.pk) == 57


def test_a_manual_order_earns_once_delivered_not_when_paid(
        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    sku = manual_sku("58.00")
    order = _buy(django_capture_on_commit_callbacks, buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id="m-1")
    order_points_settle(order_id=order.pk)  # paid, waiting for staff: nothing yet
    assert points_balance(user_id=buyer.pk) == 0

    with django_capture_on_commit_callbacks(execute=True):
        order_deliver_manually(order_id=order.pk, note="已充值")

    assert points_balance(user_id=buyer.pk) == 58
