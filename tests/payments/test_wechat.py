"""WeChat Pay v3 Native: our adapter against notifications built here with `cryptography` (code nobody here
wrote does the AES-GCM and the RSA), and end to end against the simulated WeChat Pay through wechatpayv3.

The library's HTTP calls (module-level `requests.get/post`) are routed into this Django process by a requests
Session with an adapter mounted for http://testserver/; the simulator's notification travels through httpx and is
delivered into the storefront's notify view the same way.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import requests
import wechatpayv3.core
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django import DjangoCaptureOnCommitCallbacks as CaptureOnCommit
from requests.structures import CaseInsensitiveDict

from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import wallet_balance
from kameng.payments.gateways.base import CloseStatus, GatewayError, RefundStatus
from kameng.payments.gateways.wechat import WechatPayGateway, build
from kameng.payments.models import (
    ChannelKind,
    NotificationOutcome,
    Payment,
    PaymentChannel,
    PaymentNotification,
    PaymentPurpose,
    PaymentStatus,
)
from kameng.payments.reconciliation import payments_reconcile_pending
from kameng.payments.services import payment_notification_process, wallet_topup_start
from kameng.risk.models import RiskEvent
from kameng.simulators.wechat import services as simulator_services
from kameng.simulators.wechat.models import SimulatedWechatRefund, SimulatedWechatTrade, TradeState
from kameng.simulators.wechat.services import (
    NOTIFY_MAX_ATTEMPTS,
    simulated_wechat_merchant_create,
    simulated_wechat_notify_send,
    wechat_merchant_key_pair_generate,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
CHANNEL_CODE = "wechat"
API_ROOT = "http://testserver/sim/wechat"
NOTIFY_URL = "http://testserver/pay/notify/wechat/"
RETURN_URL = "http://testserver/wallet/topups/return/"
PLATFORM_KEY_ID = "PUB_KEY_ID_0114232134912410000000000000"


# -- counterparts: keys, notifications and transports built without our code ------------------------------------

def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass
class WechatSide:
    """What WeChat holds for the merchant in the notification tests: its signing key and the APIv3 key."""

    platform_key: rsa.RSAPrivateKey
    api_v3_key: str
    key_id: str = PLATFORM_KEY_ID


def transaction(out_trade_no: str, total: int, **changes: Any) -> dict[str, Any]:
    return {"mchid": MCHID, "appid": APPID, "out_trade_no": out_trade_no, "transaction_id": "4200000001202611260001",
            "trade_type": "NATIVE", "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "OTHERS",
            "attach": "", "success_time": "2026-11-26T10:00:00+08:00", "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9"},
            "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
            **changes}


def notify(side: WechatSide, plaintext: dict[str, Any], *, timestamp: int | None = None,
           signing_key: rsa.RSAPrivateKey | None = None) -> tuple[dict[str, str], bytes]:
    """A TRANSACTION.SUCCESS notification exactly as PROTOCOLS.md §3 describes it: headers and raw body."""
    nonce = secrets.token_hex(6)  # 12 characters
    ciphertext = AESGCM(side.api_v3_key.encode()).encrypt(nonce.encode(), json.dumps(plaintext).encode(),
                                                          b"transaction")
    body = json.dumps({
        "id": "EV-" + secrets.token_hex(8), "create_time": "2026-11-26T10:00:01+08:00",
        "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
        "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM", "associated_data": "transaction",
                     "nonce": nonce, "ciphertext": base64.b64encode(ciphertext).decode()},
    }, ensure_ascii=False).encode()
    header_timestamp = str(int(time.time()) if timestamp is None else timestamp)
    header_nonce = secrets.token_hex(16)
    message = f"{header_timestamp}\n{header_nonce}\n".encode() + body + b"\n"
    signature = (signing_key or side.platform_key).sign(message, padding.PKCS1v15(), hashes.SHA256())
    return {"Wechatpay-Timestamp": header_timestamp, "Wechatpay-Nonce": header_nonce,
            "Wechatpay-Signature": base64.b64encode(signature).decode(), "Wechatpay-Serial": side.key_id,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}, body


class DjangoAdapter(requests.adapters.BaseAdapter):
    """Delivers a `requests` call to this Django process, as the network would to the simulator."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        url = urlsplit(request.url or "")
        body = request.body or b""
        headers = {name: value for name, value in request.headers.items()
                   if name.lower() not in ("content-type", "content-length", "host")}
        answer = Client().generic(request.method or "GET", url.path + (f"?{url.query}" if url.query else ""),
                                  data=body.encode() if isinstance(body, str) else body,
                                  content_type=request.headers.get("Content-Type", ""), headers=headers)
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(dict(answer.headers.items()))
        response._content = answer.content
        response.encoding = requests.utils.get_encoding_from_headers(response.headers)
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


