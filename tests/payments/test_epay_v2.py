"""易支付 V2 (RSA) adapter against the simulated V2 gateway: signing, the whole top-up, hostile notifications,
lost-notify recovery by query, and refunds.

Our adapter signs requests and verifies replies and notifies; the simulator (its own signing code, its own keys
generated at setup) does the other half. The adapter's HTTP calls and the simulator's notify travel through httpx
transports that deliver into this Django process.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qsl

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.test import Client
from django.utils import timezone
from pytest_django import DjangoCaptureOnCommitCallbacks as CaptureOnCommit

from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.orders.models import OrderStatus
from kameng.orders.services import order_checkout
from kameng.payments.gateways import epay_v2
from kameng.payments.gateways.base import (
    GatewayError,
    IncomingNotification,
    NotificationRejectedError,
    RefundResult,
    RefundStatus,
)
from kameng.payments.gateways.epay_v2 import (
    EpayV2Gateway,
    epay_v2_canonical,
    epay_v2_sign,
    epay_v2_signature_is_valid,
    load_private_key,
    load_public_key,
)
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
from kameng.payments.models import RefundStatus as OurRefundStatus
from kameng.payments.reconciliation import payments_reconcile_pending
from kameng.payments.refunds import order_refund, refunds_redrive_pending
from kameng.payments.services import (
    order_payment_start,
    payment_notification_process,
    wallet_topup_start,
)
from kameng.risk.models import RiskEvent
from kameng.simulators.epay_v2 import services as simulator_services
from kameng.simulators.epay_v2.models import (
    SimulatedEpayV2Merchant,
    SimulatedEpayV2Refund,
    SimulatedEpayV2Trade,
    SimulatedEpayV2TradeStatus,
)
from kameng.simulators.epay_v2.services import (
    NOTIFY_MAX_ATTEMPTS,
    epay_v2_merchant_key_pair_generate,
    simulated_epay_v2_merchant_create,
    simulated_epay_v2_notify_params,
    simulated_epay_v2_notify_send,
)
from kameng.simulators.epay_v2.signing import rsa_signature, with_signature
from tests.factories import SkuFactory, UserFactory, stock_sku
from tests.payments.support import django_transport, failing_transport, query_params

pytestmark = pytest.mark.django_db

PID = "2001"
CHANNEL_CODE = "epay-v2"
GATEWAY_URL = "http://testserver/sim/epay-v2/"
NOTIFY_URL = f"http://testserver/pay/notify/{CHANNEL_CODE}/"
RETURN_URL = "http://testserver/wallet/topups/return/"
MERCHANT_KEYS = epay_v2_merchant_key_pair_generate()  # once per run: 2048-bit generation is not free
STRANGER_KEYS = epay_v2_merchant_key_pair_generate()


def _into_django(request: httpx.Request) -> httpx.Response:
    """The adapter's POSTs go to the simulator's views through the test client; GETs (the notify) as support does."""
    if request.method != "POST":
        return django_transport().handle_request(request)
    response = Client().post(request.url.path, dict(parse_qsl(request.content.decode(), keep_blank_values=True)))
    return httpx.Response(response.status_code, content=response.content)


@pytest.fixture(autouse=True)
def _wired(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(epay_v2, "http_transport", httpx.MockTransport(_into_django))
    monkeypatch.setattr(simulator_services, "notify_transport", django_transport())


@pytest.fixture
def merchant() -> SimulatedEpayV2Merchant:
    return simulated_epay_v2_merchant_create(pid=PID, merchant_public_key=MERCHANT_KEYS.public_key, name="演示卡盟")


@pytest.fixture
def channel(merchant: SimulatedEpayV2Merchant) -> PaymentChannel:
    return PaymentChannel.objects.create(
        code=CHANNEL_CODE, name="易支付 V2（模拟）", kind=ChannelKind.EPAY_V2, gateway_url=GATEWAY_URL,
        merchant_id=PID, merchant_key=MERCHANT_KEYS.private_key, platform_public_key=merchant.platform_public_key,
        pay_type="alipay")


def _gateway(channel: PaymentChannel) -> EpayV2Gateway:
    return epay_v2.build(PaymentChannel.objects.get(pk=channel.pk))


def _pay_at_cashier(client: Client, redirect_url: str, capture: CaptureOnCommit) -> httpx.URL:
    cashier = client.get(redirect_url)
    assert cashier.status_code == 200
    match = re.search(r'<form method="post" action="([^"]+)"', cashier.content.decode())
    assert match
    with capture(execute=True):
        confirmed = client.post(match.group(1))
    assert confirmed.status_code == 302
    return httpx.URL(confirmed["Location"])


def _notify(params: dict[str, str]) -> str:
    return payment_notification_process(channel_code=CHANNEL_CODE, params=params, remote_addr="198.51.100.9").outcome


# --- signing --------------------------------------------------------------------------------------------------

def test_signature_covers_a_canonical_string_written_by_hand() -> None:
    params = {"pid": "2001", "type": "alipay", "out_trade_no": "X", "name": "测试", "money": "1.00",
              "timestamp": "1767225600", "param": "", "sign": "zzz", "sign_type": "RSA"}
    by_hand = "money=1.00&name=测试&out_trade_no=X&pid=2001&timestamp=1767225600&type=alipay"

    signature = epay_v2_sign(params, MERCHANT_KEYS.private_key)

    assert epay_v2_canonical(params) == by_hand
    public = serialization.load_der_public_key(base64.b64decode(MERCHANT_KEYS.public_key))
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(base64.b64decode(signature), by_hand.encode(), padding.PKCS1v15(), hashes.SHA256())
    # PKCS#1 v1.5 is deterministic: the simulator's independent code must produce the very same bytes.
    assert signature == rsa_signature(params, MERCHANT_KEYS.private_key)
    assert epay_v2_signature_is_valid({**params, "sign": signature}, MERCHANT_KEYS.public_key)
    assert not epay_v2_signature_is_valid({**params, "sign": signature, "money": "1"}, MERCHANT_KEYS.public_key)
    assert not epay_v2_signature_is_valid({**params, "sign": signature}, STRANGER_KEYS.public_key)


def test_integers_in_json_replies_are_signed_as_their_digits() -> None:
    reply = {"code": 0, "trade_no": "T", "flag": True, "nested": {"a": "b"}, "empty": None}

    assert epay_v2_canonical(reply) == "code=0&trade_no=T"


def test_keys_are_read_as_bare_base64_or_pem() -> None:
    private = load_private_key(MERCHANT_KEYS.private_key)
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    pkcs1_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption()).decode()
    wrapped = "\n".join(MERCHANT_KEYS.public_key[i:i + 64] for i in range(0, len(MERCHANT_KEYS.public_key), 64))

    signature = epay_v2_sign({"a": "1"}, pkcs1_pem)

    assert signature == epay_v2_sign({"a": "1"}, MERCHANT_KEYS.private_key)
    for public in (public_pem, wrapped, MERCHANT_KEYS.public_key):
        assert load_public_key(public).public_numbers() == private.public_key().public_numbers()
        assert epay_v2_signature_is_valid({"a": "1", "sign": signature}, public)


# --- the whole top-up -----------------------------------------------------------------------------------------

def test_topup_paid_at_the_simulator_credits_the_wallet_once_and_replays_are_duplicates(
        client: Client, channel: PaymentChannel, django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    buyer = UserFactory.create()

    started = wallet_topup_start(user_id=buyer.pk, channel_code=CHANNEL_CODE, amount_text="88.8",
                                 return_url=RETURN_URL, client_ip="203.0.113.7")

    trade = SimulatedEpayV2Trade.objects.get()
    assert started.start.redirect_url == f"{GATEWAY_URL}cashier/{trade.trade_no}/"
    assert (trade.out_trade_no, trade.money_raw, trade.method, trade.type, trade.client_ip) == (
        started.payment.number, "88.80", "web", "alipay", "203.0.113.7")
    started.payment.refresh_from_db()
    assert started.payment.gateway_trade_no == trade.trade_no

    returned = _pay_at_cashier(client, started.start.redirect_url, django_capture_on_commit_callbacks)

    payment = Payment.objects.get()
    trade.refresh_from_db()
    assert trade.status == SimulatedEpayV2TradeStatus.PAID
    assert (trade.notify_attempts, trade.last_notify_response) == (1, "HTTP 200: success")
    assert payment.status == PaymentStatus.SUCCEEDED
    assert wallet_balance(user_id=buyer.pk) == Decimal("88.80")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference=payment.number).count() == 1

    # The browser comes back with the same signed parameters, which the adapter accepts.
    assert str(returned).startswith(RETURN_URL + "?")
    verified = _gateway(channel).verify_notification(IncomingNotification(params=query_params(str(returned))))
    assert (verified.out_trade_no, verified.amount, verified.is_paid, verified.gateway_trade_no) == (
        payment.number, Decimal("88.80"), True, trade.trade_no)

    # The gateway sends the same notify five more times: nothing more is credited, no risk event.
    for _ in range(5):
        assert simulated_epay_v2_notify_send(trade_id=trade.pk, is_forced=True).is_delivered
    assert wallet_balance(user_id=buyer.pk) == Decimal("88.80")
    assert list(PaymentNotification.objects.order_by("id").values_list("outcome", flat=True)) == [
        NotificationOutcome.CREDITED] + [NotificationOutcome.DUPLICATE] * 5
    assert RiskEvent.objects.count() == 0
    assert ledger_problems() == []


def test_qrcode_channel_asks_for_scan_and_gets_a_code_to_show(channel: PaymentChannel) -> None:
    PaymentChannel.objects.filter(pk=channel.pk).update(pay_type="qrcode")
    buyer = UserFactory.create()

    started = wallet_topup_start(user_id=buyer.pk, channel_code=CHANNEL_CODE, amount_text="10",
                                 return_url=RETURN_URL)

    trade = SimulatedEpayV2Trade.objects.get()
    assert (trade.method, trade.type) == ("scan", "alipay")
    assert started.start.qr_code == f"{GATEWAY_URL}cashier/{trade.trade_no}/"
    assert started.start.redirect_url == ""
    started.payment.refresh_from_db()
    assert started.payment.qr_code == started.start.qr_code


# --- hostile notifications ------------------------------------------------------------------------------------

@pytest.fixture
def paid_trade(channel: PaymentChannel) -> SimulatedEpayV2Trade:
    """A 10.00 top-up the buyer paid at the gateway, whose genuine notify has not been sent yet."""
    buyer = UserFactory.create()
    wallet_topup_start(user_id=buyer.pk, channel_code=CHANNEL_CODE, amount_text="10.00", return_url=RETURN_URL)
    trade = SimulatedEpayV2Trade.objects.select_related("merchant").get()
    SimulatedEpayV2Trade.objects.filter(pk=trade.pk).update(status=SimulatedEpayV2TradeStatus.PAID,
                                                            paid_at=timezone.now())
    trade.refresh_from_db()
    return trade


def _forged(trade: SimulatedEpayV2Trade, **changes: str) -> dict[str, str]:
    """The genuine notify's fields with `changes`, re-signed by the real platform key."""
    fields = _unsigned(simulated_epay_v2_notify_params(trade))
    return with_signature({**fields, **changes}, trade.merchant.platform_signing_key)


