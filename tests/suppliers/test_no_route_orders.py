"""Direct top-up orders that no offer could take (no attempt at all) are visible to staff: a page beside the
attempts list, and the reason, offer by offer, on the order's staff timeline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from kameng.orders.models import OrderEvent, OrderEventKind, OrderStatus
from kameng.orders.selectors import order_timeline
from kameng.suppliers.models import RoutingRuleKind, SkuRoutingRule, SupplierStatus, TopupAttempt
from kameng.suppliers.selectors import topup_orders_without_attempts
from tests.suppliers.topup_support import SUCCEEDED, Upstreams, fulfil, topup_order_paid, topup_sku, upstreams

__all__ = ["upstreams"]

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]


def test_an_order_no_offer_can_take_says_why_on_the_staff_timeline_and_is_listed(
        admin_client: Client, upstreams: Upstreams, django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku("50.00")
    upstreams.offer("亏本商", sku, "50.01")
    excluded, _ = upstreams.offer("被排除", sku, "45.00")
    SkuRoutingRule.objects.create(sku=sku, supplier=excluded.supplier, kind=RoutingRuleKind.EXCLUDE)
    upstreams.offer("暂停商", sku, "44.00", upstream_stock=0)
    type(excluded.supplier).objects.filter(name="暂停商").update(status=SupplierStatus.SUSPENDED)
    upstreams.offer("缺货商", sku, "46.00", upstream_stock=0)
    served = topup_sku("30.00")
    upstreams.offer("正常", served, "29.00")[1].script(SUCCEEDED)

    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)
    delivered = fulfil(topup_order_paid(served), django_capture_on_commit_callbacks)
    waiting = topup_order_paid(sku)  # paid, its fulfilment not run yet

    assert order.status == OrderStatus.REFUNDED
    assert TopupAttempt.objects.filter(order=order).count() == 0
    why = OrderEvent.objects.get(order=order, kind=OrderEventKind.TOPUP_NO_ROUTE)
    assert why.params == {"detail": "暂停商：供货商未通过审核或已暂停；被排除：已被工作人员排除；缺货商：上游库存不足；"
                                     "亏本商：亏本（供货价高于订单单价 ¥50.00）"}
    assert OrderEventKind.TOPUP_NO_ROUTE not in set(order_timeline(order_id=order.pk).values_list("kind", flat=True))
    assert list(topup_orders_without_attempts()) == [waiting, order]
    assert delivered.status == OrderStatus.DELIVERED

    listing = admin_client.get(reverse("admin:suppliers_topupattempt_changelist")).content.decode()
    url = reverse("admin:suppliers_topupattempt_no_route_orders")
    assert url in listing
    page = admin_client.get(url).content.decode()
    assert order.number in page
    assert waiting.number in page
    assert delivered.number not in page
    assert "亏本商：亏本（供货价高于订单单价 ¥50.00）" in page
    assert "尚未路由（等待发货任务）" in page


def test_a_sku_without_any_offer_says_so(upstreams: Upstreams, django_capture_on_commit_callbacks: Capture) -> None:
    order = fulfil(topup_order_paid(topup_sku("50.00")), django_capture_on_commit_callbacks)

    assert OrderEvent.objects.get(order=order, kind=OrderEventKind.TOPUP_NO_ROUTE).params == {
        "detail": "该商品没有任何供货商报价"}
