"""A gateway payment that cannot start: the reason reads in the buyer's language, the gateway's own words as sent."""

from __future__ import annotations

from decimal import Decimal
from html import unescape

import httpx
import pytest
from django.test import Client
from django.urls import reverse

from kameng.orders.models import Order, OrderStatus
from kameng.payments.gateways import epay_v2, registry
from kameng.payments.models import ChannelKind, Payment, PaymentChannel
from kameng.simulators.epay_v2.services import epay_v2_merchant_key_pair_generate
from tests.factories import SkuFactory, UserFactory, stock_sku
from tests.payments.support import epay_channel

pytestmark = pytest.mark.django_db


def _switch(client: Client, language: str) -> None:
    assert client.post(reverse("set_language"), {"language": language, "next": "/"}).status_code == 302


def _buy_with(client: Client, channel_code: str) -> str:
    """Buy one of a fresh product with a gateway channel; the text of the order page the buyer lands on."""
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 1)
    response = client.post(reverse("web:buy", args=[sku.product_id]),
                           {"sku": sku.pk, "quantity": 1, "payment_method": channel_code}, follow=True)
    assert response.status_code == 200
    return unescape(response.content.decode())


@pytest.fixture
def buyer_client(client: Client) -> Client:
    client.force_login(UserFactory.create())
    return client


def test_a_channel_without_an_adapter_is_explained_in_english_and_in_chinese(
        buyer_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    channel = epay_channel()
    monkeypatch.delitem(registry.ADAPTER_MODULES, ChannelKind.EPAY_V1)

    _switch(buyer_client, "en")
    english = _buy_with(buyer_client, channel.code)
    _switch(buyer_client, "zh-hans")
    chinese = _buy_with(buyer_client, channel.code)

    assert ("Could not start the payment: Payment method “易支付（模拟）” has no gateway adapter. The order is kept; "
            "you can pay it another way on its page") in english
    assert "无法发起支付：支付方式「易支付（模拟）」没有网关适配器。订单已保留" in chinese
    assert list(Order.objects.values_list("status", flat=True)) == [OrderStatus.PENDING_PAYMENT] * 2


@pytest.fixture
def epay_v2_channel() -> PaymentChannel:
    merchant_keys, platform_keys = epay_v2_merchant_key_pair_generate(), epay_v2_merchant_key_pair_generate()
    return PaymentChannel.objects.create(
        code="epay-v2", name="易支付 V2", kind=ChannelKind.EPAY_V2, gateway_url="https://pay.example.com/",
        merchant_id="2001", merchant_key=merchant_keys.private_key, platform_public_key=platform_keys.public_key,
        pay_type="alipay")


def _gateway_answers(monkeypatch: pytest.MonkeyPatch, answer: httpx.Response | None) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if answer is None:
            raise httpx.ConnectError("connection refused", request=request)
        return answer

    monkeypatch.setattr(epay_v2, "http_transport", httpx.MockTransport(handler))


def test_a_gateway_that_cannot_be_reached_is_explained_in_english_and_in_chinese(
        buyer_client: Client, epay_v2_channel: PaymentChannel, monkeypatch: pytest.MonkeyPatch) -> None:
    _gateway_answers(monkeypatch, None)

    _switch(buyer_client, "en")
    english = _buy_with(buyer_client, epay_v2_channel.code)
    _switch(buyer_client, "zh-hans")
    chinese = _buy_with(buyer_client, epay_v2_channel.code)

    assert ("Could not start the payment: The payment gateway request (create payment) failed: network error or "
            "unreadable answer.") in english
    assert "无法发起支付：支付网关下单失败：网络或应答错误。" in chinese
    assert Payment.objects.filter(status="pending").count() == 2


def test_a_gateway_refusal_keeps_the_gateways_own_words_inside_an_english_sentence(
        buyer_client: Client, epay_v2_channel: PaymentChannel, monkeypatch: pytest.MonkeyPatch) -> None:
    _gateway_answers(monkeypatch, httpx.Response(200, json={"code": 1, "msg": "商户未开通该支付方式"}))

    _switch(buyer_client, "en")
    english = _buy_with(buyer_client, epay_v2_channel.code)
    _switch(buyer_client, "zh-hans")
    chinese = _buy_with(buyer_client, epay_v2_channel.code)

    assert ("Could not start the payment: The payment gateway could not create the payment: "
            "商户未开通该支付方式.") in english
    assert "无法发起支付：支付网关下单失败：商户未开通该支付方式。" in chinese
