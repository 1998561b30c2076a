"""Payment channel setup in the back office: every protocol's requirements, RSA keys that must parse, secrets that
are write-only, and the list with its notify URLs."""

from __future__ import annotations

import base64
from decimal import Decimal
from functools import cache
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from kameng.payments.gateways.epay import epay_sign
from kameng.payments.models import (
    ChannelKind,
    NotificationOutcome,
    Payment,
    PaymentChannel,
    PaymentNotification,
    PaymentPurpose,
    PaymentStatus,
)
from kameng.payments.services import payment_notification_process
from tests.factories import UserFactory
from tests.payments.unionpay_keys import UnionPayKeys, unionpay_keys

pytestmark = pytest.mark.django_db

ADD_URL = "admin:payments_paymentchannel_add"
API_V3_KEY = "0123456789abcdefghijABCDEFGHIJ01"  # 32 characters


@cache
def _key_pair(bits: int = 2048) -> tuple[rsa.RSAPrivateKey, str, str]:
    """(key, private PEM in PKCS#8, public PEM) — generated once per test session and size."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return key, private_pem, public_pem


@cache
def _unionpay() -> UnionPayKeys:
    return unionpay_keys()


def _bare_private_key() -> str:
    """The app private key as Alipay's key tool hands it out: base64 of PKCS#1 DER, no PEM armour."""
    key = _key_pair()[0]
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    return base64.b64encode(der).decode()


def _bare_public_key() -> str:
    der = _key_pair()[0].public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def _form(kind: str, **overrides: Any) -> dict[str, Any]:
    _, private_pem, public_pem = _key_pair()
    base: dict[str, Any] = {"name": f"通道 {kind}", "code": kind.replace("_", "-"), "kind": kind, "is_enabled": "on",
                            "gateway_url": "", "merchant_id": "", "app_id": "", "merchant_key": "",
                            "merchant_serial_no": "", "platform_public_key": "", "platform_key_id": "",
                            "api_v3_key": "", "pay_type": "", "min_amount": "0.01", "max_amount": "50000.00",
                            "sort_order": "0"}
    per_kind: dict[str, dict[str, Any]] = {
        ChannelKind.EPAY_V1: {"gateway_url": "https://pay.example.com/", "merchant_id": "1001",
                              "merchant_key": "md5-secret-key-0123456789", "pay_type": "alipay"},
        ChannelKind.EPAY_V2: {"gateway_url": "https://pay.example.com/", "merchant_id": "1002",
                              "merchant_key": private_pem, "platform_public_key": public_pem, "pay_type": "wxpay"},
        ChannelKind.ALIPAY: {"gateway_url": "https://openapi.alipay.com/gateway.do", "merchant_id": "2021000000000001",
                             "merchant_key": private_pem, "platform_public_key": public_pem, "pay_type": "precreate"},
        ChannelKind.WECHAT_V3: {"gateway_url": "https://api.mch.weixin.qq.com", "merchant_id": "1900000001",
                                "app_id": "wx0000000000000001", "merchant_key": private_pem,
                                "merchant_serial_no": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
                                "platform_public_key": public_pem, "platform_key_id": "PUB_KEY_ID_0001",
                                "api_v3_key": API_V3_KEY, "pay_type": "native"},
        ChannelKind.UNIONPAY: {"gateway_url": "https://gateway.95516.com/gateway/api/",
                               "merchant_id": "777290058110048",
                               "merchant_key": _unionpay().merchant.key_pem + _unionpay().merchant.pem,
                               "platform_public_key": _unionpay().trust_bundle, "pay_type": "07"},
        ChannelKind.BALANCE: {},
    }
    return {**base, **per_kind[kind], **overrides}


def _post_add(client: Client, data: dict[str, Any]) -> Any:
    return client.post(reverse(ADD_URL), data)


def _errors(response: Any) -> dict[str, list[str]]:
    form = response.context["adminform"].form
    return {name: list(errors) for name, errors in form.errors.items()}


