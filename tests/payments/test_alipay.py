"""The Alipay adapter against notifications signed by python-alipay-sdk (code nobody here wrote) with a freshly
generated "Alipay" key pair: good ones credit once, anything tampered, unsigned or foreign changes nothing and
leaves a risk event."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qsl

import pytest
from alipay import AliPay
from Cryptodome.PublicKey import RSA

from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import wallet_balance
from kameng.payments.gateways.alipay import AlipayGateway, build
from kameng.payments.gateways.base import IncomingNotification, NotificationRejectedError
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
from kameng.risk.models import RiskEvent
from tests.factories import UserFactory

APP_ID = "2021000100000001"
SELLER_ID = "2088000000000001"
CHANNEL_CODE = "alipay"

pytestmark = pytest.mark.django_db


class Keys:
    """RSA key pairs made by pycryptodome (the SDK's own crypto library), not by our code."""

    def __init__(self) -> None:
        app, platform, stranger = (RSA.generate(2048) for _ in range(3))
        self.app_private = app.export_key().decode()
        self.app_public = app.public_key().export_key().decode()
        self.platform_private = platform.export_key().decode()
        self.platform_public = platform.public_key().export_key().decode()
        self.stranger_private = stranger.export_key().decode()


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


def _channel(keys: Keys, *, seller_id: str = "", save: bool = False) -> PaymentChannel:
    channel = PaymentChannel(code=CHANNEL_CODE, name="支付宝", kind=ChannelKind.ALIPAY,
                             gateway_url="http://testserver/sim/alipay/gateway.do", merchant_id=APP_ID,
                             merchant_key=keys.app_private, platform_public_key=keys.platform_public,
                             app_id=seller_id, pay_type="page")
    if save:
        channel.save()
    return channel


def sdk_signed(params: dict[str, str], private_key: str) -> dict[str, str]:
    """Sign a notification with python-alipay-sdk: `sign_data` signs the sorted `k=v` string of what it is given,
    so it is given everything but `sign_type` (which Alipay leaves out of a notification's signature)."""
    signer = AliPay(appid=APP_ID, app_private_key_string=private_key, alipay_public_key_string=private_key,
                    sign_type="RSA2")
    unsigned = {key: value for key, value in params.items() if key not in ("sign", "sign_type")}
    signature = dict(parse_qsl(signer.sign_data(dict(unsigned))))["sign"]
    return {**unsigned, "sign_type": "RSA2", "sign": signature}


def notify_params(out_trade_no: str = "P0001", *, total_amount: str = "10.00", trade_status: str = "TRADE_SUCCESS",
                  app_id: str = APP_ID, seller_id: str = SELLER_ID) -> dict[str, str]:
    return {
        "notify_time": "2026-11-26 15:00:00", "notify_type": "trade_status_sync",
        "notify_id": "ac05099524730693a8b330c5ecf72da9786", "charset": "utf-8", "version": "1.0",
        "app_id": app_id, "auth_app_id": app_id, "trade_no": "2026112622001400000000000001",
        "out_trade_no": out_trade_no, "seller_id": seller_id, "buyer_id": "2088102122524333",
        "trade_status": trade_status, "total_amount": total_amount, "receipt_amount": total_amount,
        "subject": "钱包充值 ¥10.00", "gmt_create": "2026-11-26 14:59:00", "gmt_payment": "2026-11-26 14:59:30",
        "fund_bill_list": '[{"amount":"10.00","fundChannel":"ALIPAYACCOUNT"}]',
    }


def test_a_notify_signed_by_python_alipay_sdk_is_accepted(keys: Keys) -> None:
    gateway = build(_channel(keys))

    verified = gateway.verify_notification(
        IncomingNotification(params=sdk_signed(notify_params(), keys.platform_private)))

    assert verified.out_trade_no == "P0001"
    assert verified.amount == Decimal("10.00")
    assert verified.is_paid is True
    assert verified.merchant_id == APP_ID
    assert verified.gateway_trade_no == "2026112622001400000000000001"
    assert verified.notification_id == "ac05099524730693a8b330c5ecf72da9786"
    assert gateway.acknowledge().body == "success"
    assert (gateway.reject("x").body, gateway.reject("x").status) == ("fail", 400)


def test_bare_base64_keys_from_the_alipay_console_are_accepted(keys: Keys) -> None:
    def bare(pem: str) -> str:
        return "".join(line for line in pem.splitlines() if not line.startswith("-----"))

    gateway = AlipayGateway(gateway_url="http://testserver/sim/alipay/gateway.do", app_id=APP_ID,
                            app_private_key=bare(keys.app_private), alipay_public_key=bare(keys.platform_public))

    verified = gateway.verify_notification(
        IncomingNotification(params=sdk_signed(notify_params(), keys.platform_private)))

    assert verified.is_paid is True


def test_the_signature_covers_every_field_but_sign_and_sign_type(keys: Keys) -> None:
    gateway = build(_channel(keys))
    params = sdk_signed(notify_params(), keys.platform_private)

    with pytest.raises(NotificationRejectedError) as raised:
        gateway.verify_notification(IncomingNotification(params={**params, "buyer_id": "2088999999999999"}))

    assert raised.value.code == "bad_signature"
    assert "签名" in raised.value.message


@pytest.mark.parametrize("trade_status", ["TRADE_SUCCESS", "TRADE_FINISHED"])
def test_paid_statuses(keys: Keys, trade_status: str) -> None:
    verified = build(_channel(keys)).verify_notification(IncomingNotification(
        params=sdk_signed(notify_params(trade_status=trade_status), keys.platform_private)))

    assert verified.is_paid is True


@pytest.mark.parametrize("trade_status", ["WAIT_BUYER_PAY", "TRADE_CLOSED"])
def test_unpaid_statuses(keys: Keys, trade_status: str) -> None:
    verified = build(_channel(keys)).verify_notification(IncomingNotification(
        params=sdk_signed(notify_params(trade_status=trade_status), keys.platform_private)))

    assert verified.is_paid is False


def test_seller_id_is_checked_when_the_channel_has_one(keys: Keys) -> None:
    params = sdk_signed(notify_params(seller_id="2088000000000999"), keys.platform_private)

    assert build(_channel(keys)).verify_notification(IncomingNotification(params=params)).is_paid
    with pytest.raises(NotificationRejectedError) as raised:
        build(_channel(keys, seller_id=SELLER_ID)).verify_notification(IncomingNotification(params=params))
    assert raised.value.code == "wrong_seller"


# --- through the payment services: the wallet, the audit trail and the risk log ---------------------------------


@pytest.fixture
def payment(keys: Keys) -> Payment:
    return Payment.objects.create(number="P0001", user=UserFactory.create(), purpose=PaymentPurpose.WALLET_TOPUP,
                                  channel=_channel(keys, seller_id=SELLER_ID, save=True), amount=Decimal("10.00"))


def _process(params: dict[str, str]) -> tuple[str, int, str]:
    answer = payment_notification_process(channel_code=CHANNEL_CODE, params=params, remote_addr="203.0.113.9")
    return answer.body, answer.status, answer.outcome


def _assert_nothing_credited(payment: Payment) -> None:
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert payment.paid_at is None
    assert wallet_balance(user_id=payment.user_id) == Decimal("0.00")
    assert not Journal.objects.filter(kind=JournalKind.WALLET_TOPUP).exists()


def test_good_notify_credits_once_and_replays_are_duplicates(keys: Keys, payment: Payment) -> None:
    params = sdk_signed(notify_params(), keys.platform_private)

    answers = [_process(params) for _ in range(6)]  # the notification, then replayed 5 times

    assert answers[0] == ("success", 200, NotificationOutcome.CREDITED)
    assert answers[1:] == [("success", 200, NotificationOutcome.DUPLICATE)] * 5
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.gateway_trade_no == "2026112622001400000000000001"
    assert wallet_balance(user_id=payment.user_id) == Decimal("10.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference="P0001").count() == 1
    assert PaymentNotification.objects.filter(outcome=NotificationOutcome.CREDITED).count() == 1
    assert PaymentNotification.objects.filter(outcome=NotificationOutcome.DUPLICATE).count() == 5
    assert not RiskEvent.objects.exists()
    assert all(notification.params["sign"] == "***" for notification in PaymentNotification.objects.all())


def _tampered_amount(keys: Keys) -> dict[str, str]:
    return {**sdk_signed(notify_params(), keys.platform_private), "total_amount": "1000.00"}


def _unsigned(keys: Keys) -> dict[str, str]:
    return {key: value for key, value in sdk_signed(notify_params(), keys.platform_private).items()
            if key not in ("sign", "sign_type")}


def _signed_by_a_stranger(keys: Keys) -> dict[str, str]:
    return sdk_signed(notify_params(), keys.stranger_private)


def _validly_signed_for_another_amount(keys: Keys) -> dict[str, str]:
    return sdk_signed(notify_params(total_amount="0.01"), keys.platform_private)


def _wrong_app_id(keys: Keys) -> dict[str, str]:
    return sdk_signed(notify_params(app_id="2021000100009999"), keys.platform_private)


def _wrong_seller_id(keys: Keys) -> dict[str, str]:
    return sdk_signed(notify_params(seller_id="2088000000000999"), keys.platform_private)


def _rsa1_sign_type(keys: Keys) -> dict[str, str]:
    return {**sdk_signed(notify_params(), keys.platform_private), "sign_type": "RSA"}


def _garbage_signature(keys: Keys) -> dict[str, str]:
    return {**sdk_signed(notify_params(), keys.platform_private), "sign": "not base64!"}


def _unknown_out_trade_no(keys: Keys) -> dict[str, str]:
    return sdk_signed(notify_params(out_trade_no="P9999"), keys.platform_private)


def _malformed_amount(keys: Keys) -> dict[str, str]:
    return sdk_signed(notify_params(total_amount="10.001"), keys.platform_private)


@pytest.mark.parametrize("make_params", [
    _tampered_amount, _unsigned, _signed_by_a_stranger, _validly_signed_for_another_amount, _wrong_app_id,
    _wrong_seller_id, _rsa1_sign_type, _garbage_signature, _unknown_out_trade_no, _malformed_amount,
])
def test_bad_notifications_change_nothing_and_are_logged_as_risk_events(keys: Keys, payment: Payment,
                                                                       make_params: object) -> None:
    assert callable(make_params)
    params = make_params(keys)

    assert _process(params) == ("fail", 400, NotificationOutcome.REJECTED)

    _assert_nothing_credited(payment)
    notification = PaymentNotification.objects.get()
    assert notification.outcome == NotificationOutcome.REJECTED
    assert notification.reason
    event = RiskEvent.objects.get()
    assert event.kind == "payment_notification_rejected"
    assert event.remote_addr == "203.0.113.9"


def test_replays_with_another_amount_after_payment_change_nothing(keys: Keys, payment: Payment) -> None:
    good = sdk_signed(notify_params(), keys.platform_private)
    assert _process(good)[2] == NotificationOutcome.CREDITED

    replies = [_process({**good, "total_amount": amount}) for amount in ("100.00", "10.01", "9.99", "1e3", "10")]

    # A changed amount breaks the signature, even "10" for "10.00": the signature covers the raw strings.
    assert replies == [("fail", 400, NotificationOutcome.REJECTED)] * 5
    assert wallet_balance(user_id=payment.user_id) == Decimal("10.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP).count() == 1
    assert RiskEvent.objects.filter(kind="payment_notification_rejected").count() == 5


def test_trade_closed_is_acknowledged_but_not_credited(keys: Keys, payment: Payment) -> None:
    params = sdk_signed(notify_params(trade_status="TRADE_CLOSED"), keys.platform_private)

    assert _process(params) == ("success", 200, NotificationOutcome.NOT_PAID)

    _assert_nothing_credited(payment)
    assert not RiskEvent.objects.exists()


def test_trade_finished_after_trade_success_is_a_duplicate(keys: Keys, payment: Payment) -> None:
    assert _process(sdk_signed(notify_params(), keys.platform_private))[2] == NotificationOutcome.CREDITED

    finished = sdk_signed(notify_params(trade_status="TRADE_FINISHED"), keys.platform_private)

    assert _process(finished) == ("success", 200, NotificationOutcome.DUPLICATE)
    assert wallet_balance(user_id=payment.user_id) == Decimal("10.00")