def _unsigned(params: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in params.items() if key not in ("sign", "sign_type")}


HOSTILE_NOTIFIES: dict[str, Callable[[SimulatedEpayV2Trade], dict[str, str]]] = {
    "tampered-money": lambda trade: {**simulated_epay_v2_notify_params(trade), "money": "1000.00"},
    "unsigned": lambda trade: _unsigned(simulated_epay_v2_notify_params(trade)),
    "garbage-signature": lambda trade: {**simulated_epay_v2_notify_params(trade), "sign": "bm90IGEgc2lnbmF0dXJl"},
    "md5-sign-type": lambda trade: {**simulated_epay_v2_notify_params(trade), "sign_type": "MD5"},
    "wrong-pid": lambda trade: _forged(trade, pid="9999"),
    "stale-timestamp": lambda trade: simulated_epay_v2_notify_params(trade, timestamp=int(time.time()) - 360),
    "future-timestamp": lambda trade: simulated_epay_v2_notify_params(trade, timestamp=int(time.time()) + 360),
    "wrong-key": lambda trade: with_signature(_unsigned(simulated_epay_v2_notify_params(trade)),
                                              STRANGER_KEYS.private_key),
    "signed-other-amount": lambda trade: _forged(trade, money="9.99"),
}


def _hostile(trade: SimulatedEpayV2Trade, kind: str) -> dict[str, str]:
    return HOSTILE_NOTIFIES[kind](trade)