class RefusingAdapter(requests.adapters.BaseAdapter):
    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        raise requests.ConnectionError("connection refused")

    def close(self) -> None:
        pass


def route_wechatpayv3(monkeypatch: pytest.MonkeyPatch, adapter: requests.adapters.BaseAdapter | None = None) -> None:
    """wechatpayv3 calls `requests.get/post`; give it a Session (same signatures) that reaches the test server."""
    session = requests.Session()
    session.mount("http://", adapter or DjangoAdapter())
    monkeypatch.setattr(wechatpayv3.core, "requests", session)


def _notify_into_django(request: httpx.Request) -> httpx.Response:
    answer = Client().generic("POST", request.url.path, data=request.content,
                              content_type=request.headers["content-type"],
                              headers={name: value for name, value in request.headers.items()
                                       if name.lower().startswith("wechatpay")})
    return httpx.Response(answer.status_code, content=answer.content)


def notify_transport() -> httpx.MockTransport:
    return httpx.MockTransport(_notify_into_django)


def failing_notify_transport() -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    return httpx.MockTransport(handler)


# -- channels ------------------------------------------------------------------------------------------------------

def channel_for(side: WechatSide, *, gateway_url: str = API_ROOT) -> PaymentChannel:
    merchant_key = rsa_key()
    return PaymentChannel.objects.create(
        code=CHANNEL_CODE, name="微信支付", kind=ChannelKind.WECHAT_V3, gateway_url=gateway_url, merchant_id=MCHID,
        app_id=APPID, merchant_key=private_pem(merchant_key), merchant_serial_no="5157F09EFDC096DE15EBE81A47057A72",
        platform_public_key=public_pem(side.platform_key), platform_key_id=side.key_id,
        api_v3_key=side.api_v3_key, pay_type="native")


def simulated_channel(*, gateway_url: str = API_ROOT) -> PaymentChannel:
    """A merchant registered with the simulated WeChat Pay and the channel configured from what it answered."""
    merchant_keys = wechat_merchant_key_pair_generate()
    credentials = simulated_wechat_merchant_create(mchid=MCHID, appid=APPID,
                                                   merchant_public_key_pem=merchant_keys.public_key_pem,
                                                   merchant_serial_no=merchant_keys.serial_no)
    return PaymentChannel.objects.create(
        code=CHANNEL_CODE, name="微信支付", kind=ChannelKind.WECHAT_V3, gateway_url=gateway_url, merchant_id=MCHID,
        app_id=APPID, merchant_key=merchant_keys.private_key_pem, merchant_serial_no=merchant_keys.serial_no,
        platform_public_key=credentials.platform_public_key_pem,
        platform_key_id=credentials.platform_public_key_id, api_v3_key=credentials.api_v3_key, pay_type="native")


@pytest.fixture
def side() -> WechatSide:
    return WechatSide(platform_key=rsa_key(), api_v3_key=secrets.token_hex(16))


def pending(user_id: int, channel: PaymentChannel, amount: str = "12.34", number: str = "P20261126000001") -> Payment:
    return Payment.objects.create(number=number, user_id=user_id, channel=channel,
                                  purpose=PaymentPurpose.WALLET_TOPUP, amount=Decimal(amount))


def deliver(headers: dict[str, str], body: bytes) -> Any:
    return payment_notification_process(channel_code=CHANNEL_CODE, headers=headers, body=body,
                                        remote_addr="203.0.113.9")


# -- notifications built with cryptography ---------------------------------------------------------------------

