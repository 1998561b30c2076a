"""Coming back from the simulated 易支付 cashier, end to end: the signed return makes us ask the gateway's api.php
over real HTTP (the simulator in pytest-django's live server), and the payment is credited once, with no
notification row, while the notification itself is lost."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.live_server_helper import LiveServer

from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout
from kameng.payments.models import PaymentNotification, PaymentStatus
from kameng.payments.services import order_payment_start, wallet_topup_start
from kameng.risk.models import RiskEvent
from kameng.simulators import services as simulator_services
from tests.factories import SkuFactory, UserFactory, stock_sku
from tests.payments.support import CHANNEL_CODE, epay_channel, epay_merchant, failing_transport


def _pay_at_the_cashier(live_server: LiveServer, redirect_url: str) -> str:
    """Press 确认支付 at the simulated cashier like a buyer; returns where the cashier sends the browser back."""
    with httpx.Client(timeout=10.0) as browser:
        cashier = browser.get(redirect_url)
        action = re.search(r'<form method="post" action="([^"]+)"', cashier.text)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', cashier.text)
        assert action
        assert token
        confirmed = browser.post(live_server.url + action.group(1), data={"csrfmiddlewaretoken": token.group(1)})
    assert confirmed.status_code == 302
    return str(confirmed.headers["location"])


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


@pytest.fixture
def site(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch, settings: Any) -> LiveServer:
    settings.SITE_URL = live_server.url
    monkeypatch.setattr(simulator_services, "notify_transport", failing_transport())  # every notification lost
    epay_merchant()
    epay_channel(gateway_url=live_server.url + "/sim/epay/")
    return live_server


@pytest.mark.django_db(transaction=True)
def test_returning_from_the_cashier_credits_a_top_up_whose_notification_was_lost(site: LiveServer) -> None:
    buyer = UserFactory.create()
    started = wallet_topup_start(user_id=buyer.pk, channel_code=CHANNEL_CODE, amount_text="42.00")
    return_url = _pay_at_the_cashier(site, started.start.redirect_url)
    assert return_url.startswith(site.url + "/pay/return/?")
    client = Client()
    client.force_login(buyer)

    back = client.get(_path(return_url))
    again = client.get(_path(return_url))  # a reload

    assert back["Location"] == again["Location"] == reverse("web:topup_status", args=[started.payment.number])
    started.payment.refresh_from_db()
    assert started.payment.status == PaymentStatus.SUCCEEDED
    assert wallet_balance(user_id=buyer.pk) == Decimal("42.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference=started.payment.number).count() == 1
    assert not PaymentNotification.objects.exists()
    assert not RiskEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_returning_from_the_cashier_delivers_the_order_whose_notification_was_lost(site: LiveServer) -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 2)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=2, pay_with_wallet=False).order
    started = order_payment_start(order_id=order.pk, buyer_id=buyer.pk, channel_code=CHANNEL_CODE)
    return_url = _pay_at_the_cashier(site, started.start.redirect_url)
    client = Client()
    client.force_login(buyer)
    before = client.get(reverse("web:order_detail", args=[order.number])).content.decode()
    assert 'data-testid="payment-confirming"' in before

    back = client.get(_path(return_url))

    assert back["Location"] == reverse("web:order_detail", args=[order.number])
    assert Order.objects.get(pk=order.pk).status == OrderStatus.DELIVERED
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")
    page = client.get(back["Location"]).content.decode()
    assert 'data-testid="payment-confirming"' not in page
    assert page.count('data-testid="card-key"') == 2
    assert not PaymentNotification.objects.exists()
