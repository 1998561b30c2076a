"""Notifications anyone can send to /pay/notify/<code>/: a NUL character (PostgreSQL refuses it in text and jsonb)
or a non-ASCII signature or key serial (`hmac.compare_digest` raises on a non-ASCII str) must get the gateway's
rejection reply, never a 500, and still leave their audit record, NULs escaped.

The NUL cases only fail on PostgreSQL without the fix (SQLite stores NUL); they run on both.
"""

from __future__ import annotations

import json
import secrets
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client

from kameng.ledger.models import Journal
from kameng.payments.gateways.epay import epay_sign
from kameng.payments.models import (
    ChannelKind,
    NotificationOutcome,
    PaymentChannel,
    PaymentNotification,
    PaymentStatus,
)
from kameng.payments.services import payment_notification_process
from kameng.risk.models import RiskEvent
from tests.factories import UserFactory
from tests.payments.support import KEY, PID, epay_channel, pending_payment

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> Client:
    return Client(raise_request_exception=False)


def _rsa_pem_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def _channel(kind: str) -> PaymentChannel:
    if kind == ChannelKind.EPAY_V1:
        return epay_channel()
    private, public = _rsa_pem_pair()
    fields = {"code": "epay", "name": f"通道 {kind}", "kind": kind, "gateway_url": "http://gateway.invalid/",
              "merchant_id": PID, "merchant_key": private, "platform_public_key": public}
    if kind == ChannelKind.WECHAT_V3:
        fields |= {"app_id": "wxd678efh567hg6787", "merchant_serial_no": "5157F09EFDC096DE15EBE81A47057A72",
                   "platform_key_id": "PUB_KEY_ID_0114232134912410000000000000",
                   "api_v3_key": secrets.token_hex(16), "pay_type": "native"}
    return PaymentChannel.objects.create(**fields)


def _only_record() -> PaymentNotification:
    record = PaymentNotification.objects.get()
    assert record.outcome == NotificationOutcome.REJECTED
    return record


def test_epay_notify_with_a_non_ascii_sign_is_refused_with_fail(client: Client) -> None:
    channel = epay_channel()
    payment = pending_payment(user_id=UserFactory.create().pk, channel=channel, number="P1")

    response = client.get("/pay/notify/epay/", {"pid": PID, "out_trade_no": "P1", "money": "10.00",
                                                "trade_status": "TRADE_SUCCESS", "sign": "é" * 32})

    assert (response.status_code, response.content) == (400, b"fail")
    record = _only_record()
    assert (record.channel, record.reason, record.params["sign"]) == (channel, "签名校验失败", "***")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert Journal.objects.count() == 0


def test_epay_notify_with_a_nul_is_refused_with_fail_and_recorded_escaped(client: Client) -> None:
    channel = epay_channel()
    pending_payment(user_id=UserFactory.create().pk, channel=channel, number="P1")

    response = client.get("/pay/notify/epay/", {"pid": PID, "out_trade_no": "P1\x00", "money": "10.00",
                                                "sign": "x", "note\x00": "\x00\x00"})

    assert (response.status_code, response.content) == (400, b"fail")
    record = _only_record()
    assert record.reason == "通知参数含有 NUL 字符，已拒绝"
    assert record.params == {"pid": PID, "out_trade_no": "P1\\x00", "money": "10.00", "sign": "***",
                             "note\\x00": "\\x00\\x00"}
    assert RiskEvent.objects.get().detail["out_trade_no"] == "P1\\x00"
    assert Journal.objects.count() == 0


def test_unknown_channel_with_a_nul_is_refused_and_recorded(client: Client) -> None:
    response = client.get("/pay/notify/nope/", {"a": "\x00"})

    assert response.status_code == 404
    record = _only_record()
    assert (record.channel, record.reason, record.params) == (None, "未知通道「nope」", {"a": "\\x00"})


@pytest.mark.parametrize("kind", [ChannelKind.EPAY_V1, ChannelKind.EPAY_V2, ChannelKind.ALIPAY])
def test_form_notify_with_a_nul_gets_each_gateways_rejection(client: Client, kind: str) -> None:
    _channel(kind)

    response = client.post("/pay/notify/epay/", {"out_trade_no": "P1", "app_id": "\x00", "sign": "x"})

    assert (response.status_code, response.content) == (400, b"fail")
    assert _only_record().params["app_id"] == "\\x00"


def test_wechat_notify_with_a_non_ascii_serial_gets_wechats_rejection(client: Client) -> None:
    channel = _channel(ChannelKind.WECHAT_V3)
    headers = {"Wechatpay-Timestamp": "1764000000", "Wechatpay-Nonce": "n", "Wechatpay-Signature": "c2lnbg==",
               "Wechatpay-Serial": "PUB_KEY_ID_é"}

    answer = payment_notification_process(channel_code=channel.code, headers=headers, body=b"{}")

    assert answer.status == 400
    assert json.loads(answer.body)["code"] == "FAIL"
    assert "Wechatpay-Serial「PUB_KEY_ID_é」" in _only_record().reason


def test_wechat_notify_with_a_nul_in_a_header_gets_wechats_rejection() -> None:
    channel = _channel(ChannelKind.WECHAT_V3)
    headers = {"Wechatpay-Timestamp": "1764000000", "Wechatpay-Nonce": "n\x00", "Wechatpay-Signature": "c2lnbg==",
               "Wechatpay-Serial": channel.platform_key_id}

    answer = payment_notification_process(channel_code=channel.code, headers=headers, body=b"{}")

    refusal = "通知参数含有 NUL 字符，已拒绝"
    assert (answer.status, json.loads(answer.body)) == (400, {"code": "FAIL", "message": refusal})
    assert _only_record().reason == refusal


def test_a_genuine_notify_still_credits_after_the_checks() -> None:
    """The checks above refuse only what no gateway sends: a correctly signed notify goes through."""
    channel = epay_channel()
    payment = pending_payment(user_id=UserFactory.create().pk, channel=channel, number="P1")
    params = {"pid": PID, "trade_no": "T1", "out_trade_no": "P1", "type": "alipay", "name": "钱包充值",
              "money": "10.00", "trade_status": "TRADE_SUCCESS"}
    params |= {"sign": epay_sign(params, KEY), "sign_type": "MD5"}

    answer = payment_notification_process(channel_code=channel.code, params=params)

    assert (answer.status, answer.body, answer.outcome) == (200, "success", NotificationOutcome.CREDITED)
    payment.refresh_from_db()
    assert (payment.status, payment.amount) == (PaymentStatus.SUCCEEDED, Decimal("10.00"))