def test_notification_built_with_cryptography_is_accepted_and_credits_once(side: WechatSide) -> None:
    buyer = UserFactory.create()
    payment = pending(buyer.pk, channel_for(side))
    headers, body = notify(side, transaction(payment.number, 1234))

    answer = deliver(headers, body)

    assert (answer.outcome, answer.status, answer.body) == (NotificationOutcome.CREDITED, 204, "")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.gateway_trade_no == "4200000001202611260001"
    assert wallet_balance(user_id=buyer.pk) == Decimal("12.34")
    assert RiskEvent.objects.count() == 0


def test_notification_replayed_five_times_credits_once(side: WechatSide) -> None:
    buyer = UserFactory.create()
    payment = pending(buyer.pk, channel_for(side))
    headers, body = notify(side, transaction(payment.number, 1234))

    outcomes = [deliver(headers, body) for _ in range(5)]

    assert [answer.outcome for answer in outcomes] == [
        NotificationOutcome.CREDITED, *[NotificationOutcome.DUPLICATE] * 4]
    assert {answer.status for answer in outcomes} == {204}
    assert wallet_balance(user_id=buyer.pk) == Decimal("12.34")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference=payment.number).count() == 1
    assert RiskEvent.objects.count() == 0


def _tampered(side: WechatSide, number: str) -> tuple[dict[str, str], bytes]:
    headers, body = notify(side, transaction(number, 1234))
    return headers, body.replace(b'"summary": "', b'"summary": "X')


def _wrong_signature(side: WechatSide, number: str) -> tuple[dict[str, str], bytes]:
    return notify(side, transaction(number, 1234), signing_key=rsa_key())


def _stale(side: WechatSide, number: str) -> tuple[dict[str, str], bytes]:
    return notify(side, transaction(number, 1234), timestamp=int(time.time()) - 600)


def _signtest(side: WechatSide, number: str) -> tuple[dict[str, str], bytes]:
    headers, body = notify(side, transaction(number, 1234))
    return {**headers, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]}, body


def _unknown_serial(side: WechatSide, number: str) -> tuple[dict[str, str], bytes]:
    other = WechatSide(platform_key=side.platform_key, api_v3_key=side.api_v3_key, key_id="PUB_KEY_ID_0199")
    return notify(other, transaction(number, 1234))


def _unsigned(side: WechatSide, number: str) -> tuple[dict[str, str], bytes]:
    _, body = notify(side, transaction(number, 1234))
    return {}, body


def _other_api_v3_key(side: WechatSide, number: str) -> tuple[dict[str, str], bytes]:
    return notify(WechatSide(platform_key=side.platform_key, api_v3_key=secrets.token_hex(16)),
                  transaction(number, 1234))


def _other_merchant(side: WechatSide, number: str) -> tuple[dict[str, str], bytes]:
    return notify(side, transaction(number, 1234, mchid="1900000999"))


def _other_appid(side: WechatSide, number: str) -> tuple[dict[str, str], bytes]:
    return notify(side, transaction(number, 1234, appid="wx0000000000000000"))


def _other_amount(side: WechatSide, number: str) -> tuple[dict[str, str], bytes]:
    """Re-encrypted and validly signed, but for 1 fen: only the amount check can catch it."""
    return notify(side, transaction(number, 1))


def _unknown_order(side: WechatSide, number: str) -> tuple[dict[str, str], bytes]:
    return notify(side, transaction("P99999999999999", 1234))


@pytest.mark.parametrize(("forge", "reason"), [
    (_tampered, "签名校验失败"), (_wrong_signature, "签名校验失败"), (_stale, "时间戳已过期"),
    (_signtest, "SIGNTEST"), (_unknown_serial, "Wechatpay-Serial"), (_unsigned, "缺少微信支付签名头"),
    (_other_api_v3_key, "解密失败"), (_other_merchant, "mchid"), (_other_appid, "appid"),
    (_other_amount, "金额 0.01"), (_unknown_order, "商户订单号不存在（unknown out_trade_no）"),
])
def test_forged_notification_changes_nothing_and_is_a_risk_event(side: WechatSide, forge: Any, reason: str) -> None:
    buyer = UserFactory.create()
    payment = pending(buyer.pk, channel_for(side))
    headers, body = forge(side, payment.number)

    answer = deliver(headers, body)

    assert answer.outcome == NotificationOutcome.REJECTED
    assert answer.status == 400
    assert answer.content_type == "application/json"
    reply = json.loads(answer.body)
    assert reply["code"] == "FAIL"
    assert reason in reply["message"]
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")
    assert Journal.objects.count() == 0
    event = RiskEvent.objects.get()
    assert event.kind == "payment_notification_rejected"
    assert reason in event.message
    assert PaymentNotification.objects.get().outcome == NotificationOutcome.REJECTED