def test_channel_pages_open(admin_client: Client) -> None:
    assert _post_add(admin_client, _form(ChannelKind.EPAY_V1)).status_code == 302
    channel = PaymentChannel.objects.get()
    assert admin_client.get(reverse(ADD_URL)).status_code == 200
    assert admin_client.get(reverse("admin:payments_paymentchannel_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:payments_paymentchannel_change", args=[channel.pk])).status_code == 200


@pytest.mark.parametrize("kind", ChannelKind.values)
def test_a_channel_of_every_kind_is_created_with_valid_settings(admin_client: Client, kind: str) -> None:
    data = _form(kind)

    response = _post_add(admin_client, data)

    assert response.status_code == 302, _errors(response)
    channel = PaymentChannel.objects.get()
    assert (channel.kind, channel.code, channel.is_enabled) == (kind, data["code"], True)
    assert channel.merchant_key == (data["merchant_key"].strip() or None)  # the form strips the trailing newline
    assert channel.api_v3_key == (data["api_v3_key"] or None)
    assert channel.platform_public_key == data["platform_public_key"].strip()


def test_alipay_accepts_bare_base64_keys(admin_client: Client) -> None:
    data = _form(ChannelKind.ALIPAY, merchant_key=_bare_private_key(), platform_public_key=_bare_public_key(),
                 pay_type="page")
    response = _post_add(admin_client, data)
    assert response.status_code == 302, _errors(response)
    assert PaymentChannel.objects.get().pay_type == "page"


def test_wechat_pay_type_defaults_to_native(admin_client: Client) -> None:
    response = _post_add(admin_client, _form(ChannelKind.WECHAT_V3, pay_type=""))
    assert response.status_code == 302, _errors(response)
    assert PaymentChannel.objects.get().pay_type == "native"


def test_unionpay_takes_the_pfx_as_issued_with_its_password(admin_client: Client) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs12

    merchant = _unionpay().merchant
    pfx = base64.b64encode(pkcs12.serialize_key_and_certificates(
        b"sign", merchant.key, merchant.certificate, None, serialization.BestAvailableEncryption(b"111111"))).decode()

    refused = _post_add(admin_client, _form(ChannelKind.UNIONPAY, merchant_key=pfx, api_v3_key="222222"))
    accepted = _post_add(admin_client, _form(ChannelKind.UNIONPAY, merchant_key=pfx, api_v3_key="111111",
                                             pay_type=""))

    assert "银联签名证书有误" in _errors(refused)["merchant_key"][0]
    assert accepted.status_code == 302, _errors(accepted)
    channel = PaymentChannel.objects.get()
    assert (channel.pay_type, str(channel.api_v3_key)) == ("07", "111111")


def test_unionpay_needs_a_root_certificate_and_a_known_channel_type(admin_client: Client) -> None:
    response = _post_add(admin_client, _form(ChannelKind.UNIONPAY, platform_public_key=_unionpay().middle.pem,
                                             pay_type="native"))

    errors = _errors(response)
    assert "缺少银联根证书" in errors["platform_public_key"][0]
    assert errors["pay_type"] == ["中国银联 网关支付 (5.1.0) 的支付方式只能是 07 / 08"]
    assert not PaymentChannel.objects.exists()


@pytest.mark.parametrize(("kind", "missing"), [
    (ChannelKind.EPAY_V1, "merchant_key"),
    (ChannelKind.EPAY_V1, "gateway_url"),
    (ChannelKind.EPAY_V2, "platform_public_key"),
    (ChannelKind.ALIPAY, "merchant_key"),
    (ChannelKind.ALIPAY, "merchant_id"),
    (ChannelKind.WECHAT_V3, "api_v3_key"),
    (ChannelKind.WECHAT_V3, "merchant_serial_no"),
    (ChannelKind.WECHAT_V3, "platform_key_id"),
    (ChannelKind.WECHAT_V3, "app_id"),
])
def test_a_missing_setting_is_named_and_nothing_is_saved(admin_client: Client, kind: str, missing: str) -> None:
    response = _post_add(admin_client, _form(kind, **{missing: ""}))

    assert response.status_code == 200
    errors = _errors(response)
    assert list(errors) == [missing]
    assert errors[missing][0].startswith(f"{ChannelKind(kind).label} 必须填写「")
    assert PaymentChannel.objects.count() == 0


