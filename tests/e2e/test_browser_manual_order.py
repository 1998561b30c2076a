"""A product fulfilled by hand (人工发货), end to end in real browsers: the buyer buys it from the wallet, staff
deliver it in the admin with a note the buyer then reads; a second order is failed by staff and the wallet gets
its money back exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import Page
from pytest_django.live_server_helper import LiveServer

from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from tests.e2e.support import log_in, staff_log_in
from tests.factories import UserFactory, fund_wallet, manual_sku

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]



def _staff_page(page: Page, base: str) -> Page:
    """A second browser (its own cookies) logged in to the admin."""
    UserFactory.create(username="browser_staff", is_staff=True, is_superuser=True)
    browser = page.context.browser
    assert browser is not None
    staff = browser.new_context(locale="zh-CN").new_page()
    staff_log_in(staff, base, "browser_staff")  # the password, then the 2FA code
    return staff


def _buy(page: Page, base: str, product_id: int) -> Order:
    page.goto(f"{base}/products/{product_id}/")
    page.click("#buy-button")
    page.wait_for_selector("[data-testid=order-number]")
    number = page.inner_text("[data-testid=order-number]").strip()
    return Order.objects.get(number=number)


def _fulfil(staff: Page, base: str, order: Order, *, outcome: str, note: str) -> None:
    staff.goto(f"{base}/admin/orders/order/{order.pk}/change/")
    staff.click(f"a[href$='/admin/orders/order/{order.pk}/fulfil/']")
    staff.check(f"#order-fulfil-form input[name=outcome][value={outcome}]")
    staff.fill("#order-fulfil-form textarea[name=note]", note)
    staff.click("#order-fulfil-form button[type=submit]")
    staff.wait_for_url(f"{base}/admin/orders/order/{order.pk}/change/")


def test_staff_deliver_a_manual_order_with_a_note_the_buyer_reads(page: Page, live_server: LiveServer) -> None:
    buyer = UserFactory.create(username="browser_manual")
    sku = manual_sku("58.00")
    fund_wallet(buyer, "100.00")
    base = live_server.url
    log_in(page, base, "browser_manual")

    order = _buy(page, base, sku.product_id)
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLING
    assert wallet_balance(user_id=buyer.pk) == Decimal("42.00")

    staff = _staff_page(page, base)
    _fulfil(staff, base, order, outcome="delivered", note="已为您充值到游戏账号 A-778，请登录查收")

    page.goto(f"{base}/orders/{order.number}/")
    assert "已为您充值到游戏账号 A-778，请登录查收" in page.inner_text("[data-testid=delivery-note]")
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED


def test_staff_fail_a_manual_order_and_the_wallet_is_refunded_exactly(page: Page, live_server: LiveServer) -> None:
    buyer = UserFactory.create(username="browser_manual_refund")
    sku = manual_sku("58.00")
    fund_wallet(buyer, "100.00")
    base = live_server.url
    log_in(page, base, "browser_manual_refund")

    order = _buy(page, base, sku.product_id)
    assert wallet_balance(user_id=buyer.pk) == Decimal("42.00")

    staff = _staff_page(page, base)
    _fulfil(staff, base, order, outcome="failed", note="账号不存在，无法充值")

    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == (OrderStatus.REFUNDED, Decimal("58.00"))
    assert wallet_balance(user_id=buyer.pk) == Decimal("100.00")
    page.goto(f"{base}/orders/{order.number}/")
    assert "账号不存在，无法充值" in page.inner_text("[data-testid=order-timeline]")