def test_other_amount_then_the_genuine_notification_credits_the_real_amount(side: WechatSide) -> None:
    buyer = UserFactory.create()
    payment = pending(buyer.pk, channel_for(side))

    assert deliver(*_other_amount(side, payment.number)).outcome == NotificationOutcome.REJECTED
    assert deliver(*notify(side, transaction(payment.number, 1234))).outcome == NotificationOutcome.CREDITED

    assert wallet_balance(user_id=buyer.pk) == Decimal("12.34")
    assert RiskEvent.objects.count() == 1


def test_notification_of_an_unpaid_state_is_acknowledged_without_credit(side: WechatSide) -> None:
    buyer = UserFactory.create()
    payment = pending(buyer.pk, channel_for(side))

    answer = deliver(*notify(side, transaction(payment.number, 1234, trade_state="CLOSED")))

    assert (answer.outcome, answer.status) == (NotificationOutcome.NOT_PAID, 204)
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")
    assert RiskEvent.objects.count() == 0


def test_notification_through_the_storefront_view(side: WechatSide, client: Client) -> None:
    buyer = UserFactory.create()
    payment = pending(buyer.pk, channel_for(side))
    headers, body = notify(side, transaction(payment.number, 1234))

    response = client.post(f"/pay/notify/{CHANNEL_CODE}/", data=body, content_type="application/json",
                           headers=headers)

    assert response.status_code == 204
    assert wallet_balance(user_id=buyer.pk) == Decimal("12.34")


# -- against the simulated WeChat Pay --------------------------------------------------------------------------

def _scan_and_confirm(client: Client, qr_code: str, capture: CaptureOnCommit) -> None:
    """The buyer scans the code (opens code_url) and presses 确认支付."""
    page = client.get(qr_code)
    assert page.status_code == 200
    action = re.search(r'<form method="post" action="([^"]+)"', page.content.decode())
    assert action
    with capture(execute=True):
        confirmed = client.post(action.group(1))
    assert confirmed.status_code == 200
    assert "支付成功" in confirmed.content.decode()


def test_native_order_scanned_and_confirmed_credits_the_wallet_once(
        client: Client, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    route_wechatpayv3(monkeypatch)
    monkeypatch.setattr(simulator_services, "notify_transport", notify_transport())
    buyer = UserFactory.create()
    simulated_channel()

    started = wallet_topup_start(user_id=buyer.pk, channel_code=CHANNEL_CODE, amount_text="88.8",
                                 return_url=RETURN_URL, client_ip="203.0.113.7")

    assert started.start.qr_code.startswith(API_ROOT + "/scan/")
    trade = SimulatedWechatTrade.objects.get()
    assert (trade.out_trade_no, trade.total, trade.payer_client_ip) == (started.payment.number, 8880, "203.0.113.7")
    page = client.get(started.start.qr_code)
    assert "¥88.80" in page.content.decode()

    _scan_and_confirm(client, started.start.qr_code, django_capture_on_commit_callbacks)

    trade.refresh_from_db()
    payment = started.payment
    payment.refresh_from_db()
    assert trade.trade_state == TradeState.SUCCESS
    assert (trade.notify_attempts, trade.last_notify_response) == (1, "HTTP 204: ")
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.gateway_trade_no == trade.transaction_id
    assert wallet_balance(user_id=buyer.pk) == Decimal("88.80")

    # WeChat sends it again (it expects duplicates): acknowledged, nothing more credited.
    again = simulated_wechat_notify_send(trade_id=trade.pk, is_forced=True)
    assert again.is_delivered
    assert wallet_balance(user_id=buyer.pk) == Decimal("88.80")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP).count() == 1
    assert list(PaymentNotification.objects.order_by("id").values_list("outcome", flat=True)) == [
        NotificationOutcome.CREDITED, NotificationOutcome.DUPLICATE]
    assert RiskEvent.objects.count() == 0


