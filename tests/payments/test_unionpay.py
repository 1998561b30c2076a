"""The UnionPay adapter against fields signed here, independently, with certificates made for the test: the
signing vector, the certificate checks, and notifications through the payment services (credited once, anything
forged or foreign changes nothing and leaves a risk event)."""

from __future__ import annotations

import base64
import hashlib
import re
from decimal import Decimal
from html import unescape
from urllib.parse import parse_qsl

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import pkcs12

from kameng.core.errors import ApplicationError
from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import wallet_balance
from kameng.payments.gateways import unionpay
from kameng.payments.gateways.base import CloseStatus, GatewayError, IncomingNotification, NotificationRejectedError
from kameng.payments.gateways.registry import gateway_for
from kameng.payments.models import (
    ChannelKind,
    NotificationOutcome,
    Payment,
    PaymentChannel,
    PaymentCloseReason,
    PaymentNotification,
    PaymentPurpose,
    PaymentStatus,
)
from kameng.payments.reconciliation import payment_recheck, payments_reconcile_pending
from kameng.payments.services import payment_notification_process
from kameng.risk.models import RiskEvent
from tests.factories import UserFactory
from tests.payments.unionpay_keys import UnionPayKeys, sign_as_unionpay, unionpay_keys

pytestmark = pytest.mark.django_db

MER_ID = "777290058110048"
NUMBER = "P261203094512000123456"
CHANNEL_CODE = "unionpay"
GATEWAY_URL = "https://gateway.95516.com/gateway/api/"


@pytest.fixture(scope="module")
def keys() -> UnionPayKeys:
    return unionpay_keys()


def _channel(keys: UnionPayKeys, *, gateway_url: str = GATEWAY_URL, save: bool = False) -> PaymentChannel:
    channel = PaymentChannel(code=CHANNEL_CODE, name="银联", kind=ChannelKind.UNIONPAY, gateway_url=gateway_url,
                             merchant_id=MER_ID, merchant_key=keys.merchant.key_pem + keys.merchant.pem,
                             platform_public_key=keys.trust_bundle, pay_type="07")
    if save:
        channel.save()
    return channel


def notify_params(*, order_id: str = NUMBER, txn_amt: str = "1000", resp_code: str = "00", mer_id: str = MER_ID,
                  txn_type: str = "01") -> dict[str, str]:
    return {
        "version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "txnType": txn_type, "txnSubType": "01",
        "bizType": "000201", "accessType": "0", "merId": mer_id, "orderId": order_id, "txnTime": "20261203094512",
        "txnAmt": txn_amt, "currencyCode": "156", "queryId": "782612030945120000123", "respCode": resp_code,
        "respMsg": "成功[0000000]", "traceNo": "000123", "traceTime": "1203094512", "settleAmt": txn_amt,
        "settleCurrencyCode": "156", "settleDate": "1203", "certId": "69629715588",
    }


# --- signing ---------------------------------------------------------------------------------------------------


def test_the_signature_matches_a_vector_computed_independently(keys: UnionPayKeys) -> None:
    params = {"version": "5.1.0", "encoding": "UTF-8", "txnType": "01", "merId": MER_ID,
              "orderId": "P26120309451200012345", "txnAmt": "1234", "certId": "68759663125", "signMethod": "01",
              "frontUrl": "https://shop.example/pay/return/?out_trade_no=P26120309451200012345", "reqReserved": ""}
    expected_text = ("certId=68759663125&encoding=UTF-8&frontUrl=https://shop.example/pay/return/?out_trade_no="
                     "P26120309451200012345&merId=777290058110048&orderId=P26120309451200012345&reqReserved=&"
                     "signMethod=01&txnAmt=1234&txnType=01&version=5.1.0")
    # sha256 of expected_text, worked out apart from this code base
    expected_digest = b"9b54adb00d72c712926224527ec218a4585f325448d801877d429185dcec8d79"
    assert hashlib.sha256(expected_text.encode()).hexdigest().encode() == expected_digest

    assert unionpay.canonical({**params, "signature": "ignored"}) == expected_text
    assert unionpay.signed_digest(params) == expected_digest
    # PKCS#1 v1.5 is deterministic: the same key over the same hex bytes gives the same signature.
    expected_signature = base64.b64encode(
        keys.merchant.key.sign(expected_digest, padding.PKCS1v15(), hashes.SHA256())).decode()
    assert unionpay.signature_of(params, keys.merchant.key) == expected_signature
    assert unionpay.signature_is_valid({**params, "signature": expected_signature}, keys.merchant.key.public_key())
    assert not unionpay.signature_is_valid({**params, "txnAmt": "1235", "signature": expected_signature},
                                           keys.merchant.key.public_key())


