"""Buyers are offered only channels that can be used: one missing a credential its protocol needs
(CHANNEL_REQUIRED_FIELDS) is refused on use by the services, so no buyer-facing list shows it."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from kameng.accounts.models import User
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout
from kameng.payments.models import ChannelKind, Payment, PaymentChannel
from kameng.payments.selectors import channels_offered
from tests.factories import SkuFactory, UserFactory, stock_sku

pytestmark = pytest.mark.django_db

KEY = "list-merchant-key-0123456789abcdef"


def _epay(code: str, **fields: object) -> PaymentChannel:
    defaults: dict[str, object] = {"name": f"易支付 {code}", "kind": ChannelKind.EPAY_V1,
                                   "gateway_url": "https://pay.example.com/", "merchant_id": "1001",
                                   "merchant_key": KEY}
    return PaymentChannel.objects.create(code=code, **{**defaults, **fields})


def _channels() -> None:
    """One usable channel of each shape, and one channel of each protocol missing something it needs."""
    _epay("good", sort_order=1)
    _epay("keyless", merchant_key=None)
    _epay("blank-key", merchant_key="   ")
    _epay("no-pid", merchant_id="")
    _epay("no-gateway", gateway_url="")
    _epay("v2-no-platform-key", kind=ChannelKind.EPAY_V2, platform_public_key="")
    _epay("alipay-no-key", kind=ChannelKind.ALIPAY, merchant_key=None, platform_public_key="PUBLIC")
    _epay("wechat-no-v3-key", kind=ChannelKind.WECHAT_V3, app_id="wx1", merchant_serial_no="S1",
          platform_public_key="PUBLIC", platform_key_id="PUB_KEY_ID_1", api_v3_key=None)
    _epay("wechat-complete", kind=ChannelKind.WECHAT_V3, app_id="wx1", merchant_serial_no="S1",
          platform_public_key="PUBLIC", platform_key_id="PUB_KEY_ID_1", api_v3_key="k" * 32, sort_order=2)


def _buyer(client: Client) -> User:
    user = UserFactory.create()
    client.force_login(user)
    return user


def _pending_order(buyer: User) -> Order:
    sku = SkuFactory.create(price=Decimal("8.00"))
    stock_sku(sku, 2)
    return order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order


def test_the_selector_offers_only_complete_enabled_channels_taking_the_amount() -> None:
    _channels()
    _epay("small", max_amount=Decimal("5.00"), sort_order=3)
    _epay("off", is_enabled=False)
    PaymentChannel.objects.create(code="wallet", name="余额", kind=ChannelKind.BALANCE)

    assert [channel.code for channel in channels_offered()] == ["good", "wechat-complete", "small"]
    assert [channel.code for channel in channels_offered(amount=Decimal("8.00"))] == ["good", "wechat-complete"]


def test_the_product_page_hides_channels_missing_a_credential(client: Client) -> None:
    _buyer(client)
    _channels()
    sku = SkuFactory.create(price=Decimal("8.00"))
    stock_sku(sku, 1)

    body = client.get(reverse("web:product", args=[sku.product_id])).content.decode()

    assert re.findall(r'name="payment_method" value="([^"]+)"', body) == ["balance", "good", "wechat-complete"]


def test_the_order_page_hides_channels_missing_a_credential(client: Client) -> None:
    order = _pending_order(_buyer(client))
    _channels()

    body = client.get(reverse("web:order_detail", args=[order.number])).content.decode()

    assert re.findall(r'data-testid="pay-with-([^"]+)"', body) == ["good", "wechat-complete"]


def test_the_wallet_top_up_form_hides_channels_missing_a_credential(client: Client) -> None:
    _buyer(client)
    _channels()

    body = client.get(reverse("web:wallet")).content.decode()

    assert re.findall(r'name="channel" value="([^"]+)"', body) == ["good", "wechat-complete"]


def test_buying_with_a_channel_missing_a_credential_reserves_nothing(client: Client) -> None:
    """A product page shown before the key was removed still posts it: refused before any order exists."""
    _buyer(client)
    _channels()
    sku = SkuFactory.create(price=Decimal("8.00"))
    stock_sku(sku, 1)

    response = client.post(reverse("web:buy", args=[sku.product_id]),
                           {"sku": sku.pk, "quantity": 1, "request_id": "r-1", "payment_method": "keyless"})

    assert response.status_code == 400
    assert "配置不完整" in response.content.decode()
    assert not Order.objects.exists()
    assert not Payment.objects.exists()


def test_paying_an_order_with_a_channel_missing_a_credential_leaves_it_payable(client: Client) -> None:
    order = _pending_order(_buyer(client))
    _channels()

    response = client.post(reverse("web:order_pay", args=[order.number]), {"channel": "no-pid"})

    assert response.status_code == 400
    assert "配置不完整" in response.content.decode()
    assert not Payment.objects.exists()
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