def test_lost_notification_is_recovered_by_query(
        client: Client, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    route_wechatpayv3(monkeypatch)
    monkeypatch.setattr(simulator_services, "notify_transport", failing_notify_transport())
    buyer = UserFactory.create()
    simulated_channel()
    lost = wallet_topup_start(user_id=buyer.pk, channel_code=CHANNEL_CODE, amount_text="66.60",
                              return_url=RETURN_URL)
    unpaid = wallet_topup_start(user_id=buyer.pk, channel_code=CHANNEL_CODE, amount_text="10.00",
                                return_url=RETURN_URL)
    _scan_and_confirm(client, lost.start.qr_code, django_capture_on_commit_callbacks)
    trade = SimulatedWechatTrade.objects.get(out_trade_no=lost.payment.number)
    assert (trade.notify_attempts, trade.notified_at) == (NOTIFY_MAX_ATTEMPTS, None)
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")
    Payment.objects.update(created_at=timezone.now() - timedelta(minutes=5))

    assert payments_reconcile_pending() == 1

    lost.payment.refresh_from_db()
    unpaid.payment.refresh_from_db()
    assert lost.payment.status == PaymentStatus.SUCCEEDED
    assert lost.payment.gateway_trade_no == trade.transaction_id
    assert unpaid.payment.status == PaymentStatus.PENDING
    assert wallet_balance(user_id=buyer.pk) == Decimal("66.60")
    assert payments_reconcile_pending() == 0
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP).count() == 1


def test_query_of_an_order_wechat_never_saw_is_not_paid(monkeypatch: pytest.MonkeyPatch) -> None:
    route_wechatpayv3(monkeypatch)
    gateway = build(simulated_channel())

    result = gateway.query(out_trade_no="P20261126999999")

    assert (result.is_paid, result.amount, result.gateway_trade_no) == (False, None, "")


def _paid_topup_of_50(client: Client, monkeypatch: pytest.MonkeyPatch,
                      capture: CaptureOnCommit) -> tuple[Payment, Any]:
    """A ¥50.00 top-up paid through the simulator, and the channel's adapter: what a refund test starts from."""
    route_wechatpayv3(monkeypatch)
    monkeypatch.setattr(simulator_services, "notify_transport", notify_transport())
    channel = simulated_channel()
    started = wallet_topup_start(user_id=UserFactory.create().pk, channel_code=CHANNEL_CODE, amount_text="50.00",
                                 return_url=RETURN_URL)
    _scan_and_confirm(client, started.start.qr_code, capture)
    payment = started.payment
    payment.refresh_from_db()
    return payment, build(channel)


