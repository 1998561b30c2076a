"""A direct top-up order's page: the step bar 已支付 → 正在向运营商发送请求 → 充值中 → 已到账 driven by the order's
status and events, updated in place by its progress block's poll; failure and refund said plainly; the target only
ever masked; the staff-only events (route, failover) kept from the buyer."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from kameng.accounts.models import User
from kameng.orders.events import fact
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.orders.services import order_checkout
from tests.factories import UserFactory, fund_wallet
from tests.topup_support import game_topup_sku, phone_topup_sku

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}
K = OrderEventKind


def _paid_phone_order(client: Client, phone: str = "13812341234") -> Order:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    client.force_login(buyer)
    # Fulfilment runs after commit, which a test's transaction never reaches: the steps are written here.
    return order_checkout(buyer_id=buyer.pk, sku_id=phone_topup_sku("49.50").pk, quantity=1,
                          topup_target={"phone": phone}).order


def _event(order: Order, kind: str, to_status: str | None = None, **params: Any) -> None:
    """What the supplier pipeline writes: a step (and a status change, when there is one)."""
    said = fact(OrderEventKind(kind), **params)
    from_status = order.status
    if to_status is not None:
        Order.objects.filter(pk=order.pk).update(status=to_status)
        order.status = to_status
    OrderEvent.objects.create(order=order, from_status=from_status, to_status=order.status, kind=said.kind,
                              params=said.params)


def _steps(page: str) -> list[str]:
    return re.findall(r'data-testid="topup-step" data-state="(\w+)"', page)


def _page(client: Client, order: Order) -> str:
    response = client.get(reverse("web:order_detail", args=[order.number]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_paid_topup_shows_the_steps_and_the_number_masked(client: Client) -> None:
    order = _paid_phone_order(client)
    page = _page(client, order)

    assert _steps(page) == ["done", "current", "todo", "todo"]
    for label in ("已支付", "正在向运营商发送请求", "充值中", "已到账"):
        assert f'<span class="step-label">{label}</span>' in page
    assert '<dd data-testid="topup-target-phone">138****1234</dd>' in page
    assert "13812341234" not in page
    assert f'hx-get="{reverse("web:order_progress", args=[order.number])}"' in page
    assert "/status/" not in page  # the badge leaves the polling to the progress block
    assert "等待人工发货" not in page


def test_each_step_moves_the_bar(client: Client) -> None:
    order = _paid_phone_order(client)

    _event(order, K.TOPUP_SUBMITTING, to_status=OrderStatus.FULFILLING)
    assert _steps(_page(client, order)) == ["done", "current", "todo", "todo"]
    assert "正在向运营商发送请求" in _page(client, order)

    _event(order, K.TOPUP_PROCESSING)
    assert _steps(_page(client, order)) == ["done", "done", "current", "todo"]

    _event(order, K.TOPUP_SUCCEEDED, to_status=OrderStatus.DELIVERED, operator_serial="SN20261203000123")
    page = _page(client, order)
    assert _steps(page) == ["done", "done", "done", "done"]
    assert 'data-testid="topup-arrived"' in page
    assert "运营商流水号" in page
    assert '<code data-testid="operator-serial">SN20261203000123</code>' in page
    assert "hx-get" not in page  # final: nothing polls


def test_the_progress_poll_swaps_the_block_the_badge_and_the_timeline_in_place(client: Client) -> None:
    order = _paid_phone_order(client)
    url = reverse("web:order_progress", args=[order.number])
    _event(order, K.TOPUP_SUBMITTING, to_status=OrderStatus.FULFILLING)
    _event(order, K.TOPUP_PROCESSING)

    response = client.get(url, headers=HTMX)

    fragment = response.content.decode()
    assert response.status_code == 200
    assert "HX-Refresh" not in response
    assert fragment.startswith('<section class="card topup-progress" id="topup-progress"')
    assert _steps(fragment) == ["done", "done", "current", "todo"]
    assert f'hx-get="{url}"' in fragment  # still moving: it polls on
    assert re.search(r'<span id="order-status"[^>]*hx-swap-oob="true"', fragment)
    assert re.search(r'<ol class="timeline" id="order-timeline"[^>]*hx-swap-oob="true"', fragment)
    assert "充值中" in fragment
    assert "<html" not in fragment

    _event(order, K.TOPUP_SUCCEEDED, to_status=OrderStatus.DELIVERED, operator_serial="SN1")
    final = client.get(url, headers=HTMX).content.decode()
    assert _steps(final) == ["done"] * 4
    assert f'hx-get="{url}"' not in final  # stops asking
    assert 'data-status="delivered"' in final


def test_the_progress_address_opened_directly_or_logged_out(client: Client) -> None:
    order = _paid_phone_order(client)
    url = reverse("web:order_progress", args=[order.number])
    assert client.get(url)["Location"] == reverse("web:order_detail", args=[order.number])
    client.logout()
    assert client.get(url, headers=HTMX)["HX-Refresh"] == "true"
    client.force_login(UserFactory.create())  # another account: not their order
    assert client.get(url, headers=HTMX)["HX-Refresh"] == "true"


def test_a_failed_topup_says_so_and_the_refund(client: Client) -> None:
    order = _paid_phone_order(client)
    _event(order, K.TOPUP_SUBMITTING, to_status=OrderStatus.FULFILLING)
    _event(order, K.DELIVERY_FAILED, to_status=OrderStatus.DELIVERY_FAILED, reason="运营商维护中")
    Order.objects.filter(pk=order.pk).update(refunded_amount=Decimal("49.50"))
    order.refunded_amount = Decimal("49.50")
    _event(order, K.DELIVERY_FAILED_REFUNDED, to_status=OrderStatus.REFUNDED, amount="49.50")

    page = _page(client, order)

    assert _steps(page) == ["done", "failed", "todo", "todo"]
    assert 'data-testid="topup-failed"' in page
    assert "充值未成功：运营商维护中。" in page
    assert "¥49.50 已全额退回您的钱包余额" in page
    assert "hx-get" not in page


def test_staff_only_events_are_kept_from_the_buyer_but_shown_to_staff(client: Client, admin_client: Client) -> None:
    order = _paid_phone_order(client)
    _event(order, K.ROUTED, supplier="快充科技", price="48.80", reason="最低价")
    _event(order, K.TOPUP_FAILED_OVER, reason="供货商无库存")
    _event(order, K.TOPUP_SUBMITTING, to_status=OrderStatus.FULFILLING)

    page = _page(client, order)
    api = client.get(f"/api/v1/shop/orders/{order.number}").json()
    admin_page = admin_client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()

    for text in ("快充科技", "48.80", "已分配供货商", "换供货商"):
        assert text not in page
        assert text not in str(api)
    assert [event["kind"] for event in api["timeline"]] == ["created", "wallet_paid", "topup_submitting"]
    assert "已分配供货商 快充科技（供货价 ¥48.80，最低价）" in admin_page
    assert "供货商未能完成（供货商无库存），已换供货商重试" in admin_page
    assert "手机号：<code>138****1234</code>" in admin_page
    assert "13812341234" not in admin_page


def test_a_staff_only_event_does_not_refresh_the_buyers_page(client: Client) -> None:
    order = _paid_phone_order(client)
    before = client.get(reverse("web:order_status", args=[order.number])).content.decode()
    _event(order, K.ROUTED, supplier="快充科技", price="48.80", reason="最低价")
    assert client.get(reverse("web:order_status", args=[order.number])).content.decode() == before


def test_the_order_list_and_api_show_the_target_masked(client: Client) -> None:
    buyer: User = UserFactory.create()
    fund_wallet(buyer, "100.00")
    client.force_login(buyer)
    order = order_checkout(buyer_id=buyer.pk, sku_id=game_topup_sku().pk, quantity=1,
                           topup_target={"account": "player_2024", "region": "QQ区"}).order

    listing = client.get(reverse("web:order_list")).content.decode()
    api = client.get(f"/api/v1/shop/orders/{order.number}").json()

    assert '<small class="target" data-testid="order-list-target">充值到 pl*******24 · QQ区</small>' in listing
    assert "player_2024" not in listing
    assert api["topup_target"] == [{"name": "account", "label": "游戏账号", "value": "pl*******24"},
                                   {"name": "region", "label": "大区", "value": "QQ区"}]
    assert "player_2024" not in str(api)


def test_the_progress_and_a_carrier_refusal_read_english(client: Client) -> None:
    order = _paid_phone_order(client)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    _event(order, K.TOPUP_SUBMITTING, to_status=OrderStatus.FULFILLING)

    page = _page(client, order)
    assert "Top-up progress" in page
    assert '<span class="step-label">Sending the request to the operator</span>' in page
    assert "充值进度" not in page

    fund_wallet(UserFactory.create(), "1.00")  # another buyer's money is untouched by what follows
    response = client.post(reverse("web:buy", args=[order.sku.product_id]),
                           {"sku": order.sku_id, "quantity": 1, "request_id": "en-1", "topup_phone": "13012345678"})
    assert response.status_code == 400
    assert "This product only tops up China Mobile numbers; you entered a China Unicom number" in (
        response.content.decode())


def test_an_unpaid_topup_shows_its_target_and_waits_for_payment(client: Client) -> None:
    buyer = UserFactory.create()
    client.force_login(buyer)
    order = order_checkout(buyer_id=buyer.pk, sku_id=phone_topup_sku("49.50").pk, quantity=1,
                           pay_with_wallet=False, topup_target={"phone": "13812341234"}).order

    page = _page(client, order)

    assert '<dd data-testid="topup-target-phone">138****1234</dd>' in page
    assert 'data-testid="topup-progress"' not in page  # the payment comes first
    assert 'data-testid="pending-actions"' in page
    assert f'hx-get="{reverse("web:order_status", args=[order.number])}?was=pending_payment' in page


def _badge(page: str) -> str:
    return re.search(r'<span id="order-status"[^>]*>([^<]*)</span>', page).group(1)  # type: ignore[union-attr]


def _current_row(page: str) -> list[str]:
    return re.findall(r'data-testid="timeline-current"><time>[^<]*</time> <span>([^<]*)</span>', page)


def test_the_timeline_highlights_the_step_under_way_and_a_credited_topup_says_so(client: Client) -> None:
    order = _paid_phone_order(client)
    _event(order, K.TOPUP_SUBMITTING, to_status=OrderStatus.FULFILLING)
    assert _current_row(_page(client, order)) == ["正在向运营商发送请求"]

    _event(order, K.TOPUP_PROCESSING)
    page = _page(client, order)
    assert _current_row(page) == ["充值中"]
    assert 'data-testid="order-note"' not in page  # a step is not an aside
    fragment = client.get(reverse("web:order_progress", args=[order.number]), headers=HTMX).content.decode()
    assert _current_row(fragment) == ["充值中"]

    _event(order, K.TOPUP_SUCCEEDED, to_status=OrderStatus.DELIVERED, operator_serial="SN1")
    page = _page(client, order)
    assert _badge(page) == "已到账"
    assert _current_row(page) == ["已到账，运营商流水号 SN1"]
    listing = client.get(reverse("web:order_list")).content.decode()
    assert re.findall(r'data-testid="order-list-status">([^<]*)<', listing) == ["已到账"]


def test_a_card_key_order_still_says_delivered(client: Client) -> None:
    from tests.factories import SkuFactory, stock_sku

    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    client.force_login(buyer)
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 1)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order

    page = _page(client, order)
    assert _badge(page) == "已发货"
    assert 'data-testid="timeline-current"' not in page
