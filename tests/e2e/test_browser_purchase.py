"""A real browser (Playwright driving Debian's chromium) against a live server: top up, buy a key, read it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import override_settings
from playwright.sync_api import Page
from pytest_django.live_server_helper import LiveServer

from kameng.core.crypto import generate_key
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.payments.models import ChannelKind, Payment, PaymentChannel, PaymentStatus
from kameng.simulators.services import simulated_epay_merchant_create
from tests.e2e.support import log_in
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]



def test_buyer_logs_in_buys_a_key_and_reads_it_on_the_page(page: Page, live_server: LiveServer) -> None:
    buyer = UserFactory.create(username="browser_buyer")
    sku = SkuFactory.create(price=Decimal("9.50"))
    secrets = stock_sku(sku, 3, prefix="E2E")
    fund_wallet(buyer, "20.00")
    base = live_server.url

    log_in(page, base, "browser_buyer")
    page.goto(f"{base}/products/{sku.product_id}/")
    page.click("#buy-button")
    page.wait_for_selector("[data-testid=card-key]")

    shown = [text.strip() for text in page.locator("[data-testid=card-key]").all_inner_texts()]
    order = Order.objects.get(buyer=buyer)
    assert order.status == OrderStatus.DELIVERED
    assert len(shown) == 1
    assert shown[0] in secrets
    assert page.inner_text("[data-testid=order-number]").strip() == order.number
    assert wallet_balance(user_id=buyer.pk) == Decimal("10.50")


def test_buyer_tops_up_through_the_epay_simulator_in_the_browser(page: Page, live_server: LiveServer) -> None:
    buyer = UserFactory.create(username="browser_topup")
    key = generate_key()[:32]
    simulated_epay_merchant_create(pid="1001", key=key, name="模拟商户")
    PaymentChannel.objects.create(code="epay-sim", name="模拟易支付", kind=ChannelKind.EPAY_V1,
                                  gateway_url=live_server.url + "/sim/epay/", merchant_id="1001", merchant_key=key)
    base = live_server.url

    with override_settings(SITE_URL=base):
        log_in(page, base, "browser_topup")
        page.goto(base + "/wallet/")
        page.fill("[data-testid=topup-amount]", "88.80")
        page.click("#topup-submit")
        page.wait_for_url("**/sim/epay/submit.php**")
        page.click("text=确认支付")
        page.wait_for_selector("[data-testid=topup-status][data-status=succeeded]")

    payment = Payment.objects.get(user=buyer)
    assert payment.status == PaymentStatus.SUCCEEDED
    assert wallet_balance(user_id=buyer.pk) == Decimal("88.80")
    assert "88.80" in page.inner_text("[data-testid=topup-new-balance]")


def test_buyer_pays_an_order_by_scanning_a_wechat_qr_code(page: Page, live_server: LiveServer) -> None:
    from kameng.simulators.demo_channels import demo_channels_ensure

    buyer = UserFactory.create(username="browser_qr")
    sku = SkuFactory.create(price=Decimal("9.50"))
    secrets = stock_sku(sku, 2, prefix="QR")
    base = live_server.url

    with override_settings(SITE_URL=base, KAMENG_SIMULATORS_ENABLED=True):
        demo_channels_ensure()
        log_in(page, base, "browser_qr")
        page.goto(f"{base}/products/{sku.product_id}/")
        page.check("input[name=payment_method][value=wechat-sim]")
        page.click("#buy-button")
        page.wait_for_selector("svg")  # the QR code, drawn locally
        pay_page = page.url
        page.goto(page.locator("text=在模拟器中打开").first.get_attribute("href") or "")
        page.click("text=确认支付")  # the simulated WeChat app pays; its signed, encrypted notify reaches us
        page.goto(pay_page)
        page.wait_for_selector("[data-testid=card-key]")

    order = Order.objects.get(buyer=buyer)
    assert order.status == OrderStatus.DELIVERED
    assert page.locator("[data-testid=card-key]").all_inner_texts()[0].strip() in secrets
    assert Payment.objects.get(order=order).status == PaymentStatus.SUCCEEDED
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")  # the payment went in, and out to the order


def test_buyer_pays_an_order_at_the_alipay_cashier_and_comes_back_to_the_keys(page: Page,
                                                                              live_server: LiveServer) -> None:
    """Coming back from Alipay page pay is no notification: no 已拒绝 row, no risk event (it once was both)."""
    from kameng.payments.models import PaymentNotification
    from kameng.risk.models import RiskEvent
    from kameng.simulators.demo_channels import demo_channels_ensure

    buyer = UserFactory.create(username="browser_alipay")
    sku = SkuFactory.create(price=Decimal("6.60"))
    secrets = stock_sku(sku, 1, prefix="AP")
    base = live_server.url

    with override_settings(SITE_URL=base, KAMENG_SIMULATORS_ENABLED=True):
        demo_channels_ensure()
        log_in(page, base, "browser_alipay")
        page.goto(f"{base}/products/{sku.product_id}/")
        page.check("input[name=payment_method][value=alipay-sim]")
        page.click("#buy-button")
        page.wait_for_url("**/sim/alipay/**")
        page.click("text=确认支付")
        page.wait_for_selector("[data-testid=card-key]")

    order = Order.objects.get(buyer=buyer)
    assert order.status == OrderStatus.DELIVERED
    assert page.locator("[data-testid=card-key]").all_inner_texts()[0].strip() in secrets
    assert not PaymentNotification.objects.filter(outcome="rejected").exists()
    assert not RiskEvent.objects.exists()