HOSTILE = list(HOSTILE_NOTIFIES)


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_notify_changes_nothing_and_is_a_risk_event(paid_trade: SimulatedEpayV2Trade, kind: str) -> None:
    payment = Payment.objects.get()

    outcome = _notify(_hostile(paid_trade, kind))

    assert outcome == NotificationOutcome.REJECTED
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert wallet_balance(user_id=payment.user_id) == Decimal("0.00")
    assert Journal.objects.count() == 0
    assert list(PaymentNotification.objects.values_list("outcome", flat=True)) == [NotificationOutcome.REJECTED]
    event = RiskEvent.objects.get()
    assert event.kind == "payment_notification_rejected"
    assert event.remote_addr == "198.51.100.9"
    # The genuine notify still works afterwards.
    assert _notify(simulated_epay_v2_notify_params(paid_trade)) == NotificationOutcome.CREDITED
    assert wallet_balance(user_id=payment.user_id) == Decimal("10.00")


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_replay_after_credit_changes_nothing(paid_trade: SimulatedEpayV2Trade, kind: str) -> None:
    payment = Payment.objects.get()
    assert _notify(simulated_epay_v2_notify_params(paid_trade)) == NotificationOutcome.CREDITED

    assert _notify(_hostile(paid_trade, kind)) == NotificationOutcome.REJECTED

    assert wallet_balance(user_id=payment.user_id) == Decimal("10.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP).count() == 1
    assert RiskEvent.objects.filter(kind="payment_notification_rejected").count() == 1


def test_adapter_rejections_say_why_in_chinese(paid_trade: SimulatedEpayV2Trade, channel: PaymentChannel) -> None:
    gateway = _gateway(channel)
    expected = {"tampered-money": "签名校验失败", "unsigned": "通知缺少签名", "wrong-pid": "商户号不匹配",
                "stale-timestamp": "时间戳", "wrong-key": "签名校验失败", "md5-sign-type": "不支持的签名类型"}

    for kind, message in expected.items():
        with pytest.raises(NotificationRejectedError, match=message):
            gateway.verify_notification(IncomingNotification(params=_hostile(paid_trade, kind)))


def test_notify_is_refused_when_the_channel_has_another_platform_key(paid_trade: SimulatedEpayV2Trade,
                                                                     channel: PaymentChannel) -> None:
    PaymentChannel.objects.filter(pk=channel.pk).update(platform_public_key=STRANGER_KEYS.public_key)

    assert _notify(simulated_epay_v2_notify_params(paid_trade)) == NotificationOutcome.REJECTED
    assert Payment.objects.get().status == PaymentStatus.PENDING
    assert RiskEvent.objects.count() == 1


# --- lost notify, query, refunds ------------------------------------------------------------------------------

def test_paid_trade_whose_notify_was_lost_is_credited_by_reconciliation(
        client: Client, channel: PaymentChannel, monkeypatch: pytest.MonkeyPatch,
        django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    monkeypatch.setattr(simulator_services, "notify_transport", failing_transport())
    buyer = UserFactory.create()
    lost = wallet_topup_start(user_id=buyer.pk, channel_code=CHANNEL_CODE, amount_text="66.60",
                              return_url=RETURN_URL)
    unpaid = wallet_topup_start(user_id=buyer.pk, channel_code=CHANNEL_CODE, amount_text="10.00",
                                return_url=RETURN_URL)
    _pay_at_cashier(client, lost.start.redirect_url, django_capture_on_commit_callbacks)
    trade = SimulatedEpayV2Trade.objects.get(out_trade_no=lost.payment.number)
    assert (trade.notify_attempts, trade.notified_at) == (NOTIFY_MAX_ATTEMPTS, None)
    assert payments_reconcile_pending() == 0  # too recent: the notify may still be on its way

    Payment.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    credited = payments_reconcile_pending()

    assert credited == 1
    lost.payment.refresh_from_db()
    unpaid.payment.refresh_from_db()
    assert (lost.payment.status, lost.payment.gateway_trade_no) == (PaymentStatus.SUCCEEDED, trade.trade_no)
    assert unpaid.payment.status == PaymentStatus.PENDING
    assert wallet_balance(user_id=buyer.pk) == Decimal("66.60")
    assert payments_reconcile_pending() == 0
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP).count() == 1


def test_query_of_an_unknown_order_is_not_paid_and_a_dead_gateway_is_an_error(
        channel: PaymentChannel, monkeypatch: pytest.MonkeyPatch) -> None:
    gateway = _gateway(channel)

    result = gateway.query(out_trade_no="P-NOPE")

    assert (result.is_paid, result.amount) == (False, None)
    monkeypatch.setattr(epay_v2, "http_transport", failing_transport())
    with pytest.raises(GatewayError):
        gateway.query(out_trade_no="P-NOPE")


def test_reply_signed_with_another_platform_key_is_not_believed(paid_trade: SimulatedEpayV2Trade,
                                                                channel: PaymentChannel) -> None:
    gateway = _gateway(channel)
    gateway.platform_public_key = STRANGER_KEYS.public_key

    with pytest.raises(GatewayError, match="签名校验失败"):
        gateway.query(out_trade_no=paid_trade.out_trade_no)
    assert Payment.objects.get().status == PaymentStatus.PENDING
    # With the channel's real platform key the same reply is believed and credits the payment.
    assert payments_reconcile_pending(older_than_seconds=0) == 1
    assert Payment.objects.get().status == PaymentStatus.SUCCEEDED


def test_refund_through_the_simulator_succeeds_once_per_refund_number_and_never_exceeds_paid(
        paid_trade: SimulatedEpayV2Trade, channel: PaymentChannel) -> None:
    gateway = _gateway(channel)
    payment = Payment.objects.get()

    def refund(refund_no: str, amount: str, gateway_trade_no: str = paid_trade.trade_no) -> RefundResult:
        return gateway.refund(out_trade_no=payment.number, gateway_trade_no=gateway_trade_no, refund_no=refund_no,
                              amount=Decimal(amount), total_amount=Decimal("10.00"), reason="测试退款")

    first = refund("R1", "6.00")
    again = refund("R1", "6.00")
    too_much = refund("R2", "4.01")
    rest = refund("R3", "4.00", gateway_trade_no="")  # by our order number when the trade number is unknown

    assert first.status == again.status == RefundStatus.SUCCEEDED
    assert first.gateway_refund_no
    assert again.gateway_refund_no == first.gateway_refund_no
    assert too_much.status == RefundStatus.FAILED
    assert "退款金额超出可退金额" in too_much.message
    assert rest.status == RefundStatus.SUCCEEDED
    paid_trade.refresh_from_db()
    assert paid_trade.refunded_money == Decimal("10.00")
    assert list(paid_trade.refunds.order_by("id").values_list("out_refund_no", "money")) == [
        ("R1", Decimal("6.00")), ("R3", Decimal("4.00"))]


def test_refund_query_finds_a_refund_made_and_not_one_never_sent(paid_trade: SimulatedEpayV2Trade,
                                                                 channel: PaymentChannel) -> None:
    gateway = _gateway(channel)
    payment = Payment.objects.get()
    made = gateway.refund(out_trade_no=payment.number, gateway_trade_no=paid_trade.trade_no, refund_no="R1",
                          amount=Decimal("6.00"), total_amount=Decimal("10.00"), reason="测试退款")

    found = gateway.refund_query(out_trade_no=payment.number, gateway_trade_no=paid_trade.trade_no, refund_no="R1")
    missing = gateway.refund_query(out_trade_no=payment.number, gateway_trade_no=paid_trade.trade_no, refund_no="R2")

    assert gateway.has_refund_query
    assert (found.status, found.gateway_refund_no) == (RefundStatus.SUCCEEDED, made.gateway_refund_no)
    assert (missing.status, missing.message) == (RefundStatus.NOT_FOUND, "退款记录不存在")


def test_an_order_refund_whose_answer_is_lost_is_found_by_query_and_paid_once(
        client: Client, channel: PaymentChannel, monkeypatch: pytest.MonkeyPatch,
        django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("25.00"))
    stock_sku(sku, 1)
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order
    started = order_payment_start(order_id=order.pk, buyer_id=buyer.pk, channel_code=CHANNEL_CODE,
                                  return_url=RETURN_URL)
    _pay_at_cashier(client, started.start.redirect_url, django_capture_on_commit_callbacks)
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    lost: list[str] = []

    def answer_lost_once(request: httpx.Request) -> httpx.Response:
        response = _into_django(request)  # the gateway does the work...
        if request.url.path.endswith("/api/pay/refund") and not lost:
            lost.append(request.url.path)
            raise httpx.ReadTimeout("timed out", request=request)  # ...and its answer never arrives
        return response

    monkeypatch.setattr(epay_v2, "http_transport", httpx.MockTransport(answer_lost_once))

    refund = order_refund(order_id=order.pk, amount=Decimal("25.00"), destination=RefundDestination.ORIGINAL)
    assert (refund.status, refund.attempts) == (OurRefundStatus.PENDING, 1)
    past = timezone.now() - timedelta(minutes=5)
    Refund.objects.filter(pk=refund.pk).update(created_at=past, last_sent_at=past)
    refunds_redrive_pending()

    refund.refresh_from_db()
    trade = SimulatedEpayV2Trade.objects.get()
    assert (refund.status, refund.attempts) == (OurRefundStatus.SUCCEEDED, 1)  # found by query, not sent again
    assert refund.gateway_refund_no == SimulatedEpayV2Refund.objects.get().refund_no
    assert trade.refunded_money == Decimal("25.00")
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")


def test_create_refused_by_the_gateway_is_a_gateway_error_and_nothing_is_started(channel: PaymentChannel) -> None:
    PaymentChannel.objects.filter(pk=channel.pk).update(merchant_key=STRANGER_KEYS.private_key)
    buyer = UserFactory.create()

    with pytest.raises(GatewayError, match="支付网关下单失败：签名校验失败"):
        wallet_topup_start(user_id=buyer.pk, channel_code=CHANNEL_CODE, amount_text="10", return_url=RETURN_URL)

    assert SimulatedEpayV2Trade.objects.count() == 0
    assert Payment.objects.get().gateway_trade_no == ""
