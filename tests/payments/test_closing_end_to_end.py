"""Closing payments that can no longer pay, against the simulated gateways: Alipay and WeChat Pay close the trade
so its QR code can no longer be paid; epay has no close call, and a payment made there after we closed ours is
still credited when its notification comes."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import httpx
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django import DjangoCaptureOnCommitCallbacks as CaptureOnCommit
from pytest_django.live_server_helper import LiveServer

from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_cancel, order_checkout, orders_expire_due
from kameng.payments.gateways import alipay as alipay_adapter
from kameng.payments.models import ChannelKind, Payment, PaymentChannel, PaymentCloseReason, PaymentStatus
from kameng.payments.reconciliation import payments_reconcile_pending
from kameng.payments.services import order_payment_start, wallet_topup_start
from kameng.simulators import services as epay_simulator
from kameng.simulators.alipay import services as alipay_simulator
from kameng.simulators.alipay.models import SimulatedAlipayApp, SimulatedAlipayTrade, SimulatedAlipayTradeStatus
from kameng.simulators.alipay.services import alipay_app_key_pair_generate, simulated_alipay_app_create
from kameng.simulators.alipay.signing import KeyPair
from kameng.simulators.models import SimulatedEpayTrade, SimulatedTradeStatus
from kameng.simulators.wechat import services as wechat_simulator
from kameng.simulators.wechat.models import SimulatedWechatTrade, TradeState
from tests.factories import SkuFactory, UserFactory, stock_sku
from tests.payments.support import CHANNEL_CODE, RETURN_URL, django_transport, epay_channel, epay_merchant
from tests.payments.test_wechat import failing_notify_transport, route_wechatpayv3, simulated_channel

NOTIFY_URL = "http://testserver/pay/notify/{code}/"


def _into_django(request: httpx.Request) -> httpx.Response:
    target = request.url.raw_path.decode()
    if request.method == "GET":
        response = Client().get(target)
    else:
        response = Client().post(target, data=request.content,
                                 content_type=request.headers.get("content-type", "application/octet-stream"))
    return httpx.Response(response.status_code, content=response.content,
                          headers={"content-type": response.get("Content-Type", "text/plain")})


@pytest.fixture(scope="module")
def app_keys() -> KeyPair:
    return alipay_app_key_pair_generate()


@pytest.fixture
def alipay_channel(app_keys: KeyPair, monkeypatch: pytest.MonkeyPatch) -> PaymentChannel:
    """A precreate (scan) channel on the simulated Alipay, both HTTP directions kept in this process."""
    monkeypatch.setattr(alipay_adapter, "server_transport", httpx.MockTransport(_into_django))
    monkeypatch.setattr(alipay_simulator, "notify_transport", httpx.MockTransport(_into_django))
    app: SimulatedAlipayApp = simulated_alipay_app_create(app_id="2021000100000009",
                                                          app_public_key=app_keys.public_key, name="演示卡盟")
    return PaymentChannel.objects.create(
        code="alipay", name="支付宝", kind=ChannelKind.ALIPAY, gateway_url="http://testserver/sim/alipay/gateway.do",
        merchant_id=app.app_id, merchant_key=app_keys.private_key, platform_public_key=app.platform_public_key,
        app_id=app.seller_id, pay_type="precreate")


def _pending_order(price: str = "15.00") -> Order:
    sku = SkuFactory.create(price=Decimal(price))
    stock_sku(sku, 2)
    return order_checkout(buyer_id=UserFactory.create().pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order


def _pay_order_with(order: Order, channel: PaymentChannel) -> tuple[Payment, str]:
    started = order_payment_start(order_id=order.pk, buyer_id=order.buyer_id, channel_code=channel.code,
                                  return_url=RETURN_URL)
    assert started.payment is not None
    return started.payment, started.start.qr_code


def _expire(order: Order) -> None:
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert orders_expire_due() == 1
    Payment.objects.filter(order=order).update(created_at=timezone.now() - timedelta(minutes=20))


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.mark.django_db
def test_alipay_trade_of_an_expired_order_is_closed_and_its_qr_code_can_no_longer_be_paid(
        alipay_channel: PaymentChannel, django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    order = _pending_order()
    payment, qr_code = _pay_order_with(order, alipay_channel)
    phone = Client()
    assert "确认支付" in phone.get(_path(qr_code)).content.decode()  # scanned before the order expired
    _expire(order)

    assert payments_reconcile_pending() == 0

    payment.refresh_from_db()
    assert (payment.status, payment.close_reason) == (PaymentStatus.CLOSED, PaymentCloseReason.ORDER_EXPIRED)
    assert payment.close_detail == "最终查询：未支付；支付宝交易已关闭"
    trade = SimulatedAlipayTrade.objects.get(out_trade_no=payment.number)
    assert trade.status == SimulatedAlipayTradeStatus.TRADE_CLOSED
    with django_capture_on_commit_callbacks(execute=True):
        refused = phone.post(reverse("simulators:alipay_cashier_pay", args=[trade.trade_no]))
    assert refused.status_code == 400
    assert "交易已关闭" in refused.content.decode()
    assert wallet_balance(user_id=order.buyer_id) == Decimal("0.00")
    assert not Journal.objects.filter(kind=JournalKind.WALLET_TOPUP).exists()


@pytest.mark.django_db
def test_alipay_trade_paid_with_its_notification_lost_is_credited_by_the_final_query_not_closed(
        alipay_channel: PaymentChannel, monkeypatch: pytest.MonkeyPatch,
        django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    monkeypatch.setattr(alipay_simulator, "notify_transport",
                        httpx.MockTransport(lambda request: httpx.Response(502, text="bad gateway")))
    order = _pending_order()
    payment, _ = _pay_order_with(order, alipay_channel)
    trade = SimulatedAlipayTrade.objects.get(out_trade_no=payment.number)
    with django_capture_on_commit_callbacks(execute=True):
        Client().post(reverse("simulators:alipay_cashier_pay", args=[trade.trade_no]))
    _expire(order)  # paid in time, but the notification never came and the order ran out of time

    assert payments_reconcile_pending() == 1
    assert payments_reconcile_pending() == 0

    payment.refresh_from_db()
    assert (payment.status, payment.gateway_trade_no) == (PaymentStatus.SUCCEEDED, trade.trade_no)
    trade.refresh_from_db()
    assert trade.status == SimulatedAlipayTradeStatus.TRADE_SUCCESS
    assert wallet_balance(user_id=order.buyer_id) == Decimal("15.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference=payment.number).count() == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    assert "款项已存入您的钱包余额" in order.events.latest("id").message
    assert ledger_problems() == []


@pytest.mark.django_db
def test_wechat_trade_of_a_cancelled_order_is_closed_and_its_code_can_no_longer_be_paid(
        client: Client, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    route_wechatpayv3(monkeypatch)
    monkeypatch.setattr(wechat_simulator, "notify_transport", failing_notify_transport())
    order = _pending_order()
    payment, _ = _pay_order_with(order, simulated_channel())
    trade = SimulatedWechatTrade.objects.get(out_trade_no=payment.number)
    order_cancel(order_id=order.pk, buyer_id=order.buyer_id)
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(minutes=2))

    assert payments_reconcile_pending() == 0

    payment.refresh_from_db()
    assert (payment.status, payment.close_reason) == (PaymentStatus.CLOSED, PaymentCloseReason.ORDER_CANCELLED)
    assert payment.close_detail == "最终查询：未支付；微信支付订单已关闭"
    trade.refresh_from_db()
    assert trade.trade_state == TradeState.CLOSED
    with django_capture_on_commit_callbacks(execute=True):
        refused = client.post(reverse("simulators:sim_wechat:scan_pay", args=[trade.transaction_id]))
    assert refused.status_code == 400
    trade.refresh_from_db()
    assert (trade.trade_state, trade.notify_attempts) == (TradeState.CLOSED, 0)
    assert wallet_balance(user_id=order.buyer_id) == Decimal("0.00")


@pytest.mark.django_db(transaction=True)
def test_epay_has_no_close_and_a_top_up_paid_after_it_was_closed_is_still_credited_once(
        live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Epay's query goes over real HTTP to the simulator in the live server; its notification is delivered into
    this process. The buyer left the cashier open for a day, then paid."""
    monkeypatch.setattr(epay_simulator, "notify_transport", django_transport())
    buyer = UserFactory.create()
    epay_merchant()
    epay_channel(gateway_url=live_server.url + "/sim/epay/")
    started = wallet_topup_start(user_id=buyer.pk, channel_code=CHANNEL_CODE, amount_text="45.00",
                                 return_url=RETURN_URL)
    with httpx.Client(timeout=10.0) as browser:
        cashier = browser.get(started.start.redirect_url)
        action = re.search(r'<form method="post" action="([^"]+)"', cashier.text)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', cashier.text)
        assert action
        assert token
        Payment.objects.filter(pk=started.payment.pk).update(created_at=timezone.now() - timedelta(hours=25))

        assert payments_reconcile_pending() == 0
        payment = Payment.objects.get(pk=started.payment.pk)
        assert (payment.status, payment.close_reason) == (PaymentStatus.CLOSED, PaymentCloseReason.TOPUP_UNPAID)
        assert payment.close_detail == "最终查询：未支付；该通道没有关单接口"

        confirmed = browser.post(live_server.url + action.group(1), data={"csrfmiddlewaretoken": token.group(1)})
    assert confirmed.status_code == 302

    trade = SimulatedEpayTrade.objects.get(out_trade_no=payment.number)
    assert (trade.status, trade.last_notify_response) == (SimulatedTradeStatus.PAID, "HTTP 200: success")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert wallet_balance(user_id=buyer.pk) == Decimal("45.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference=payment.number).count() == 1
    assert payments_reconcile_pending() == 0
    assert wallet_balance(user_id=buyer.pk) == Decimal("45.00")
    assert ledger_problems() == []
