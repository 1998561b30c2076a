"""The buy form's 支付密码 field in a real browser: buy-form.js shows it while the chosen SKU × quantity is over the
buyer's password-free limit and hides it otherwise, so a dearer choice is paid with the PIN at the first try."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from kameng.accounts.paypin import password_free_limit_set, payment_pin_set
from kameng.orders.models import Order, OrderStatus
from tests.e2e.support import BUYER_PASSWORD, log_in
from tests.factories import ProductFactory, SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
PIN = "583920"


def test_the_pin_field_follows_the_chosen_sku_and_quantity(page: Page, live_server: LiveServer) -> None:
    buyer = UserFactory.create(username="pin_buyer")
    fund_wallet(buyer, "200.00")
    payment_pin_set(user_id=buyer.pk, new_pin=PIN, password=BUYER_PASSWORD)
    password_free_limit_set(user_id=buyer.pk, limit_text="20.00", pin=PIN)
    product = ProductFactory.create(max_quantity=10)
    cheap = SkuFactory.create(product=product, price=Decimal("5.00"), name="5 元")
    dear = SkuFactory.create(product=product, price=Decimal("50.00"), name="50 元")
    stock_sku(cheap, 5)
    stock_sku(dear, 5)
    base = live_server.url

    log_in(page, base, "pin_buyer")
    page.goto(f"{base}/products/{product.pk}/")
    pin_field = page.get_by_test_id("pin-field")
    expect(pin_field).to_be_hidden()  # ¥5.00 × 1 ≤ ¥20.00
    page.get_by_test_id("buy-quantity").fill("5")
    expect(pin_field).to_be_visible()  # ¥25.00
    page.get_by_test_id("buy-quantity").fill("1")
    expect(pin_field).to_be_hidden()
    page.get_by_test_id(f"sku-{dear.pk}").check()
    expect(pin_field).to_be_visible()  # ¥50.00
    page.get_by_test_id("pin-input").fill(PIN)
    page.click("#buy-button")
    page.wait_for_selector("[data-testid=card-key]")

    order = Order.objects.get(buyer=buyer)
    assert order.status == OrderStatus.DELIVERED
    assert order.total_amount == Decimal("50.00")