def _form_fields(html: str) -> tuple[str, dict[str, str]]:
    action = re.search(r'<form[^>]* action="([^"]+)"', html)
    assert action is not None
    fields = {unescape(name): unescape(value)
              for name, value in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)">', html)}
    return unescape(action.group(1)), fields


def test_start_builds_the_signed_consume_form(keys: UnionPayKeys) -> None:
    start = unionpay.build(_channel(keys)).start(
        out_trade_no=NUMBER, amount=Decimal("12.34"), subject="钱包充值", client_ip="203.0.113.7",
        notify_url="https://shop.example/pay/notify/unionpay/", return_url="https://shop.example/pay/return/")

    action, fields = _form_fields(start.html)

    assert action == "https://gateway.95516.com/gateway/api/frontTransReq.do"
    assert (start.redirect_url, start.qr_code) == ("", "")
    assert {key: fields[key] for key in ("version", "encoding", "signMethod", "txnType", "txnSubType", "bizType",
                                          "channelType", "accessType", "merId", "orderId", "txnTime", "txnAmt",
                                          "currencyCode", "frontUrl", "backUrl", "certId")} == {
        "version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "txnType": "01", "txnSubType": "01",
        "bizType": "000201", "channelType": "07", "accessType": "0", "merId": MER_ID, "orderId": NUMBER,
        "txnTime": "20261203094512", "txnAmt": "1234", "currencyCode": "156",
        "frontUrl": f"https://shop.example/pay/return/?out_trade_no={NUMBER}",
        "backUrl": "https://shop.example/pay/notify/unionpay/",
        "certId": str(keys.merchant.certificate.serial_number)}
    # Verified here by hand, with the merchant certificate's public key.
    text = "&".join(f"{key}={fields[key]}" for key in sorted(fields) if key != "signature")
    keys.merchant.key.public_key().verify(
        base64.b64decode(fields["signature"]), hashlib.sha256(text.encode()).hexdigest().encode(),
        padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize(("amount", "fen"), [("0.01", "1"), ("10.00", "1000"), ("49999.99", "4999999")])
def test_amounts_are_converted_to_fen_exactly(keys: UnionPayKeys, amount: str, fen: str) -> None:
    start = unionpay.build(_channel(keys)).start(out_trade_no=NUMBER, amount=Decimal(amount), subject="x",
                                                 notify_url="https://shop.example/n/", return_url="")
    _, fields = _form_fields(start.html)
    assert fields["txnAmt"] == fen
    assert "frontUrl" not in fields  # no return page: left out, not sent empty


def test_txn_time_is_read_back_from_the_number() -> None:
    assert unionpay.transaction_time_of("P261203094512000123456") == "20261203094512"
    assert unionpay.transaction_time_of("R261231235959999000001") == "20261231235959"
    for bad in ("P0001", "P26120309451", "P-61203094512000123456", "P261340094512000123456"):
        with pytest.raises(GatewayError):
            unionpay.transaction_time_of(bad)


def test_a_server_answer_is_split_outside_braces_and_at_the_first_equals_sign() -> None:
    answer = unionpay.answer_parse("respCode=00&signature=ab+c/d==&reserved={a=1&b=2}&signPubKeyCert=-----BEGIN X"
                                   "-----\nQUJD==\n-----END X-----&empty=")

    assert answer == {"respCode": "00", "signature": "ab+c/d==", "reserved": "{a=1&b=2}",
                      "signPubKeyCert": "-----BEGIN X-----\nQUJD==\n-----END X-----", "empty": ""}


# --- credentials -----------------------------------------------------------------------------------------------


def test_a_pfx_as_unionpay_issues_it_is_read_with_its_password(keys: UnionPayKeys) -> None:
    pfx = pkcs12.serialize_key_and_certificates(
        b"sign", keys.merchant.key, keys.merchant.certificate, None,
        serialization.BestAvailableEncryption(b"000000"))
    text = base64.b64encode(pfx).decode()

    credentials = unionpay.merchant_credentials_load(key_text=text, password="000000")

    assert credentials.cert_id == str(keys.merchant.certificate.serial_number)
    assert credentials.private_key.private_numbers() == keys.merchant.key.private_numbers()
    with pytest.raises(ValueError, match="无法读取"):
        unionpay.merchant_credentials_load(key_text=text, password="wrong")


def test_a_pem_key_alone_needs_the_cert_id(keys: UnionPayKeys) -> None:
    with pytest.raises(ValueError, match="certId"):
        unionpay.merchant_credentials_load(key_text=keys.merchant.key_pem)

    assert unionpay.merchant_credentials_load(key_text=keys.merchant.key_pem, cert_id="123").cert_id == "123"
    with pytest.raises(ValueError, match="不匹配"):
        unionpay.merchant_credentials_load(key_text=keys.merchant.key_pem + keys.signing.pem)


def test_a_channel_with_unreadable_certificates_is_misconfigured(keys: UnionPayKeys) -> None:
    channel = _channel(keys)
    channel.platform_public_key = keys.signing.pem  # no self-signed root among them

    with pytest.raises(ApplicationError) as raised:
        gateway_for(channel)

    assert raised.value.code == "channel_misconfigured"
    assert "根证书" in raised.value.message


def test_the_gateway_has_no_close(keys: UnionPayKeys) -> None:
    gateway = unionpay.build(_channel(keys))

    assert gateway.has_close is False
    assert gateway.close(out_trade_no=NUMBER).status == CloseStatus.UNSUPPORTED


# --- notifications -----------------------------------------------------------------------------------------------


def test_a_notification_signed_by_unionpay_is_verified(keys: UnionPayKeys) -> None:
    gateway = unionpay.build(_channel(keys))

    verified = gateway.verify_notification(IncomingNotification(params=sign_as_unionpay(notify_params(),
                                                                                        keys.signing)))

    assert (verified.out_trade_no, verified.amount, verified.is_paid, verified.merchant_id) == (
        NUMBER, Decimal("10.00"), True, MER_ID)
    assert verified.gateway_trade_no == verified.notification_id == "782612030945120000123"
    assert (gateway.acknowledge().body, gateway.acknowledge().status) == ("ok", 200)
    assert gateway.reject("x").status == 400


def _verify(keys: UnionPayKeys, params: dict[str, str], *, gateway_url: str = GATEWAY_URL) -> str:
    with pytest.raises(NotificationRejectedError) as raised:
        unionpay.build(_channel(keys, gateway_url=gateway_url)).verify_notification(
            IncomingNotification(params=params))
    return raised.value.message


def test_a_changed_field_breaks_the_signature(keys: UnionPayKeys) -> None:
    signed = sign_as_unionpay(notify_params(), keys.signing)

    assert "签名校验失败" in _verify(keys, {**signed, "txnAmt": "100000"})
    assert "签名校验失败" in _verify(keys, {**signed, "extra": ""})  # an added field, even empty, is signed too


def test_a_certificate_from_another_authority_is_refused(keys: UnionPayKeys) -> None:
    assert "不是由所配置的银联根证书" in _verify(keys, sign_as_unionpay(notify_params(), keys.stranger_signing))


def test_the_merchants_own_certificate_is_not_unionpays(keys: UnionPayKeys) -> None:
    """Issued by the same intermediate, but its owner is not 中国银联股份有限公司."""
    assert "不是中国银联" in _verify(keys, sign_as_unionpay(notify_params(), keys.merchant))
    assert "不是中国银联" in _verify(keys, sign_as_unionpay(notify_params(), keys.wrong_owner))


def test_an_expired_signing_certificate_is_refused(keys: UnionPayKeys) -> None:
    assert "有效期" in _verify(keys, sign_as_unionpay(notify_params(), keys.expired))


def test_the_test_environments_signing_owner_is_taken_only_from_the_test_gateway(keys: UnionPayKeys) -> None:
    params = sign_as_unionpay(notify_params(), keys.test_environment)

    assert "不是中国银联" in _verify(keys, params)
    test_gateway = unionpay.build(_channel(keys, gateway_url=unionpay.TEST_API_ROOT))
    assert test_gateway.verify_notification(IncomingNotification(params=params)).is_paid


def test_the_signature_must_be_made_with_the_certificates_key(keys: UnionPayKeys) -> None:
    """A genuine UnionPay certificate pasted next to a signature made with another key."""
    forged = sign_as_unionpay(notify_params(), keys.wrong_owner)
    forged["signPubKeyCert"] = keys.signing.pem

    assert "签名校验失败" in _verify(keys, forged)


def test_a_refund_notification_is_acknowledged_but_never_credits(keys: UnionPayKeys) -> None:
    verified = unionpay.build(_channel(keys)).verify_notification(IncomingNotification(
        params=sign_as_unionpay(notify_params(txn_type="04"), keys.signing)))

    assert verified.is_paid is False


# --- through the payment services --------------------------------------------------------------------------------


@pytest.fixture
def payment(keys: UnionPayKeys) -> Payment:
    return Payment.objects.create(number=NUMBER, user=UserFactory.create(), purpose=PaymentPurpose.WALLET_TOPUP,
                                  channel=_channel(keys, save=True), amount=Decimal("10.00"))


def _process(params: dict[str, str]) -> tuple[str, int, str]:
    answer = payment_notification_process(channel_code=CHANNEL_CODE, params=params, remote_addr="203.0.113.9")
    return answer.body, answer.status, answer.outcome


def _assert_nothing_credited(payment: Payment) -> None:
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert wallet_balance(user_id=payment.user_id) == Decimal("0.00")
    assert not Journal.objects.filter(kind=JournalKind.WALLET_TOPUP).exists()


def test_a_notification_replayed_a_hundred_times_credits_once(keys: UnionPayKeys, payment: Payment) -> None:
    params = sign_as_unionpay(notify_params(), keys.signing)

    answers = [_process(params) for _ in range(100)]

    assert answers[0] == ("ok", 200, NotificationOutcome.CREDITED)
    assert answers[1:] == [("ok", 200, NotificationOutcome.DUPLICATE)] * 99
    payment.refresh_from_db()
    assert (payment.status, payment.gateway_trade_no) == (PaymentStatus.SUCCEEDED, "782612030945120000123")
    assert wallet_balance(user_id=payment.user_id) == Decimal("10.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference=NUMBER).count() == 1
    assert PaymentNotification.objects.filter(outcome=NotificationOutcome.CREDITED).count() == 1
    assert PaymentNotification.objects.filter(outcome=NotificationOutcome.DUPLICATE).count() == 99
    assert not RiskEvent.objects.exists()
    assert all(row.params["signature"] == "***" for row in PaymentNotification.objects.all()[:5])


def _tampered_amount(keys: UnionPayKeys) -> dict[str, str]:
    return {**sign_as_unionpay(notify_params(), keys.signing), "txnAmt": "100000"}


def _validly_signed_for_another_amount(keys: UnionPayKeys) -> dict[str, str]:
    return sign_as_unionpay(notify_params(txn_amt="1"), keys.signing)


def _another_authority(keys: UnionPayKeys) -> dict[str, str]:
    return sign_as_unionpay(notify_params(), keys.stranger_signing)


def _not_unionpays_certificate(keys: UnionPayKeys) -> dict[str, str]:
    return sign_as_unionpay(notify_params(), keys.wrong_owner)


def _unsigned(keys: UnionPayKeys) -> dict[str, str]:
    return {key: value for key, value in sign_as_unionpay(notify_params(), keys.signing).items()
            if key != "signature"}


def _garbage_certificate(keys: UnionPayKeys) -> dict[str, str]:
    return sign_as_unionpay({**notify_params(), "signPubKeyCert": "not a certificate"}, keys.signing) | {
        "signPubKeyCert": "not a certificate"}


def _another_merchant(keys: UnionPayKeys) -> dict[str, str]:
    return sign_as_unionpay(notify_params(mer_id="777290058119999"), keys.signing)


def _sha1_era_sign_method(keys: UnionPayKeys) -> dict[str, str]:
    return sign_as_unionpay({**notify_params(), "version": "5.0.0"}, keys.signing)


def _unknown_order(keys: UnionPayKeys) -> dict[str, str]:
    return sign_as_unionpay(notify_params(order_id="P261203094512000999999"), keys.signing)


def _malformed_amount(keys: UnionPayKeys) -> dict[str, str]:
    return sign_as_unionpay(notify_params(txn_amt="10.00"), keys.signing)


@pytest.mark.parametrize("make_params", [
    _tampered_amount, _validly_signed_for_another_amount, _another_authority, _not_unionpays_certificate, _unsigned,
    _garbage_certificate, _another_merchant, _sha1_era_sign_method, _unknown_order, _malformed_amount,
])
def test_bad_notifications_change_nothing_and_are_logged_as_risk_events(keys: UnionPayKeys, payment: Payment,
                                                                       make_params: object) -> None:
    assert callable(make_params)

    assert _process(make_params(keys)) == ("fail", 400, NotificationOutcome.REJECTED)

    _assert_nothing_credited(payment)
    notification = PaymentNotification.objects.get()
    assert notification.outcome == NotificationOutcome.REJECTED
    assert notification.reason
    assert RiskEvent.objects.get().kind == "payment_notification_rejected"


def test_a_failed_payment_is_acknowledged_and_not_credited(keys: UnionPayKeys, payment: Payment) -> None:
    assert _process(sign_as_unionpay(notify_params(resp_code="01"), keys.signing)) == (
        "ok", 200, NotificationOutcome.NOT_PAID)

    _assert_nothing_credited(payment)
    assert not RiskEvent.objects.exists()


def test_other_certificates_are_refused_for_notifications_too(keys: UnionPayKeys, payment: Payment) -> None:
    for cert in (keys.expired, keys.test_environment, keys.merchant):
        assert _process(sign_as_unionpay(notify_params(), cert))[2] == NotificationOutcome.REJECTED
    _assert_nothing_credited(payment)
    assert RiskEvent.objects.count() == 3


@pytest.mark.parametrize("body", ["respCode=00&origRespCode=00&txnAmt=1000&queryId=1", "respCode=34&respMsg=x"])
def test_an_unsigned_answer_is_believed_only_as_a_refusal(keys: UnionPayKeys, monkeypatch: pytest.MonkeyPatch,
                                                          body: str) -> None:
    monkeypatch.setattr(unionpay, "server_transport",
                        httpx.MockTransport(lambda request: httpx.Response(200, text=body)))

    with pytest.raises(GatewayError) as raised:
        unionpay.build(_channel(keys)).query(out_trade_no=NUMBER)

    assert raised.value.code == "gateway_bad_signature"


def test_a_signed_query_answer_is_read(keys: UnionPayKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, str]] = []

    def unionpay_side(request: httpx.Request) -> httpx.Response:
        seen.append(dict(parse_qsl(request.content.decode())))
        answer = sign_as_unionpay({"version": "5.1.0", "signMethod": "01", "respCode": "00", "orderId": NUMBER,
                                   "origRespCode": "00", "txnAmt": "1000", "queryId": "Q1"}, keys.signing)
        return httpx.Response(200, text="&".join(f"{key}={value}" for key, value in answer.items()))

    monkeypatch.setattr(unionpay, "server_transport", httpx.MockTransport(unionpay_side))

    result = unionpay.build(_channel(keys)).query(out_trade_no=NUMBER)

    assert (result.is_paid, result.amount, result.gateway_trade_no) == (True, Decimal("10.00"), "Q1")
    assert str(seen[0].get("txnTime")) == "20261203094512"
    assert (seen[0]["txnType"], seen[0]["txnSubType"], seen[0]["bizType"]) == ("00", "00", "000000")


# --- a payment UnionPay says failed -----------------------------------------------------------------------------


def _answering(keys: UnionPayKeys, monkeypatch: pytest.MonkeyPatch, orig_resp_code: str | None) -> list[int]:
    """queryTrans.do answers respCode 00 with this origRespCode (None: without one); returns the calls made."""
    calls: list[int] = []

    def unionpay_side(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        fields = {"version": "5.1.0", "signMethod": "01", "respCode": "00", "orderId": NUMBER, "txnAmt": "1000",
                  "queryId": "Q1"}
        if orig_resp_code is not None:
            fields |= {"origRespCode": orig_resp_code, "origRespMsg": "交易失败"}
        answer = sign_as_unionpay(fields, keys.signing)
        return httpx.Response(200, text="&".join(f"{key}={value}" for key, value in answer.items()))

    monkeypatch.setattr(unionpay, "server_transport", httpx.MockTransport(unionpay_side))
    return calls


@pytest.mark.parametrize(("orig_resp_code", "is_paid", "is_failed"), [
    ("00", True, False), ("01", False, True), ("61", False, True), ("03", False, False), ("04", False, False),
    ("05", False, False), (None, False, False)])
def test_a_query_tells_a_definite_failure_from_one_in_doubt(keys: UnionPayKeys, monkeypatch: pytest.MonkeyPatch,
                                                            orig_resp_code: str | None, is_paid: bool,
                                                            is_failed: bool) -> None:
    _answering(keys, monkeypatch, orig_resp_code)

    result = unionpay.build(_channel(keys)).query(out_trade_no=NUMBER)

    assert (result.is_paid, result.is_failed) == (is_paid, is_failed)
    assert result.failure == (f"{orig_resp_code} 交易失败" if is_failed else "")


def test_no_such_transaction_is_unpaid_not_failed(keys: UnionPayKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = sign_as_unionpay({"version": "5.1.0", "signMethod": "01", "respCode": "34", "respMsg": "查无此交易"},
                              keys.signing)
    monkeypatch.setattr(unionpay, "server_transport", httpx.MockTransport(
        lambda request: httpx.Response(200, text="&".join(f"{key}={value}" for key, value in answer.items()))))

    result = unionpay.build(_channel(keys)).query(out_trade_no=NUMBER)

    assert (result.is_paid, result.is_failed) == (False, False)


def test_a_payment_the_query_says_failed_is_closed_once_and_a_late_success_still_credits(
        keys: UnionPayKeys, payment: Payment, monkeypatch: pytest.MonkeyPatch) -> None:
    _answering(keys, monkeypatch, "01")

    assert payments_reconcile_pending(older_than_seconds=0) == 0

    payment.refresh_from_db()
    assert (payment.status, payment.close_reason) == (PaymentStatus.CLOSED, PaymentCloseReason.PAYMENT_FAILED)
    assert payment.close_detail == "通道查询：支付失败（01 交易失败）"
    closed_at = payment.closed_at
    assert closed_at is not None
    assert wallet_balance(user_id=payment.user_id) == Decimal("0.00")
    assert not Journal.objects.exists()
    # Asked again (staff's recheck, the buyer's return): nothing changes.
    assert payment_recheck(payment_id=payment.pk) == NotificationOutcome.NOT_PAID
    assert payments_reconcile_pending(older_than_seconds=0) == 0
    payment.refresh_from_db()
    assert (payment.status, payment.closed_at) == (PaymentStatus.CLOSED, closed_at)
    assert not Journal.objects.exists()
    # Should UnionPay notify it paid after all, it is credited like any payment closed unpaid, once.
    assert _process(sign_as_unionpay(notify_params(), keys.signing))[2] == NotificationOutcome.CREDITED
    assert _process(sign_as_unionpay(notify_params(), keys.signing))[2] == NotificationOutcome.DUPLICATE
    payment.refresh_from_db()
    assert (payment.status, payment.close_reason) == (PaymentStatus.SUCCEEDED, PaymentCloseReason.PAYMENT_FAILED)
    assert wallet_balance(user_id=payment.user_id) == Decimal("10.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference=NUMBER).count() == 1


@pytest.mark.parametrize("orig_resp_code", ["03", "04", "05", None])
def test_a_payment_still_in_doubt_stays_pending(keys: UnionPayKeys, payment: Payment,
                                                monkeypatch: pytest.MonkeyPatch, orig_resp_code: str | None) -> None:
    calls = _answering(keys, monkeypatch, orig_resp_code)

    assert payments_reconcile_pending(older_than_seconds=0) == 0
    assert payment_recheck(payment_id=payment.pk) == NotificationOutcome.NOT_PAID

    assert len(calls) == 2
    _assert_nothing_credited(payment)
    assert payment.close_reason == ""
