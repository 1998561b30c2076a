"""payment_notification_process against notifications signed by the simulated gateway (an independent signer)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import wallet_balance
from kameng.payments.gateways.epay import epay_sign
from kameng.payments.models import NotificationOutcome, Payment, PaymentNotification, PaymentStatus
from kameng.payments.services import payment_notification_process
from kameng.simulators.services import simulated_epay_notify_params
from tests.factories import UserFactory
from tests.payments.support import CHANNEL_CODE, KEY, epay_channel, epay_merchant, paid_trade, pending_payment

pytestmark = pytest.mark.django_db


@pytest.fixture
def payment() -> Payment:
    return pending_payment(user_id=UserFactory.create().pk, channel=epay_channel(), amount="10.00", number="P0001")


def _notify(params: dict[str, str]) -> str:
    return payment_notification_process(channel_code=CHANNEL_CODE, params=params, remote_addr="203.0.113.5").outcome


def _good_params(payment: Payment, money: str = "10.00") -> dict[str, str]:
    return simulated_epay_notify_params(paid_trade(merchant=epay_merchant(), out_trade_no=payment.number,
                                                   money=money))


def _resigned(params: dict[str, str], key: str = KEY, **changes: str) -> dict[str, str]:
    unsigned = {**{name: value for name, value in params.items() if name not in ("sign", "sign_type")}, **changes}
    return {**unsigned, "sign": epay_sign(unsigned, key), "sign_type": "MD5"}


def _assert_nothing_credited(payment: Payment) -> None:
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert payment.paid_at is None
    assert wallet_balance(user_id=payment.user_id) == Decimal("0.00")
    assert not Journal.objects.filter(kind=JournalKind.WALLET_TOPUP).exists()


def test_good_notify_credits_the_wallet_once(payment: Payment) -> None:
    params = _good_params(payment)

    answer = payment_notification_process(channel_code=CHANNEL_CODE, params=params, remote_addr="203.0.113.5")

    assert (answer.body, answer.status, answer.outcome) == ("success", 200, NotificationOutcome.CREDITED)
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.gateway_trade_no == params["trade_no"]
    assert payment.paid_at is not None
    assert wallet_balance(user_id=payment.user_id) == Decimal("10.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference="P0001").count() == 1
    notification = PaymentNotification.objects.get()
    assert (notification.payment, notification.outcome, notification.remote_addr) == (
        payment, NotificationOutcome.CREDITED, "203.0.113.5")
    assert notification.params["sign"] == "***"


def test_same_notify_replayed_ten_times_credits_once(payment: Payment) -> None:
    params = _good_params(payment)

    outcomes = [_notify(params) for _ in range(10)]

    assert outcomes == [NotificationOutcome.CREDITED] + [NotificationOutcome.DUPLICATE] * 9
    assert wallet_balance(user_id=payment.user_id) == Decimal("10.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP).count() == 1
    assert list(PaymentNotification.objects.order_by("id").values_list("outcome", flat=True)) == outcomes


def test_money_without_decimals_is_verified_raw_and_compared_as_decimal(payment: Payment) -> None:
    params = _good_params(payment, money="10")

    assert params["money"] == "10"
    assert _notify(params) == NotificationOutcome.CREDITED
    assert wallet_balance(user_id=payment.user_id) == Decimal("10.00")


def test_tampered_amount_with_the_old_signature_is_rejected(payment: Payment) -> None:
    params = {**_good_params(payment), "money": "1000.00"}

    answer = payment_notification_process(channel_code=CHANNEL_CODE, params=params)

    assert (answer.body, answer.status, answer.outcome) == ("fail", 400, NotificationOutcome.REJECTED)
    _assert_nothing_credited(payment)
    notification = PaymentNotification.objects.get()
    assert (notification.outcome, notification.reason, notification.payment) == (
        NotificationOutcome.REJECTED, "签名校验失败", None)


def test_validly_signed_notify_for_another_amount_is_rejected(payment: Payment) -> None:
    params = _good_params(payment, money="1000.00")

    assert _notify(params) == NotificationOutcome.REJECTED
    _assert_nothing_credited(payment)
    notification = PaymentNotification.objects.get()
    assert notification.payment == payment
    assert notification.reason == "金额 1000.00 与支付单金额 10.00 不符"


def test_replay_with_a_lower_amount_after_crediting_is_still_rejected(payment: Payment) -> None:
    params = _good_params(payment)
    assert _notify(params) == NotificationOutcome.CREDITED

    assert _notify(_resigned(params, money="0.01")) == NotificationOutcome.REJECTED
    assert wallet_balance(user_id=payment.user_id) == Decimal("10.00")


@pytest.mark.parametrize("drop", [("sign",), ("sign", "sign_type")], ids=["no-sign", "no-sign-no-type"])
def test_unsigned_notify_is_rejected(payment: Payment, drop: tuple[str, ...]) -> None:
    params = {name: value for name, value in _good_params(payment).items() if name not in drop}

    assert _notify(params) == NotificationOutcome.REJECTED
    _assert_nothing_credited(payment)
    assert PaymentNotification.objects.get().reason == "通知缺少签名"


def test_notify_signed_with_another_key_is_rejected(payment: Payment) -> None:
    assert _notify(_resigned(_good_params(payment), key="attacker-key")) == NotificationOutcome.REJECTED
    _assert_nothing_credited(payment)


def test_notify_for_another_merchant_is_rejected(payment: Payment) -> None:
    params = _resigned(_good_params(payment), pid="2002")

    assert _notify(params) == NotificationOutcome.REJECTED
    _assert_nothing_credited(payment)
    assert PaymentNotification.objects.get().reason == "商户号不匹配"


def test_notify_for_an_unknown_order_is_rejected(payment: Payment) -> None:
    params = _resigned(_good_params(payment), out_trade_no="P9999")

    assert _notify(params) == NotificationOutcome.REJECTED
    _assert_nothing_credited(payment)
    notification = PaymentNotification.objects.get()
    assert (notification.reason, notification.payment) == ("商户订单号不存在（unknown out_trade_no）", None)


@pytest.mark.parametrize("status", ["WAIT_BUYER_PAY", "TRADE_CLOSED", ""])
def test_notify_that_is_not_trade_success_credits_nothing(payment: Payment, status: str) -> None:
    params = _resigned(_good_params(payment), trade_status=status)

    answer = payment_notification_process(channel_code=CHANNEL_CODE, params=params)

    assert answer.outcome == NotificationOutcome.NOT_PAID
    _assert_nothing_credited(payment)
    assert PaymentNotification.objects.get().outcome == NotificationOutcome.NOT_PAID


def test_notify_to_an_unknown_channel_is_rejected(payment: Payment) -> None:
    answer = payment_notification_process(channel_code="nope", params=_good_params(payment))

    assert (answer.status, answer.outcome) == (404, NotificationOutcome.REJECTED)
    _assert_nothing_credited(payment)
    assert PaymentNotification.objects.get().channel is None
