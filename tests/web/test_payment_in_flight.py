"""An order with a gateway payment in flight: its page says 正在确认支付 (and polls), and paying it a second way
asks first, in the page and on the server."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from kameng.accounts.models import User
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.ledger.models import Journal
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout
from kameng.payments.models import ChannelKind, Payment, PaymentChannel
from kameng.payments.services import order_payment_start
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db


def _buyer_with_an_order_paid_at_the_gateway(client: Client) -> tuple[User, Order, Payment]:
    """A buyer who started paying an order at a gateway and came back; the wallet could pay it too."""
    buyer = UserFactory.create()
    fund_wallet(buyer, "50.00")
    client.force_login(buyer)
    sku = SkuFactory.create(price=Decimal("8.00"))
    stock_sku(sku, 2)
    PaymentChannel.objects.create(code="epay", name="易支付", kind=ChannelKind.EPAY_V1,
                                  gateway_url="https://pay.example.com/", merchant_id="1001",
                                  merchant_key="in-flight-merchant-key-0123456789")
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order
    payment = order_payment_start(order_id=order.pk, buyer_id=buyer.pk, channel_code="epay").payment
    assert payment is not None
    return buyer, order, payment


def test_the_order_page_says_the_payment_is_being_confirmed_and_polls(client: Client) -> None:
    _, order, payment = _buyer_with_an_order_paid_at_the_gateway(client)

    body = client.get(reverse("web:order_detail", args=[order.number])).content.decode()

    assert 'data-testid="payment-confirming"' in body
    assert f"支付单 {payment.number}" in body
    assert "正在确认支付" in body
    assert 'hx-trigger="every 3s"' in body
    assert 'class="button ghost" id="pay-with-wallet"' in body  # no longer the prominent choice
    status = client.get(reverse("web:order_status", args=[order.number])).content.decode()
    assert "正在确认支付" in status
    assert 'hx-trigger="every 3s"' in status  # confirming a payment is quick: no slower polling


def test_paying_with_the_wallet_while_a_gateway_payment_is_in_flight_asks_first(client: Client) -> None:
    buyer, order, _ = _buyer_with_an_order_paid_at_the_gateway(client)
    journals = Journal.objects.count()

    asked = client.post(reverse("web:order_pay", args=[order.number]), {"channel": "balance"})

    assert asked.status_code == 409
    body = asked.content.decode()
    assert 'data-testid="confirm-second-payment"' in body
    assert "正在确认中" in body
    assert 'name="confirm_second_payment" value="1"' in body
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
    assert wallet_balance(user_id=buyer.pk) == Decimal("50.00")
    assert Journal.objects.count() == journals

    confirmed = client.post(reverse("web:order_pay", args=[order.number]),
                            {"channel": "balance", "confirm_second_payment": "1"})

    assert confirmed["Location"] == reverse("web:order_detail", args=[order.number])
    assert Order.objects.get(pk=order.pk).status == OrderStatus.DELIVERED
    assert wallet_balance(user_id=buyer.pk) == Decimal("42.00")
    assert CardKey.objects.filter(order=order, status=CardKeyStatus.SOLD).count() == 1


def test_a_gateway_payment_started_long_ago_no_longer_holds_the_wallet_back(client: Client) -> None:
    buyer, order, payment = _buyer_with_an_order_paid_at_the_gateway(client)
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(minutes=31))

    response = client.post(reverse("web:order_pay", args=[order.number]), {"channel": "balance"})

    assert response.status_code == 302
    assert Order.objects.get(pk=order.pk).status == OrderStatus.DELIVERED
    assert wallet_balance(user_id=buyer.pk) == Decimal("42.00")


def test_opening_the_pay_address_directly_shows_the_order(client: Client) -> None:
    _, order, _ = _buyer_with_an_order_paid_at_the_gateway(client)

    response = client.get(reverse("web:order_pay", args=[order.number]))

    assert response.status_code == 302
    assert response["Location"] == reverse("web:order_detail", args=[order.number])
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT


def test_cancelling_an_order_asks_first_without_javascript(client: Client) -> None:
    _, order, _ = _buyer_with_an_order_paid_at_the_gateway(client)
    page = client.get(reverse("web:order_detail", args=[order.number])).content.decode()
    assert f'href="{reverse("web:order_cancel", args=[order.number])}" id="cancel-order"' in page

    asked = client.get(reverse("web:order_cancel", args=[order.number]))

    assert asked.status_code == 200
    body = asked.content.decode()
    assert "确定取消这笔订单吗？" in body
    assert "有一笔付款正在确认中" in body
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT

    confirmed = client.post(reverse("web:order_cancel", args=[order.number]))

    assert confirmed["Location"] == reverse("web:order_detail", args=[order.number])
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED


def _list_badges(client: Client) -> list[str]:
    body = client.get(reverse("web:order_list")).content.decode()
    return re.findall(r'data-testid="order-list-status">([^<]*)</span>', body)


def test_the_order_list_says_the_payment_is_being_confirmed_as_the_order_page_does(client: Client) -> None:
    buyer, order, payment = _buyer_with_an_order_paid_at_the_gateway(client)
    other = order_checkout(buyer_id=buyer.pk, sku_id=order.sku_id, quantity=1, pay_with_wallet=False).order

    assert _list_badges(client) == ["待支付", "正在确认支付"]  # newest first: the other order has no payment

    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert _list_badges(client) == ["待支付", "待支付"]  # no longer in flight
    assert other.status == OrderStatus.PENDING_PAYMENT
