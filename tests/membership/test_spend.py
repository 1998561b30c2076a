"""Spend counting (the aftercare listener): levels change exactly at thresholds, refunds lower the spend and the
level, and hearing of an order twice counts it once."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from kameng.accounts.models import User
from kameng.catalog.models import Sku
from kameng.membership.models import CountedOrder, MemberLevel, Membership
from kameng.membership.pricing import buyer_level_rank, membership_caches_clear, price_tables
from kameng.membership.services import member_levels_recompute, membership_orders_count
from kameng.orders.models import Order, OrderStatus
from kameng.orders.refunds import order_refund_to_wallet
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku
from tests.membership.support import levels_install

pytestmark = pytest.mark.django_db
Capture = Callable[..., Any]


@pytest.fixture(autouse=True)
def _levels() -> None:
    levels_install()


def _buy(capture: Capture, buyer: User, sku: Sku, quantity: int, request_id: str) -> Order:
    with capture(execute=True):  # the aftercare task runs after commit (eager in tests)
        result = purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=quantity,
                                 payment=PaymentChoice(PayBy.WALLET), request_id=request_id,
                                 sales_channel="storefront", client_ip="127.0.0.1")
    assert result.order.status == OrderStatus.DELIVERED
    return result.order


def _membership(buyer: User) -> tuple[Decimal, int]:
    row = Membership.objects.get(user=buyer)
    return row.spend, row.level_rank


def test_spend_one_fen_below_a_threshold_keeps_the_level_and_reaching_it_upgrades_at_once(
        django_capture_on_commit_callbacks: Capture) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "1000.00")
    sku = SkuFactory.create(price=Decimal("99.99"))
    cent = SkuFactory.create(price=Decimal("0.01"))
    stock_sku(sku, 5)
    stock_sku(cent, 5)

    _buy(django_capture_on_commit_callbacks, buyer, sku, 1, "r1")
    assert _membership(buyer) == (Decimal("99.99"), 0)
    assert buyer_level_rank(buyer.pk) == 0

    _buy(django_capture_on_commit_callbacks, buyer, cent, 1, "r2")  # exactly 100.00: VIP1
    assert _membership(buyer) == (Decimal("100.00"), 1)
    assert buyer_level_rank(buyer.pk) == 1  # the price rule sees the new level at once

    order = _buy(django_capture_on_commit_callbacks, buyer, sku, 1, "r3")  # VIP1 pays 99 折 from now on
    assert (order.unit_price, order.price_lines) == (
        Decimal("98.99"), [{"code": "member", "label": "会员价", "amount": "-1.00"}])
    assert _membership(buyer) == (Decimal("198.99"), 1)


def test_refunds_lower_the_spend_and_the_level_drops_below_its_threshold(
        django_capture_on_commit_callbacks: Capture) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "1000.00")
    sku = SkuFactory.create(price=Decimal("250.00"))
    stock_sku(sku, 5)
    first = _buy(django_capture_on_commit_callbacks, buyer, sku, 1, "a")
    _buy(django_capture_on_commit_callbacks, buyer, sku, 1, "b")  # 250 + 250 × 0.99 = 497.50
    _buy(django_capture_on_commit_callbacks, buyer, sku, 1, "c")  # + 247.50 = 745.00: VIP2
    assert _membership(buyer) == (Decimal("745.00"), 2)

    with django_capture_on_commit_callbacks(execute=True):
        order_refund_to_wallet(order_id=first.pk, amount=Decimal("100.00"), reference="part")
    assert _membership(buyer) == (Decimal("645.00"), 2)
    assert CountedOrder.objects.get(order=first).amount == Decimal("150.00")

    with django_capture_on_commit_callbacks(execute=True):
        order_refund_to_wallet(order_id=first.pk, amount=Decimal("150.00"), reference="rest")
    assert _membership(buyer) == (Decimal("495.00"), 1)  # below 500: back to VIP1
    assert CountedOrder.objects.get(order=first).amount == Decimal("0.00")
    assert buyer_level_rank(buyer.pk) == 1


def test_hearing_of_an_order_twice_counts_it_once(django_capture_on_commit_callbacks: Capture) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    sku = SkuFactory.create(price=Decimal("30.00"))
    stock_sku(sku, 3)
    order = _buy(django_capture_on_commit_callbacks, buyer, sku, 2, "once")

    membership_orders_count(order_ids=[order.pk], event="delivered")
    membership_orders_count(order_ids=[order.pk, order.pk], event="refunded")

    assert _membership(buyer) == (Decimal("60.00"), 0)
    assert CountedOrder.objects.count() == 1


def test_orders_the_buyer_does_not_keep_count_nothing() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("30.00"))
    stock_sku(sku, 3)
    unpaid = purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, payment=PaymentChoice(PayBy.RESERVE),
                             request_id="unpaid", sales_channel="storefront", client_ip="127.0.0.1").order

    membership_orders_count(order_ids=[unpaid.pk, 987654], event="delivered")

    assert Membership.objects.count() == 0
    assert CountedOrder.objects.count() == 0


def test_new_thresholds_move_members_at_once() -> None:
    buyer = UserFactory.create()
    Membership.objects.create(user=buyer, spend=Decimal("300.00"), level_rank=1)
    MemberLevel.objects.filter(rank=2).update(threshold=Decimal("300.00"))

    assert member_levels_recompute() == 1

    assert _membership(buyer) == (Decimal("300.00"), 2)
    assert buyer_level_rank(buyer.pk) == 2


def test_a_level_is_one_plain_query_per_process_and_then_held(
        django_capture_on_commit_callbacks: Capture, django_assert_num_queries: Capture) -> None:
    buyer, newcomer = UserFactory.create(), UserFactory.create()
    fund_wallet(buyer, "1000.00")
    sku = SkuFactory.create(price=Decimal("100.00"))
    stock_sku(sku, 1)
    _buy(django_capture_on_commit_callbacks, buyer, sku, 1, "r1")
    membership_caches_clear()  # another process, which has seen neither buyer
    price_tables()  # the tables are loaded: what is left is the buyers' own

    with django_assert_num_queries(1):
        assert buyer_level_rank(buyer.pk) == 1
    with django_assert_num_queries(1):
        assert buyer_level_rank(newcomer.pk) == 0  # no Membership row: rank 0
    with django_assert_num_queries(0):
        assert (buyer_level_rank(buyer.pk), buyer_level_rank(newcomer.pk)) == (1, 0)