@pytest.mark.parametrize("kind", [ChannelKind.EPAY_V2, ChannelKind.ALIPAY, ChannelKind.WECHAT_V3])
def test_a_garbled_private_key_is_refused_in_chinese(admin_client: Client, kind: str) -> None:
    garbled = _key_pair()[1].replace("MII", "XXX", 1)

    response = _post_add(admin_client, _form(kind, merchant_key=garbled))

    assert response.status_code == 200
    errors = _errors(response)
    assert list(errors) == ["merchant_key"]
    assert errors["merchant_key"][0].startswith("商户私钥有误：无法解析为 RSA 私钥")
    assert "商户私钥有误" in response.content.decode()
    assert PaymentChannel.objects.count() == 0


def test_a_bare_key_that_is_not_base64_is_refused(admin_client: Client) -> None:
    response = _post_add(admin_client, _form(ChannelKind.ALIPAY, merchant_key="this is not a key!"))
    assert _errors(response) == {"merchant_key": [
        "商户私钥有误：无法解析为 RSA 私钥：请粘贴 PEM（-----BEGIN PRIVATE KEY-----）或不含头尾的 base64 私钥"]}
    assert PaymentChannel.objects.count() == 0


@pytest.mark.parametrize("kind", [ChannelKind.EPAY_V2, ChannelKind.ALIPAY, ChannelKind.WECHAT_V3])
def test_a_garbled_platform_public_key_is_refused(admin_client: Client, kind: str) -> None:
    response = _post_add(admin_client, _form(kind, platform_public_key=_bare_public_key()[:-20]))

    errors = _errors(response)
    assert list(errors) == ["platform_public_key"]
    assert errors["platform_public_key"][0].startswith("平台公钥有误：")
    assert PaymentChannel.objects.count() == 0


def test_a_short_rsa_key_is_refused() -> None:
    from kameng.payments.admin import rsa_private_key_problem

    assert rsa_private_key_problem(_key_pair(1024)[1]) == "RSA 私钥长度为 1024 位，至少需要 2048 位"
    assert rsa_private_key_problem(_key_pair()[1]) is None
    assert rsa_private_key_problem(_bare_private_key()) is None


def test_wechat_api_v3_key_must_be_32_characters(admin_client: Client) -> None:
    response = _post_add(admin_client, _form(ChannelKind.WECHAT_V3, api_v3_key="x" * 31))
    assert _errors(response) == {"api_v3_key": ["APIv3 密钥必须正好 32 个字符（当前 31 个）"]}
    assert PaymentChannel.objects.count() == 0


@pytest.mark.parametrize(("kind", "pay_type"), [(ChannelKind.ALIPAY, "native"), (ChannelKind.WECHAT_V3, "jsapi")])
def test_pay_type_must_suit_the_protocol(admin_client: Client, kind: str, pay_type: str) -> None:
    response = _post_add(admin_client, _form(kind, pay_type=pay_type))
    assert list(_errors(response)) == ["pay_type"]
    assert PaymentChannel.objects.count() == 0


def test_minimum_must_not_exceed_maximum(admin_client: Client) -> None:
    response = _post_add(admin_client, _form(ChannelKind.EPAY_V1, min_amount="100.00", max_amount="99.99"))
    assert _errors(response) == {"max_amount": ["单笔最高金额不能小于单笔最低金额"]}
    assert PaymentChannel.objects.count() == 0


def test_secrets_never_appear_and_blank_keeps_them(admin_client: Client) -> None:
    data = _form(ChannelKind.WECHAT_V3)
    assert _post_add(admin_client, data).status_code == 302
    channel = PaymentChannel.objects.get()
    url = reverse("admin:payments_paymentchannel_change", args=[channel.pk])
    private_body = "".join(data["merchant_key"].splitlines()[1:-1])

    page = admin_client.get(url).content.decode()

    assert API_V3_KEY not in page
    assert private_body[:40] not in page
    assert private_body[-40:] not in page
    assert "已设置（留空保留）" in page
    assert f"/pay/notify/{channel.code}/" in page

    response = admin_client.post(url, {**data, "name": "微信支付（改名）", "merchant_key": "", "api_v3_key": ""})
    assert response.status_code == 302, _errors(response)
    channel.refresh_from_db()
    assert (channel.name, channel.merchant_key, channel.api_v3_key) == (
        "微信支付（改名）", data["merchant_key"].strip(), API_V3_KEY)

    replaced = "ZYXWVUTSRQPONMLKJIHGFEDCBA987654"
    assert admin_client.post(url, {**data, "merchant_key": "", "api_v3_key": replaced}).status_code == 302
    channel.refresh_from_db()
    assert (channel.merchant_key, channel.api_v3_key) == (data["merchant_key"].strip(), replaced)


