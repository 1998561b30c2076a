"""A channel missing a credential its protocol needs is never used: the admin form refuses to save one, but a
channel saved before that check, edited in the shell or by a data migration must be refused by the services too.

Epay V1 with a blank merchant key signed with the empty string: anyone could compute MD5(canonical) and have a
forged notification credited.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.test import Client
from django.urls import reverse

from kameng.ledger.models import Journal
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout
from kameng.payments.gateways.base import ChannelMisconfiguredError
from kameng.payments.gateways.epay import EpayV1Gateway, epay_canonical, epay_sign
from kameng.payments.gateways.epay_v2 import EpayV2Gateway
from kameng.payments.models import (
    ChannelKind,
    NotificationOutcome,
    Payment,
    PaymentChannel,
    PaymentNotification,
    PaymentStatus,
    Refund,
    RefundDestination,
)
from kameng.payments.refunds import order_refund
from kameng.payments.services import (
    order_payment_start,
    payment_notification_process,
    wallet_topup_start,
)
from tests.factories import SkuFactory, UserFactory, stock_sku
from tests.payments.refund_support import order_paid_by_channel
from tests.payments.support import PID, epay_channel, pending_payment

pytestmark = pytest.mark.django_db

REFUSAL = "支付方式「易支付（模拟）」配置不完整，暂不可用，请换一种支付方式"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a misconfigured channel must not reach the network")

    monkeypatch.setattr(httpx, "get", refuse)
    monkeypatch.setattr(httpx, "post", refuse)
    monkeypatch.setattr(httpx.Client, "send", refuse)


def _keyless_epay(key: str | None = None) -> PaymentChannel:
    channel = epay_channel()
    channel.merchant_key = key  # saved without the admin form (the shell, a script, a channel from before)
    channel.save()
    return PaymentChannel.objects.get(pk=channel.pk)


@pytest.mark.parametrize("key", [None, "", "   "])
def test_top_up_with_a_keyless_epay_channel_is_refused_before_any_payment(key: str | None) -> None:
    channel = _keyless_epay(key)

    with pytest.raises(ChannelMisconfiguredError) as error:
        wallet_topup_start(user_id=UserFactory.create().pk, channel_code=channel.code, amount_text="10.00",
                           return_url="http://testserver/")

    assert (error.value.message, error.value.code) == (REFUSAL, "channel_misconfigured")
    assert error.value.extra == {"missing": ["商户密钥"]}
    assert Payment.objects.count() == 0


def test_order_payment_with_a_keyless_epay_channel_is_refused_and_the_order_stays_payable() -> None:
    channel = _keyless_epay()
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("8.00"))
    stock_sku(sku, 1)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order

    with pytest.raises(ChannelMisconfiguredError, match="配置不完整"):
        order_payment_start(order_id=order.pk, buyer_id=buyer.pk, channel_code=channel.code,
                            return_url="http://testserver/")

    assert Payment.objects.count() == 0
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT


def test_the_storefront_says_the_method_is_unavailable(client: Client) -> None:
    """Not offered anywhere (tests/web/test_channel_lists.py); posted from a page shown before it lost its key, the
    order's pay form says why, in the buyer's language."""
    channel = _keyless_epay()
    buyer = UserFactory.create()
    client.force_login(buyer)
    sku = SkuFactory.create(price=Decimal("8.00"))
    stock_sku(sku, 1)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order
    pay_url = reverse("web:order_pay", args=[order.number])

    response = client.post(pay_url, {"channel": channel.code})

    assert response.status_code == 400  # the storefront answers every refusal with a 4xx
    assert REFUSAL in response.content.decode()
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    response = client.post(pay_url, {"channel": channel.code})
    assert "The payment method “易支付（模拟）” is not fully set up" in response.content.decode()
    assert Payment.objects.count() == 0
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT


def test_a_top_up_posting_a_channel_missing_its_key_is_refused_by_the_form(client: Client) -> None:
    channel = _keyless_epay()
    client.force_login(UserFactory.create())

    response = client.post(reverse("web:topup"), {"channel": channel.code, "amount": "10.00"})

    assert response.status_code == 400
    assert Payment.objects.count() == 0


def test_a_notify_signed_with_the_empty_key_is_not_credited() -> None:
    channel = _keyless_epay()
    payment = pending_payment(user_id=UserFactory.create().pk, channel=channel, number="P1")
    params = {"pid": PID, "trade_no": "T1", "out_trade_no": "P1", "type": "alipay", "name": "钱包充值",
              "money": "10.00", "trade_status": "TRADE_SUCCESS"}
    forged = hashlib.md5(epay_canonical(params).encode()).hexdigest()

    answer = payment_notification_process(channel_code=channel.code, params={**params, "sign": forged})

    assert (answer.status, answer.body, answer.outcome) == (400, "fail", NotificationOutcome.REJECTED)
    record = PaymentNotification.objects.get()
    assert record.reason == "通道配置不完整（缺少商户密钥），通知未处理，待补全后由网关重发"
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert Journal.objects.count() == 0
    assert wallet_balance(user_id=payment.user_id) == Decimal("0.00")


def test_an_original_refund_through_a_keyless_channel_is_refused_before_money_moves() -> None:
    order, payment = order_paid_by_channel("30.00")
    PaymentChannel.objects.filter(pk=payment.channel_id).update(merchant_key=None)
    journals = Journal.objects.count()

    with pytest.raises(ChannelMisconfiguredError, match="配置不完整"):
        order_refund(order_id=order.pk, amount=Decimal("30.00"), destination=RefundDestination.ORIGINAL)

    assert Refund.objects.count() == 0
    assert Journal.objects.count() == journals
    order.refresh_from_db()
    assert (order.status, order.refunded_amount) == (OrderStatus.DELIVERED, Decimal("0.00"))


def test_the_adapters_refuse_blank_credentials_themselves() -> None:
    with pytest.raises(ChannelMisconfiguredError):
        EpayV1Gateway(gateway_url="http://gw/", merchant_id=PID, merchant_key="")
    with pytest.raises(ChannelMisconfiguredError):
        epay_sign({"a": "1"}, "")
    with pytest.raises(ChannelMisconfiguredError):
        EpayV2Gateway(gateway_url="http://gw/", merchant_id=PID, merchant_private_key="key",
                      platform_public_key=" ")


@pytest.mark.parametrize(("kind", "missing"), [
    (ChannelKind.EPAY_V2, ["平台公钥"]),
    (ChannelKind.ALIPAY, ["网关地址", "商户密钥"]),
    (ChannelKind.WECHAT_V3, ["应用 ID (appid)", "商户证书序列号", "平台公钥 ID", "APIv3 密钥"]),
])
def test_every_protocol_names_what_is_missing(kind: str, missing: list[str]) -> None:
    fields: dict[str, Any] = {"merchant_id": PID, "gateway_url": "https://gw.example.com/", "merchant_key": "key"}
    if kind == ChannelKind.EPAY_V2:
        fields |= {"platform_public_key": ""}
    if kind == ChannelKind.ALIPAY:
        fields |= {"gateway_url": "", "merchant_key": None, "platform_public_key": "pub"}
    if kind == ChannelKind.WECHAT_V3:
        fields |= {"platform_public_key": "pub"}
    channel = PaymentChannel.objects.create(code="c", name="通道", kind=kind, **fields)

    with pytest.raises(ChannelMisconfiguredError) as error:
        wallet_topup_start(user_id=UserFactory.create().pk, channel_code=channel.code, amount_text="10.00",
                           return_url="http://testserver/")

    assert error.value.extra == {"missing": missing}
