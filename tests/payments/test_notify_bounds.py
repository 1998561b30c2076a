"""What the notification endpoint lets in and keeps: refused unread when too large, bounded when stored, 429 for an
address that keeps sending refused notifications, a cap on rows for unknown channels, and amounts parsed strictly
(a signed `money=sNaN` once answered 500 and left no row)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import Client, override_settings

from kameng.ledger.models import Journal
from kameng.ledger.selectors import wallet_balance
from kameng.payments.gateways.base import gateway_amount
from kameng.payments.gateways.epay import EpayV1Gateway, epay_sign
from kameng.payments.intake import MAX_STORED_TOTAL, UNKNOWN_CHANNEL_ROWS_PER_MINUTE
from kameng.payments.models import NotificationOutcome, PaymentNotification, PaymentStatus
from kameng.payments.services import payment_notification_process
from kameng.risk.models import RiskEvent
from tests.factories import UserFactory
from tests.payments.support import KEY, PID, epay_channel, pending_payment

pytestmark = pytest.mark.django_db

NOTIFY = "/pay/notify/epay/"


def _signed(params: dict[str, str]) -> dict[str, str]:
    return {**params, "sign": epay_sign(params, KEY), "sign_type": "MD5"}


def _notify_params(number: str, money: str) -> dict[str, str]:
    return _signed({"pid": PID, "trade_no": "T1", "out_trade_no": number, "type": "alipay", "name": "x",
                    "money": money, "trade_status": "TRADE_SUCCESS"})


def test_huge_parameter_names_are_stored_bounded() -> None:
    epay_channel()
    params = {f"{index:04d}" + "n" * 45_000: "v" * 45_000 for index in range(1_000)}

    answer = payment_notification_process(channel_code="epay", params=params)  # past the door (another way in)

    assert answer.status == 400
    record = PaymentNotification.objects.get()
    assert record.outcome == NotificationOutcome.REJECTED
    stored = json.dumps(record.params, ensure_ascii=False)
    assert len(stored) < MAX_STORED_TOTAL + 1_000
    assert max(len(name) for name in record.params) <= 64
    assert record.params["…"].startswith("另有 ")


def test_a_body_over_the_limit_is_refused_before_it_is_read(client: Client) -> None:
    epay_channel()

    response = client.post(NOTIFY, {"pad": "x" * 20_000})

    assert response.status_code == 413
    assert not PaymentNotification.objects.exists()
    assert not RiskEvent.objects.exists()


def test_a_query_over_the_limit_is_refused_too(client: Client) -> None:
    epay_channel()

    response = client.get(NOTIFY, {"pad": "x" * 20_000})

    assert response.status_code == 413
    assert not PaymentNotification.objects.exists()


@override_settings(KAMENG_NOTIFY_REJECTIONS_PER_ADDRESS=3)
def test_an_address_sending_refused_notifications_is_answered_429_without_rows(client: Client) -> None:
    payment = pending_payment(user_id=UserFactory.create().pk, channel=epay_channel(), amount="10.00")
    forged = {"pid": PID, "out_trade_no": payment.number, "money": "10.00", "trade_status": "TRADE_SUCCESS",
              "sign": "0" * 32}

    answers = [client.get(NOTIFY, forged, REMOTE_ADDR="198.51.100.7").status_code for _ in range(5)]
    genuine_elsewhere = client.get(NOTIFY, _notify_params(payment.number, "10.00"), REMOTE_ADDR="203.0.113.9")

    assert answers == [400, 400, 400, 429, 429]
    assert PaymentNotification.objects.filter(outcome=NotificationOutcome.REJECTED).count() == 3
    assert RiskEvent.objects.count() == 3
    assert genuine_elsewhere.status_code == 200  # another address (the gateway) is not slowed down
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED


def test_unknown_channels_write_a_bounded_number_of_rows(client: Client) -> None:
    answers = {client.get(f"/pay/notify/nope-{index}/", {"a": "b"}, REMOTE_ADDR=f"198.51.100.{index % 250}")
               .status_code for index in range(UNKNOWN_CHANNEL_ROWS_PER_MINUTE + 20)}

    assert answers == {404}
    assert PaymentNotification.objects.count() == UNKNOWN_CHANNEL_ROWS_PER_MINUTE
    assert RiskEvent.objects.count() == UNKNOWN_CHANNEL_ROWS_PER_MINUTE


@pytest.mark.parametrize("money", ["sNaN", "NaN", "Infinity", "5E+1", "５０", "50.00\n", " 50", "50.", ".5",
                                   "50.001", "-50", "+50", "5_0", "٥٠"])
def test_a_signed_epay_notification_with_a_malformed_amount_is_refused_and_recorded(
        client: Client, money: str) -> None:
    channel = epay_channel()
    payment = pending_payment(user_id=UserFactory.create().pk, channel=channel, amount="50.00")

    response = client.get(NOTIFY, _notify_params(payment.number, money))

    assert response.status_code == 400
    assert response.content == b"fail"
    record = PaymentNotification.objects.get()
    assert (record.outcome, record.reason) == (NotificationOutcome.REJECTED, "金额格式错误")
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
    assert wallet_balance(user_id=payment.user_id) == Decimal("0.00")
    assert not Journal.objects.exists()


@pytest.mark.parametrize(("text", "amount"), [("50", Decimal("50")), ("50.0", Decimal("50.0")),
                                              ("50.00", Decimal("50.00")), ("0.01", Decimal("0.01"))])
def test_well_formed_amounts_are_read(text: str, amount: Decimal) -> None:
    assert gateway_amount(text) == amount


@pytest.mark.parametrize("text", ["sNaN", "5E+1", "５０", "50.00\n", "", "1" * 11, None, 50])
def test_every_other_amount_is_none(text: object) -> None:
    assert gateway_amount(text) is None


def test_an_adapter_that_trips_still_leaves_a_row_and_answers_the_gateways_failure(
        client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    channel = epay_channel()
    payment = pending_payment(user_id=UserFactory.create().pk, channel=channel, amount="50.00")

    def trips(*_args: object, **_kwargs: object) -> None:
        raise ZeroDivisionError

    monkeypatch.setattr(EpayV1Gateway, "verify_notification", trips)
    response = Client(raise_request_exception=False).get(NOTIFY, _notify_params(payment.number, "50.00"))

    assert response.status_code == 400
    record = PaymentNotification.objects.get()
    assert record.outcome == NotificationOutcome.REJECTED
    assert "内部错误" in record.reason