def test_list_shows_notify_urls_and_edits_enabled_and_order_in_place(admin_client: Client,
                                                                    settings: Settings) -> None:
    settings.SITE_URL = "https://shop.example.com"
    for kind in (ChannelKind.EPAY_V1, ChannelKind.BALANCE):
        assert _post_add(admin_client, _form(kind)).status_code == 302
    epay = PaymentChannel.objects.get(kind=ChannelKind.EPAY_V1)
    balance = PaymentChannel.objects.get(kind=ChannelKind.BALANCE)
    url = reverse("admin:payments_paymentchannel_changelist")

    page = admin_client.get(url).content.decode()

    assert "https://shop.example.com/pay/notify/epay-v1/" in page
    assert "余额支付无通知" in page
    assert 'name="form-0-is_enabled"' in page
    assert 'name="form-0-sort_order"' in page
    rows = sorted([epay, balance], key=lambda channel: (channel.sort_order, channel.pk))
    form = {"form-TOTAL_FORMS": "2", "form-INITIAL_FORMS": "2", "_save": "保存"}
    for index, channel in enumerate(rows):
        form[f"form-{index}-id"] = str(channel.pk)
        form[f"form-{index}-sort_order"] = "5" if channel == epay else "1"
        if channel == balance:
            form[f"form-{index}-is_enabled"] = "on"
    assert admin_client.post(url, form).status_code == 302
    epay.refresh_from_db()
    balance.refresh_from_db()
    assert (epay.is_enabled, epay.sort_order, balance.is_enabled, balance.sort_order) == (False, 5, True, 1)
    assert epay.merchant_key == _form(ChannelKind.EPAY_V1)["merchant_key"]


def test_the_notification_list_gives_every_reason_in_chinese(admin_client: Client) -> None:
    channel = PaymentChannel.objects.create(code="epay", name="易支付", kind=ChannelKind.EPAY_V1,
                                            gateway_url="https://pay.example.com/", merchant_id="1001",
                                            merchant_key="admin-reason-merchant-key-012345")
    for outcome, reason in [(NotificationOutcome.DUPLICATE, "already credited"),  # rows written before
                            (NotificationOutcome.REJECTED, "amount 1.00 ≠ expected 2.00"),
                            (NotificationOutcome.REJECTED, "unknown channel nope")]:
        PaymentNotification.objects.create(channel=channel, outcome=outcome, reason=reason)
    payment = Payment.objects.create(number="P0001", user=UserFactory.create(), channel=channel,
                                     purpose=PaymentPurpose.WALLET_TOPUP, amount=Decimal("10.00"),
                                     status=PaymentStatus.SUCCEEDED)
    answer = payment_notification_process(channel_code="epay", params=_duplicate_notify(payment))
    assert answer.outcome == NotificationOutcome.DUPLICATE

    body = admin_client.get(reverse("admin:payments_paymentnotification_changelist")).content.decode()

    assert "already credited" not in body
    assert "≠ expected" not in body
    assert "unknown channel" not in body
    assert body.count("此前已入账，本次忽略") == 2
    assert "金额 1.00 与支付单金额 2.00 不符" in body
    assert "未知通道「nope」" in body


def _duplicate_notify(payment: Payment) -> dict[str, str]:
    params = {"pid": "1001", "trade_no": "T1", "out_trade_no": payment.number, "money": "10.00",
              "trade_status": "TRADE_SUCCESS"}
    return {**params, "sign": epay_sign(params, "admin-reason-merchant-key-012345"), "sign_type": "MD5"}
