"""A payment number or channel code not shaped like one, anywhere a buyer can type it into a URL or a form, names
nothing: 404 (or the form's refusal), never a 500 from PostgreSQL refusing a NUL character."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from kameng.accounts.models import User
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout
from kameng.payments.models import ChannelKind, Payment, PaymentChannel
from tests.factories import SkuFactory, UserFactory, stock_sku

pytestmark = pytest.mark.django_db

BAD_NUMBERS = ["%00", "P%00", "P1%00", "P" + "1" * 40, "%E2%80%A8", "P%201", "P%C3%A91"]


def _buyer(client: Client) -> User:
    user = UserFactory.create()
    client.force_login(user)
    return user


def _pending_order(buyer: User) -> Order:
    sku = SkuFactory.create(price=Decimal("8.00"))
    stock_sku(sku, 2)
    return order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order


@pytest.mark.parametrize("number", BAD_NUMBERS)
def test_an_order_payment_page_with_a_payment_number_of_the_wrong_shape_is_404(client: Client, number: str) -> None:
    order = _pending_order(_buyer(client))

    response = client.get(f"/orders/{order.number}/pay/{number}/")

    assert response.status_code == 404
    assert "支付单不存在" in response.content.decode()


@pytest.mark.parametrize("number", BAD_NUMBERS)
def test_a_topup_status_page_with_a_payment_number_of_the_wrong_shape_is_404(client: Client, number: str) -> None:
    _buyer(client)

    response = client.get(f"/wallet/topups/{number}/")

    assert response.status_code == 404
    assert "充值记录不存在" in response.content.decode()


@pytest.mark.parametrize("number", ["\x00", "P\x001", "P" * 33])
def test_a_gateway_return_naming_a_payment_number_of_the_wrong_shape_is_404_or_ignored(
        client: Client, number: str) -> None:
    buyer = _buyer(client)
    order = _pending_order(buyer)

    returned = client.get(reverse("payments:return"), {"out_trade_no": number, "sign": "x"})
    # The return addresses payments were started with before /pay/return/ hand the query on to it.
    legacy_topup = client.get(reverse("web:topup_return"), {"out_trade_no": number, "sign": "x"})
    legacy_order = client.get(reverse("web:order_detail", args=[order.number]), {"out_trade_no": number, "sign": "x"})

    assert returned.status_code == 404
    assert legacy_topup.status_code == legacy_order.status_code == 302
    assert client.get(legacy_topup["Location"]).status_code == 404
    assert client.get(legacy_order["Location"]).status_code == 404


@pytest.mark.parametrize("code", ["\x00", "epay\x00", "e" * 41, "ep ay"])
def test_paying_an_order_with_a_channel_code_of_the_wrong_shape_is_refused_not_a_500(client: Client,
                                                                                      code: str) -> None:
    buyer = _buyer(client)
    order = _pending_order(buyer)
    PaymentChannel.objects.create(code="epay", name="易支付", kind=ChannelKind.EPAY_V1,
                                  gateway_url="https://pay.example.com/", merchant_id="1001", merchant_key="k" * 32)

    response = client.post(reverse("web:order_pay", args=[order.number]), {"channel": code})

    assert response.status_code == 404
    assert "支付方式不存在或已停用" in response.content.decode()
    assert not Payment.objects.exists()
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT


def test_a_return_posted_from_the_gateway_without_the_session_is_sent_on_as_a_get(client: Client) -> None:
    """UnionPay's frontUrl form is POSTed from its site: SameSite=Lax keeps the session cookie off that POST."""
    path = reverse("payments:return") + "?out_trade_no=P2612031000001"

    posted = client.post(path, {"orderId": "P2612031000001", "respCode": "00"})
    fetched = client.get(path)

    assert posted.status_code == 303
    assert posted["Location"] == path
    assert fetched.status_code == 302
    assert fetched["Location"].startswith(reverse("web:login"))
