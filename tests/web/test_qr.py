"""Scan-to-pay on the storefront, against a fake QR gateway registered as the WeChat Pay adapter: the pay page draws
the QR code locally, polls, and shows the keys (or the new balance) once the notification has arrived."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from kameng.accounts.models import User
from kameng.catalog.models import Sku
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.payments.gateways import registry
from kameng.payments.gateways.base import (
    IncomingNotification,
    NotificationRejectedError,
    NotificationReply,
    PaymentStart,
    QueryResult,
    RefundResult,
    RefundStatus,
    VerifiedNotification,
)
from kameng.payments.models import ChannelKind, Payment, PaymentChannel, PaymentStatus
from tests.factories import SkuFactory, UserFactory, stock_sku

pytestmark = pytest.mark.django_db

QR_PAYLOAD = "weixin://wxpay/bizpayurl?pr=TEST"
TOKEN = "fake-gateway-token"


class FakeQrGateway:
    """A PaymentGateway that answers every start with a QR code and trusts notifications carrying TOKEN."""

    qr_code = QR_PAYLOAD

    def __init__(self, channel: PaymentChannel) -> None:
        self.channel = channel

    def start(self, *, out_trade_no: str, amount: Decimal, subject: str, notify_url: str, return_url: str,
              client_ip: str) -> PaymentStart:
        return PaymentStart(qr_code=self.qr_code, gateway_trade_no=f"WX{out_trade_no}")

    def verify_notification(self, notification: IncomingNotification) -> VerifiedNotification:
        params = notification.params
        if params.get("token") != TOKEN:
            raise NotificationRejectedError("签名校验失败", code="bad_signature")
        return VerifiedNotification(out_trade_no=params["out_trade_no"], gateway_trade_no=f"WX{params['out_trade_no']}",
                                    amount=Decimal(params["amount"]), is_paid=True, merchant_id="fake")

    def acknowledge(self) -> NotificationReply:
        return NotificationReply('{"code": "SUCCESS"}', 200, "application/json")

    def reject(self, reason: str) -> NotificationReply:
        return NotificationReply('{"code": "FAIL"}', 400, "application/json")

    def query(self, *, out_trade_no: str) -> QueryResult:
        return QueryResult(is_paid=False, amount=None, gateway_trade_no="")

    def refund(self, *, out_trade_no: str, gateway_trade_no: str, refund_no: str, amount: Decimal,
               total_amount: Decimal, reason: str) -> RefundResult:
        return RefundResult(status=RefundStatus.FAILED, message="not supported by the fake")


def build(channel: PaymentChannel) -> FakeQrGateway:  # the adapter-module interface of the registry
    return FakeQrGateway(channel)


@pytest.fixture(autouse=True)
def _fake_wechat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.ADAPTER_MODULES, ChannelKind.WECHAT_V3.value, __name__)


@pytest.fixture
def channel() -> PaymentChannel:
    # Every field the protocol requires is filled in (the services refuse a channel without them); the fake
    # adapter uses none of them.
    return PaymentChannel.objects.create(
        code="wxpay", name="微信支付", kind=ChannelKind.WECHAT_V3, pay_type="native", gateway_url="http://wx.invalid/",
        merchant_id="1900000109", app_id="wx1", merchant_key="unused", merchant_serial_no="unused",
        platform_public_key="unused", platform_key_id="PUB_KEY_ID_1", api_v3_key="0" * 32)


def _logged_in(client: Client) -> User:
    user = UserFactory.create()
    client.force_login(user)
    return user


def _stocked() -> tuple[Sku, list[str]]:
    sku = SkuFactory.create(price=Decimal("8.00"))
    return sku, stock_sku(sku, 3)


def _notify(client: Client, payment: Payment, token: str = TOKEN) -> int:
    response = client.post(reverse("payments:notify", args=[payment.channel.code]),
                           {"out_trade_no": payment.number, "amount": f"{payment.amount:.2f}", "token": token})
    return response.status_code


def _buy_with_qr(client: Client, sku: Sku) -> tuple[Order, Payment, str]:
    response = client.post(reverse("web:buy", args=[sku.product_id]),
                           {"sku": sku.pk, "quantity": 2, "request_id": "qr-1", "payment_method": "wxpay"})
    order = Order.objects.get()
    payment = Payment.objects.get()
    assert response["Location"] == reverse("web:order_payment", args=[order.number, payment.number])
    return order, payment, response["Location"]


def test_buying_with_a_qr_channel_shows_a_local_svg_qr_code_that_polls(client: Client, channel: PaymentChannel) -> None:
    _logged_in(client)
    sku, _ = _stocked()

    order, payment, pay_page = _buy_with_qr(client, sku)
    body = client.get(pay_page).content.decode()

    assert order.status == OrderStatus.PENDING_PAYMENT
    assert CardKey.objects.filter(order=order, status=CardKeyStatus.RESERVED).count() == 2
    assert payment.qr_code == QR_PAYLOAD
    assert re.search(r'<svg class="qr-code" role="img" data-testid="qr-code"[^>]*><path d="M', body)
    assert QR_PAYLOAD not in body  # drawn here, not sent to an image service or echoed
    assert "http://" not in body.split('<svg class="qr-code"', 1)[1].split("</svg>", 1)[0].replace(
        "http://www.w3.org/2000/svg", "")
    assert f'hx-get="{pay_page}" hx-trigger="every 2s"' in body
    assert 'data-testid="pay-amount">¥16.00<' in body
    assert "微信支付" in body
    countdown = re.search(r'datetime="([^"]+)" data-countdown', body)
    assert countdown is not None
    assert datetime.fromisoformat(countdown.group(1)) == order.expires_at
    assert 'data-testid="open-simulator"' not in body  # not an http payload


def test_the_status_fragment_flips_to_delivered_with_the_keys_after_the_notify(
        client: Client, channel: PaymentChannel) -> None:
    buyer = _logged_in(client)
    sku, secrets = _stocked()
    _, payment, pay_page = _buy_with_qr(client, sku)

    pending = client.get(pay_page, headers={"HX-Request": "true"}).content.decode()
    assert pending.startswith('<div id="pay-status"')
    assert 'data-status="pending_payment"' in pending
    assert "<svg" in pending
    assert 'data-testid="pay-countdown"' in pending  # the clock lives in the fragment, so it goes when paid

    assert _notify(client, payment) == 200

    delivered = client.get(pay_page, headers={"HX-Request": "true"}).content.decode()
    assert 'data-status="delivered"' in delivered
    assert "hx-trigger" not in delivered  # polling stops
    assert "data-countdown" not in delivered
    assert "<svg" not in delivered
    shown = re.findall(r'<code data-testid="card-key">([^<]+)</code>', delivered)
    assert len(set(shown)) == 2  # distinct keys
    assert set(shown) <= set(secrets)
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")


def test_a_rejected_notify_leaves_the_page_waiting(client: Client, channel: PaymentChannel) -> None:
    _logged_in(client)
    sku, _ = _stocked()
    _, payment, pay_page = _buy_with_qr(client, sku)

    assert _notify(client, payment, token="forged") == 400

    fragment = client.get(pay_page, headers={"HX-Request": "true"}).content.decode()
    assert 'data-status="pending_payment"' in fragment
    assert "every 2s" in fragment


def test_the_pending_order_page_leads_back_to_the_qr_code(client: Client, channel: PaymentChannel) -> None:
    _logged_in(client)
    sku, _ = _stocked()
    order, _, pay_page = _buy_with_qr(client, sku)

    body = client.get(reverse("web:order_detail", args=[order.number])).content.decode()

    assert f'href="{pay_page}" data-testid="continue-qr"' in body
    assert 'name="channel" value="wxpay"' in body

    asked = client.post(reverse("web:order_pay", args=[order.number]), {"channel": "wxpay"})
    assert asked.status_code == 409  # the first QR payment is still in flight: the buyer is asked first
    assert Payment.objects.count() == 1
    again = client.post(reverse("web:order_pay", args=[order.number]),
                        {"channel": "wxpay", "confirm_second_payment": "1"})

    newest = Payment.objects.order_by("-id").first()
    assert newest is not None
    assert Payment.objects.count() == 2
    assert again["Location"] == reverse("web:order_payment", args=[order.number, newest.number])


def test_another_buyers_pay_page_is_404(client: Client, channel: PaymentChannel) -> None:
    _logged_in(client)
    sku, _ = _stocked()
    _, _, pay_page = _buy_with_qr(client, sku)

    client.force_login(UserFactory.create())

    assert client.get(pay_page).status_code == 404
    assert client.get(pay_page, headers={"HX-Request": "true"}).status_code == 404


def test_a_payment_of_another_order_is_404_on_this_orders_pay_page(client: Client, channel: PaymentChannel) -> None:
    _logged_in(client)
    sku, _ = _stocked()
    order, payment, _ = _buy_with_qr(client, sku)
    client.post(reverse("web:buy", args=[sku.product_id]),
                {"sku": sku.pk, "quantity": 1, "request_id": "qr-2", "payment_method": "wxpay"})
    other = Order.objects.exclude(pk=order.pk).get()

    assert client.get(reverse("web:order_payment", args=[other.number, payment.number])).status_code == 404


def test_simulator_payloads_are_offered_as_a_link_in_the_demo(
        client: Client, channel: PaymentChannel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FakeQrGateway, "qr_code", "http://testserver/sim/wechat/pay/P1/")
    _logged_in(client)
    sku, _ = _stocked()
    _, _, pay_page = _buy_with_qr(client, sku)

    with override_settings(KAMENG_SIMULATORS_ENABLED=True):
        shown = client.get(pay_page).content.decode()
    with override_settings(KAMENG_SIMULATORS_ENABLED=False):
        hidden = client.get(pay_page).content.decode()

    assert 'href="http://testserver/sim/wechat/pay/P1/"' in shown
    assert "在模拟器中打开" in shown
    assert 'data-testid="open-simulator"' not in hidden


def test_top_up_with_a_qr_channel_shows_the_code_then_the_new_balance(client: Client, channel: PaymentChannel) -> None:
    buyer = _logged_in(client)

    wallet_page = client.get(reverse("web:wallet")).content.decode()
    assert 'value="wxpay"' in wallet_page
    response = client.post(reverse("web:topup"), {"amount": "30", "channel": "wxpay"})

    payment = Payment.objects.get()
    status_page = reverse("web:topup_status", args=[payment.number])
    assert response["Location"] == status_page
    body = client.get(status_page).content.decode()
    assert '<svg class="qr-code"' in body
    assert 'data-testid="topup-status" data-status="pending"' in body
    assert "every 2s" in body

    assert _notify(client, payment) == 200

    fragment = client.get(status_page, headers={"HX-Request": "true"}).content.decode()
    assert 'data-status="succeeded"' in fragment
    assert "<svg" not in fragment
    assert 'data-testid="topup-new-balance">¥30.00<' in fragment
    assert wallet_balance(user_id=buyer.pk) == Decimal("30.00")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED


def test_the_balance_channel_is_not_offered_for_top_ups(client: Client) -> None:
    _logged_in(client)
    PaymentChannel.objects.create(code="wallet", name="余额通道", kind=ChannelKind.BALANCE)

    body = client.get(reverse("web:wallet")).content.decode()

    assert "余额通道" not in body