def test_refund_happens_once_per_out_refund_no(
        client: Client, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    payment, gateway = _paid_topup_of_50(client, monkeypatch, django_capture_on_commit_callbacks)

    def refund(number: str, amount: str) -> Any:
        return gateway.refund(out_trade_no=payment.number, gateway_trade_no=payment.gateway_trade_no,
                              refund_no=number, amount=Decimal(amount), total_amount=payment.amount, reason="缺货退款")

    first, again = refund("R20261126000001", "30.00"), refund("R20261126000001", "30.00")
    too_much = refund("R20261126000002", "30.00")

    assert first.status == RefundStatus.SUCCEEDED
    assert (again.status, again.gateway_refund_no) == (RefundStatus.SUCCEEDED, first.gateway_refund_no)
    assert too_much.status == RefundStatus.FAILED
    assert "可退金额" in too_much.message
    trade = SimulatedWechatTrade.objects.get()
    assert (trade.refunded_total, trade.trade_state) == (3000, TradeState.REFUND)
    assert SimulatedWechatRefund.objects.count() == 1


def test_refund_query_finds_a_refund_made_and_not_one_never_sent(
        client: Client, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    """GET /v3/refund/domestic/refunds/{out_refund_no}: what settles a refund whose answer was lost."""
    payment, gateway = _paid_topup_of_50(client, monkeypatch, django_capture_on_commit_callbacks)
    made = gateway.refund(out_trade_no=payment.number, gateway_trade_no=payment.gateway_trade_no,
                          refund_no="R20261126000001", amount=Decimal("30.00"), total_amount=payment.amount,
                          reason="缺货退款")

    found = gateway.refund_query(out_trade_no=payment.number, gateway_trade_no=payment.gateway_trade_no,
                                 refund_no="R20261126000001")
    missing = gateway.refund_query(out_trade_no=payment.number, gateway_trade_no=payment.gateway_trade_no,
                                   refund_no="R20261126000002")
    SimulatedWechatRefund.objects.update(status="ABNORMAL")
    abnormal = gateway.refund_query(out_trade_no=payment.number, gateway_trade_no=payment.gateway_trade_no,
                                    refund_no="R20261126000001")

    assert gateway.has_refund_query
    assert (found.status, found.gateway_refund_no) == (RefundStatus.SUCCEEDED, made.gateway_refund_no)
    assert missing.status == RefundStatus.NOT_FOUND
    # A refund stuck at the buyer's bank is settled by the merchant in WeChat's console: never a failure here.
    assert abnormal.status == RefundStatus.NEEDS_REVIEW
    assert "ABNORMAL" in abnormal.message
    assert SimulatedWechatRefund.objects.count() == 1


def test_network_errors_are_gateway_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    route_wechatpayv3(monkeypatch, RefusingAdapter())
    gateway = build(simulated_channel())

    with pytest.raises(GatewayError) as started:
        gateway.start(out_trade_no="P20261126000009", amount=Decimal("1.00"), subject="钱包充值",
                      notify_url=NOTIFY_URL, return_url="", client_ip="")
    with pytest.raises(GatewayError):
        gateway.query(out_trade_no="P20261126000009")
    with pytest.raises(GatewayError):
        gateway.refund(out_trade_no="P20261126000009", gateway_trade_no="", refund_no="R1", amount=Decimal("1.00"),
                       total_amount=Decimal("1.00"), reason="")
    assert started.value.code == "gateway_unreachable"


def test_reply_not_signed_by_the_configured_wechat_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """wechatpayv3 checks every reply's signature; a man in the middle (or a wrong key) stops the call."""
    route_wechatpayv3(monkeypatch)
    channel = simulated_channel()
    channel.platform_public_key = public_pem(rsa_key())
    gateway = build(channel)

    with pytest.raises(GatewayError):
        gateway.start(out_trade_no="P20261126000010", amount=Decimal("1.00"), subject="钱包充值",
                      notify_url=NOTIFY_URL, return_url="", client_ip="")
    assert SimulatedWechatTrade.objects.count() == 1  # WeChat took the order; we just cannot trust the reply


def test_start_sends_integer_fen_and_a_truncated_description(monkeypatch: pytest.MonkeyPatch) -> None:
    route_wechatpayv3(monkeypatch)
    gateway: WechatPayGateway = build(simulated_channel())

    started = gateway.start(out_trade_no="P20261126000011", amount=Decimal("0.10"), subject="充" * 100,
                            notify_url=NOTIFY_URL, return_url="", client_ip="")

    trade = SimulatedWechatTrade.objects.get()
    assert trade.total == 10
    assert len(trade.description.encode()) <= 127
    assert started.qr_code == f"{API_ROOT}/scan/{trade.transaction_id}/"


@pytest.mark.django_db(transaction=True)
def test_over_real_http_a_lost_notification_is_recovered_and_a_delivered_one_credits(
        live_server: Any, monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """No routing: wechatpayv3 and the simulator's notify talk HTTP to a live server (reply signatures, charset and
    headers as the network carries them)."""
    settings.SITE_URL = live_server.url  # where the notify URL given to the gateway points
    buyer = UserFactory.create()
    simulated_channel(gateway_url=live_server.url + "/sim/wechat")

    def pay(amount: str) -> Payment:
        started = wallet_topup_start(user_id=buyer.pk, channel_code=CHANNEL_CODE, amount_text=amount,
                                     return_url=RETURN_URL)
        with httpx.Client(timeout=10.0) as phone:
            page = phone.get(started.start.qr_code)
            action = re.search(r'<form method="post" action="([^"]+)"', page.text)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            assert action
            assert token
            confirmed = phone.post(live_server.url + action.group(1), data={"csrfmiddlewaretoken": token.group(1)})
        assert confirmed.status_code == 200
        return started.payment

    delivered = pay("23.45")
    monkeypatch.setattr(simulator_services, "notify_transport", failing_notify_transport())
    lost = pay("10.00")

    assert wallet_balance(user_id=buyer.pk) == Decimal("23.45")
    assert SimulatedWechatTrade.objects.get(out_trade_no=delivered.number).last_notify_response == "HTTP 204: "
    Payment.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    assert payments_reconcile_pending() == 1
    lost.refresh_from_db()
    assert lost.status == PaymentStatus.SUCCEEDED
    assert wallet_balance(user_id=buyer.pk) == Decimal("33.45")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP).count() == 2


# -- closing an order (POST /v3/pay/transactions/out-trade-no/{no}/close) --------------------------------------

def test_close_stops_the_native_code_being_paid(
        client: Client, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    route_wechatpayv3(monkeypatch)
    monkeypatch.setattr(simulator_services, "notify_transport", notify_transport())
    started = wallet_topup_start(user_id=UserFactory.create().pk, channel_code=simulated_channel().code,
                                 amount_text="9.90", return_url=RETURN_URL)
    gateway = build(started.payment.channel)

    closed = gateway.close(out_trade_no=started.payment.number)
    again = gateway.close(out_trade_no=started.payment.number)

    assert gateway.has_close
    assert (closed.status, again.status) == (CloseStatus.CLOSED, CloseStatus.CLOSED)
    trade = SimulatedWechatTrade.objects.get()
    assert trade.trade_state == TradeState.CLOSED
    page = client.get(started.start.qr_code).content.decode()
    assert "该订单已关闭" in page
    assert "<form" not in page
    with django_capture_on_commit_callbacks(execute=True):  # a scan page opened before the close, confirmed after
        refused = client.post(reverse("simulators:sim_wechat:scan_pay", args=[trade.transaction_id]))
    assert refused.status_code == 400
    assert "订单已关闭" in refused.content.decode()
    trade.refresh_from_db()
    assert (trade.trade_state, trade.notify_attempts) == (TradeState.CLOSED, 0)
    assert gateway.query(out_trade_no=started.payment.number).is_paid is False


def test_close_of_an_order_wechat_never_saw_leaves_nothing_to_close(monkeypatch: pytest.MonkeyPatch) -> None:
    route_wechatpayv3(monkeypatch)

    result = build(simulated_channel()).close(out_trade_no="P20261126999999")

    assert result.status == CloseStatus.CLOSED
    assert not SimulatedWechatTrade.objects.exists()


def test_close_of_a_paid_order_is_refused_and_says_so(
        client: Client, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: CaptureOnCommit) -> None:
    route_wechatpayv3(monkeypatch)
    monkeypatch.setattr(simulator_services, "notify_transport", failing_notify_transport())
    started = wallet_topup_start(user_id=UserFactory.create().pk, channel_code=simulated_channel().code,
                                 amount_text="9.90", return_url=RETURN_URL)
    _scan_and_confirm(client, started.start.qr_code, django_capture_on_commit_callbacks)
    gateway = build(started.payment.channel)

    result = gateway.close(out_trade_no=started.payment.number)

    assert result.status == CloseStatus.NOT_OPEN
    assert SimulatedWechatTrade.objects.get().trade_state == TradeState.SUCCESS
    assert gateway.query(out_trade_no=started.payment.number).is_paid is True


def test_close_through_an_unreachable_gateway_is_a_gateway_error(monkeypatch: pytest.MonkeyPatch) -> None:
    route_wechatpayv3(monkeypatch, RefusingAdapter())

    with pytest.raises(GatewayError):
        build(simulated_channel()).close(out_trade_no="P20261126999999")
