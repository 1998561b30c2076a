"""Routing (竞价): the cheapest eligible offer wins, rating breaks ties, staff pin and exclude, never at a loss, no
offer without stock or past its daily cap, and the decision is on the order's timeline for staff."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.utils import translation

from kameng.orders.models import OrderEvent, OrderEventKind, OrderStatus
from kameng.suppliers.models import (
    AttemptStatus,
    OfferStockSource,
    RoutingRuleKind,
    SkuRoutingRule,
    SupplierStatus,
    TopupAttempt,
)
from kameng.suppliers.routing import REASON_CHEAPEST, REASON_PINNED, REASON_RATING, offers_eligible, order_route
from tests.suppliers.topup_support import Upstreams, fulfil, topup_order_paid, topup_sku, upstreams

__all__ = ["upstreams"]

pytestmark = pytest.mark.django_db


def test_the_cheapest_offer_wins(upstreams: Upstreams) -> None:
    sku = topup_sku("50.00")
    upstreams.offer("甲", sku, "49.20")
    cheap, _ = upstreams.offer("乙", sku, "48.80")
    upstreams.offer("丙", sku, "49.00")

    route = order_route(order=topup_order_paid(sku))

    assert route is not None
    assert route.offer == cheap
    assert route.reason == REASON_CHEAPEST


def test_a_higher_rating_breaks_a_price_tie(upstreams: Upstreams) -> None:
    sku = topup_sku("50.00")
    upstreams.offer("三星", sku, "48.00", rating="3.00")
    five, _ = upstreams.offer("五星", sku, "48.00", rating="5.00")
    upstreams.offer("四星", sku, "48.00", rating="4.00")

    order = topup_order_paid(sku)
    route = order_route(order=order)

    assert route is not None
    assert route.offer == five
    assert route.reason == REASON_RATING
    assert [offer.supplier.name for offer in offers_eligible(order=order)] == ["五星", "四星", "三星"]


def test_equal_price_and_rating_go_to_the_older_offer(upstreams: Upstreams) -> None:
    sku = topup_sku("50.00")
    first, _ = upstreams.offer("先", sku, "48.00")
    upstreams.offer("后", sku, "48.00")

    route = order_route(order=topup_order_paid(sku))

    assert route is not None
    assert (route.offer, route.reason) == (first, REASON_CHEAPEST)


def test_a_pinned_supplier_comes_first_even_when_dearer(upstreams: Upstreams) -> None:
    sku = topup_sku("50.00")
    upstreams.offer("便宜", sku, "47.00")
    pinned, _ = upstreams.offer("指定", sku, "49.50")
    SkuRoutingRule.objects.create(sku=sku, supplier=pinned.supplier, kind=RoutingRuleKind.PIN)

    route = order_route(order=topup_order_paid(sku))

    assert route is not None
    assert (route.offer, route.reason) == (pinned, REASON_PINNED)


def test_an_excluded_supplier_is_never_routed(upstreams: Upstreams) -> None:
    sku = topup_sku("50.00")
    excluded, _ = upstreams.offer("排除", sku, "45.00")
    other, _ = upstreams.offer("其他", sku, "49.00")
    SkuRoutingRule.objects.create(sku=sku, supplier=excluded.supplier, kind=RoutingRuleKind.EXCLUDE)

    order = topup_order_paid(sku)

    assert offers_eligible(order=order) == [other]


def test_an_offer_above_the_selling_price_is_not_routed_unless_staff_allow_a_loss(upstreams: Upstreams) -> None:
    sku = topup_sku("50.00")
    dear, _ = upstreams.offer("亏本", sku, "50.01")
    order = topup_order_paid(sku)

    assert order_route(order=order) is None

    dear.is_loss_allowed = True
    dear.save()
    route = order_route(order=order)
    assert route is not None
    assert route.offer == dear


def test_an_offer_at_exactly_the_selling_price_is_routed(upstreams: Upstreams) -> None:
    sku = topup_sku("50.00")
    even, _ = upstreams.offer("持平", sku, "50.00")

    route = order_route(order=topup_order_paid(sku))

    assert route is not None
    assert route.offer == even


def test_offers_without_enough_stock_are_skipped(upstreams: Upstreams) -> None:
    sku = topup_sku("50.00")
    upstreams.offer("缺货", sku, "40.00", upstream_stock=1)
    upstreams.offer("无货", sku, "41.00", upstream_stock=0)
    unknown, _ = upstreams.offer("不报库存", sku, "48.00", upstream_stock=None)
    enough, _ = upstreams.offer("够", sku, "47.00", upstream_stock=2)

    order = topup_order_paid(sku, quantity=2)

    assert offers_eligible(order=order) == [enough, unknown]


def test_an_offer_at_its_daily_cap_is_skipped(upstreams: Upstreams,
                                              django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    sku = topup_sku("50.00")
    capped, _upstream = upstreams.offer("限量", sku, "45.00", max_per_day=2)
    other, _ = upstreams.offer("不限", sku, "49.00")
    for _ in range(2):
        fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)
    assert TopupAttempt.objects.filter(offer=capped).count() == 2

    assert offers_eligible(order=topup_order_paid(sku)) == [other]

    # A failed attempt does not use the day's room.
    TopupAttempt.objects.filter(offer=capped).update(status=AttemptStatus.FAILED)
    assert offers_eligible(order=topup_order_paid(sku))[0] == capped


def test_inactive_offers_unapproved_suppliers_card_key_and_manual_offers_are_not_routed(upstreams: Upstreams) -> None:
    sku = topup_sku("50.00")
    upstreams.offer("停用", sku, "40.00", is_active=False)
    suspended, _ = upstreams.offer("暂停", sku, "41.00")
    suspended.supplier.status = SupplierStatus.SUSPENDED
    suspended.supplier.save()
    upstreams.offer("卡密", sku, "42.00", stock_source=OfferStockSource.CARD_KEYS)
    manual, _ = upstreams.offer("手工", sku, "43.00")
    manual.supplier.connector_kind = "manual"
    manual.supplier.save()

    assert offers_eligible(order=topup_order_paid(sku)) == []


def test_the_route_and_its_reason_are_on_the_timeline(upstreams: Upstreams,
                                                      django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    sku = topup_sku("50.00")
    upstreams.offer("乙", sku, "48.80")

    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)

    routed = OrderEvent.objects.get(order=order, kind=OrderEventKind.ROUTED)
    assert routed.params == {"supplier": "乙", "price": "48.80", "reason": "最低价"}
    assert routed.message == "已分配供货商 乙（供货价 ¥48.80，最低价）"
    assert order.status == OrderStatus.FULFILLING
    attempt = TopupAttempt.objects.get(order=order)
    assert (attempt.sequence, attempt.customer_order_no, attempt.cost) == (1, f"{order.number}-1",
                                                                          Decimal("48.80"))


def test_the_cost_is_the_unit_price_times_the_quantity(upstreams: Upstreams,
                                                       django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("乙", sku, "48.85")

    order = fulfil(topup_order_paid(sku, quantity=3), django_capture_on_commit_callbacks)

    assert TopupAttempt.objects.get(order=order).cost == Decimal("146.55")
    assert upstream.requests[0].max_price == Decimal("48.85")
    assert upstream.requests[0].quantity == 3


def test_the_route_reads_in_english_too(upstreams: Upstreams,
                                        django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    sku = topup_sku("50.00")
    upstreams.offer("乙", sku, "48.80")
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)

    with translation.override("en"):
        text = OrderEvent.objects.get(order=order, kind=OrderEventKind.ROUTED).message

    assert text == "Routed to supplier 乙 (cost ¥48.80, lowest price)"
