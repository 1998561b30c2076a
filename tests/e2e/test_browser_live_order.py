"""The order page follows the order by itself, in a real browser: an order paid or delivered from elsewhere (another
session, staff) shows its new state, keys and note without the buyer reloading, and a final order stops asking."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from django.core import mail
from playwright.sync_api import Page
from pytest_django.fixtures import Settings
from pytest_django.live_server_helper import LiveServer

from kameng.orders.fulfilment import order_deliver_manually
from kameng.orders.services import order_checkout
from kameng.payments.services import order_pay_from_wallet
from kameng.web.views import orders as order_views
from tests.e2e.support import log_in
from tests.factories import SkuFactory, UserFactory, fund_wallet, manual_sku, stock_sku

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _status_polls(page: Page) -> list[str]:
    polls: list[str] = []
    page.on("request", lambda request: polls.append(request.url) if "/status/" in request.url else None)
    return polls


def test_a_pending_order_paid_elsewhere_shows_its_keys_and_stops_polling(page: Page, live_server: LiveServer,
                                                                         settings: Settings) -> None:
    settings.KAMENG_ORDER_AFTERCARE = ["kameng.notices.listeners.orders_delivered_email"]  # off in test settings
    buyer = UserFactory.create(username="browser_live", email="live@example.com")
    sku = SkuFactory.create(price=Decimal("6.00"))
    secrets = stock_sku(sku, 1, prefix="LIVE")
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order
    base = live_server.url
    log_in(page, base, "browser_live")
    polls = _status_polls(page)
    page.goto(f"{base}/orders/{order.number}/")
    assert page.get_attribute("[data-testid=order-status]", "data-status") == "pending_payment"
    page.wait_for_timeout(3500)
    assert polls, "the pending order's page does not poll"

    fund_wallet(buyer, "6.00")
    order_pay_from_wallet(order_id=order.pk, buyer_id=buyer.pk)  # paid from another session

    page.wait_for_selector("[data-testid=card-key]", timeout=15_000)
    assert [text.strip() for text in page.locator("[data-testid=card-key]").all_inner_texts()] == secrets
    assert page.get_attribute("[data-testid=order-status]", "data-status") == "delivered"
    assert page.get_attribute("[data-testid=order-status]", "hx-get") is None
    polls.clear()
    page.wait_for_timeout(4000)
    assert polls == []  # a final order asks no more
    assert [message.subject for message in mail.outbox] == [f"您的订单 {order.number} 已发货"]


def test_a_manual_order_delivered_by_staff_shows_the_note_without_a_reload(
        page: Page, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(order_views, "STATUS_POLL_SECONDS_AWAITING_STAFF", 1)  # the server runs in this process
    buyer = UserFactory.create(username="browser_live_manual")
    fund_wallet(buyer, "58.00")
    order = order_checkout(buyer_id=buyer.pk, sku_id=manual_sku("58.00").pk, quantity=1).order
    base = live_server.url
    log_in(page, base, "browser_live_manual")
    page.goto(f"{base}/orders/{order.number}/")
    assert "等待人工发货" in page.inner_text("[data-testid=order-status]")
    assert page.locator("[data-testid=delivery-note]").count() == 0

    time.sleep(1.5)
    order_deliver_manually(order_id=order.pk, note="已为您充值到游戏账号 A-778")  # staff, in the back office

    page.wait_for_selector("[data-testid=delivery-note]", timeout=15_000)
    assert "已为您充值到游戏账号 A-778" in page.inner_text("[data-testid=delivery-note]")
    assert page.get_attribute("[data-testid=order-status]", "data-status") == "delivered"
    assert page.get_attribute("[data-testid=order-status]", "hx-get") is None


def test_a_buyer_logged_out_elsewhere_is_sent_to_the_login_page(page: Page, live_server: LiveServer) -> None:
    buyer = UserFactory.create(username="browser_live_logout")
    sku = SkuFactory.create(price=Decimal("6.00"))
    stock_sku(sku, 1)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order
    base = live_server.url
    log_in(page, base, "browser_live_logout")
    page.goto(f"{base}/orders/{order.number}/")

    other_tab = page.context.new_page()
    other_tab.goto(base + "/")
    other_tab.click("[data-testid=nav-logout]")
    other_tab.close()

    page.wait_for_url(f"{base}/login/**", timeout=15_000)
    assert page.locator("#login-form").count() == 1
    assert page.locator("[data-testid=order-status] #login-form").count() == 0
