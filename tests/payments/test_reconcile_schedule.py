"""Each pending payment is asked on a schedule of its own (1, 2, 5, 10, 30 minutes after creation, then hourly), the
most overdue first, so a backlog larger than one run's limit cannot keep a newer payment from being asked (it once
did: each run asked only the 100 oldest, and a lost notification behind 120 abandoned top-ups went unasked)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from kameng.ledger.selectors import wallet_balance
from kameng.payments import reconciliation
from kameng.payments.gateways.base import QueryResult
from kameng.payments.models import ChannelKind, Payment, PaymentChannel, PaymentPurpose, PaymentStatus
from kameng.payments.reconciliation import payment_next_query_at, payments_reconcile_pending
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NOT_PAID = QueryResult(is_paid=False, amount=None, gateway_trade_no="")


class GatewayWithOnePaid:
    """Says `paid_number` is paid (its amount), every other payment not paid; keeps what it was asked."""

    def __init__(self, paid_number: str, amount: Decimal) -> None:
        self.paid_number, self.amount = paid_number, amount
        self.asked: list[str] = []

    def query(self, *, out_trade_no: str) -> QueryResult:
        self.asked.append(out_trade_no)
        if out_trade_no == self.paid_number:
            return QueryResult(is_paid=True, amount=self.amount, gateway_trade_no="T-LOST-1")
        return NOT_PAID


def _channel() -> PaymentChannel:
    return PaymentChannel.objects.create(code="epay", name="易支付", kind=ChannelKind.EPAY_V1,
                                         gateway_url="https://pay.example.com/", merchant_id="1001",
                                         merchant_key="schedule-merchant-key-0123456789")


def _topups(channel: PaymentChannel, count: int, *, minutes_old: int, first: int = 0) -> list[Payment]:
    user = UserFactory.create()
    payments = Payment.objects.bulk_create(
        Payment(number=f"P{first + index:06d}", user=user, channel=channel, purpose=PaymentPurpose.WALLET_TOPUP,
                amount=Decimal("10.00")) for index in range(count))
    Payment.objects.filter(pk__in=[payment.pk for payment in payments]).update(
        created_at=timezone.now() - timedelta(minutes=minutes_old))
    return list(Payment.objects.filter(pk__in=[payment.pk for payment in payments]).order_by("id"))


def test_a_lost_notification_behind_a_backlog_larger_than_one_run_is_still_asked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    channel = _channel()
    abandoned = _topups(channel, 120, minutes_old=120)
    (lost,) = _topups(channel, 1, minutes_old=3, first=900)
    gateway = GatewayWithOnePaid(lost.number, lost.amount)
    monkeypatch.setattr(reconciliation, "gateway_for", lambda _channel: gateway)

    first_run = payments_reconcile_pending(limit=100)
    second_run = payments_reconcile_pending(limit=100)

    assert (first_run, second_run) == (0, 1)
    assert len(gateway.asked) == 121
    assert set(gateway.asked) == {payment.number for payment in [*abandoned, lost]}  # every one reached, once
    lost.refresh_from_db()
    assert lost.status == PaymentStatus.SUCCEEDED
    assert wallet_balance(user_id=lost.user_id) == Decimal("10.00")
    assert Payment.objects.filter(status=PaymentStatus.PENDING).count() == 120


def test_an_asked_payment_waits_for_its_next_point_then_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    (payment,) = _topups(_channel(), 1, minutes_old=3)
    gateway = GatewayWithOnePaid("P-none", Decimal("1.00"))
    monkeypatch.setattr(reconciliation, "gateway_for", lambda _channel: gateway)

    payments_reconcile_pending()
    payments_reconcile_pending()

    payment.refresh_from_db()
    assert gateway.asked == [payment.number]
    assert payment.last_queried_at is not None
    assert payment.next_query_at == payment.created_at + timedelta(minutes=5)

    Payment.objects.filter(pk=payment.pk).update(next_query_at=timezone.now() - timedelta(seconds=1))
    payments_reconcile_pending()

    assert gateway.asked == [payment.number, payment.number]


@pytest.mark.parametrize(("asked_after", "next_after"), [
    (timedelta(seconds=61), timedelta(minutes=2)),
    (timedelta(minutes=2), timedelta(minutes=5)),
    (timedelta(minutes=4, seconds=59), timedelta(minutes=5)),
    (timedelta(minutes=7), timedelta(minutes=10)),
    (timedelta(minutes=12), timedelta(minutes=30)),
    (timedelta(minutes=30), timedelta(minutes=90)),
    (timedelta(minutes=95), timedelta(minutes=150)),
    (timedelta(hours=23, minutes=31), timedelta(hours=24, minutes=30)),
])
def test_the_schedule_is_one_two_five_ten_thirty_minutes_then_hourly(asked_after: timedelta,
                                                                     next_after: timedelta) -> None:
    created = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.get_current_timezone())

    assert payment_next_query_at(created_at=created, asked_at=created + asked_after) == created + next_after
