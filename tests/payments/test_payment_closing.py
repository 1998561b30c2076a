"""A pending payment that can no longer pay anything is closed by the reconciliation job after one final query,
and a closed payment proven paid later is still credited exactly once.

The gateway here is a fake (what it answers is the test's choice, every call is counted); the simulators' own
close calls are exercised end to end in tests/payments/test_closing_end_to_end.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from kameng.core.errors import ApplicationError
from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_cancel, order_checkout, order_pay_with_wallet, orders_expire_due
from kameng.payments import reconciliation
from kameng.payments.gateways.base import CloseResult, CloseStatus, GatewayError, QueryResult
from kameng.payments.gateways.epay import epay_sign
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
from kameng.payments.reconciliation import payment_close, payment_recheck, payments_reconcile_pending
from kameng.payments.services import payment_notification_process
from kameng.risk.models import RiskEvent
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db

PID = "1001"
KEY = "closing-merchant-key-0123456789ab"
NOT_PAID = QueryResult(is_paid=False, amount=None, gateway_trade_no="")


def paid(amount: str) -> QueryResult:
    return QueryResult(is_paid=True, amount=Decimal(amount), gateway_trade_no="T-QUERY-1")


@dataclass
class FakeGateway:
    """A gateway whose query and close answer what the test queued (the last answer repeats); every call kept."""

    has_close: bool = False
    query_answers: list[Any] = field(default_factory=lambda: [NOT_PAID])
    close_answers: list[Any] = field(default_factory=lambda: [CloseResult(status=CloseStatus.CLOSED,
                                                                          message="通道交易已关闭")])
    calls: list[tuple[str, str]] = field(default_factory=list)
    # How deep in transactions the test itself runs (pytest-django wraps each test in one): never deeper on a call.
    test_depth: int = 0

    def _outside_any_transaction(self) -> None:
        assert len(connection.atomic_blocks) == self.test_depth, "a gateway is never called inside a transaction"

    def query(self, *, out_trade_no: str) -> QueryResult:
        self.calls.append(("query", out_trade_no))
        self._outside_any_transaction()
        return self._next(self.query_answers)

    def close(self, *, out_trade_no: str) -> CloseResult:
        self.calls.append(("close", out_trade_no))
        self._outside_any_transaction()
        assert self.has_close, "close called on a gateway without one"
        return self._next(self.close_answers)

    @staticmethod
    def _next(answers: list[Any]) -> Any:
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> FakeGateway:
    fake = FakeGateway(test_depth=len(connection.atomic_blocks))
    monkeypatch.setattr(reconciliation, "gateway_for", lambda channel: fake)
    return fake


def _channel(**fields: object) -> PaymentChannel:
    defaults: dict[str, object] = {"code": "epay", "name": "易支付", "kind": ChannelKind.EPAY_V1,
                                   "gateway_url": "https://pay.example.com/", "merchant_id": PID, "merchant_key": KEY}
    return PaymentChannel.objects.create(**{**defaults, **fields})


def _pending_order(price: str = "20.00") -> Order:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal(price))
    stock_sku(sku, 3)
    return order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order


def _order_payment(order: Order, channel: PaymentChannel, number: str = "P0001", minutes_old: int = 5) -> Payment:
    payment = Payment.objects.create(number=number, user_id=order.buyer_id, channel=channel,
                                     purpose=PaymentPurpose.ORDER, order=order, amount=order.total_amount)
    return _aged(payment, minutes=minutes_old)


def _topup(channel: PaymentChannel, amount: str = "10.00", number: str = "P0002", minutes_old: int = 5) -> Payment:
    payment = Payment.objects.create(number=number, user_id=UserFactory.create().pk, channel=channel,
                                     purpose=PaymentPurpose.WALLET_TOPUP, amount=Decimal(amount))
    return _aged(payment, minutes=minutes_old)


def _aged(payment: Payment, *, minutes: int) -> Payment:
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(minutes=minutes))
    payment.refresh_from_db()
    return payment


def _expire(order: Order) -> None:
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert orders_expire_due() == 1


def _notify_params(payment: Payment, *, money: str | None = None, trade_no: str = "2026112600099") -> dict[str, str]:
    params = {"pid": PID, "trade_no": trade_no, "out_trade_no": payment.number, "type": "alipay",
              "name": "order", "money": money or f"{payment.amount:.2f}", "trade_status": "TRADE_SUCCESS"}
    return {**params, "sign": epay_sign(params, KEY), "sign_type": "MD5"}


def _state(payment: Payment) -> tuple[str, str]:
    payment.refresh_from_db()
    return payment.status, payment.close_reason


# -- closing ---------------------------------------------------------------------------------------------------

def test_a_payment_of_an_expired_order_gets_one_final_query_then_is_closed_and_never_asked_again(
        gateway: FakeGateway) -> None:
    order = _pending_order()
    payment = _order_payment(order, _channel())
    _expire(order)

    assert payments_reconcile_pending() == 0

    assert _state(payment) == (PaymentStatus.CLOSED, PaymentCloseReason.ORDER_EXPIRED)
    assert payment.closed_at is not None
    assert payment.close_detail == "最终查询：未支付；该通道没有关单接口"
    assert gateway.calls == [("query", "P0001")]
    for _ in range(3):
        assert payments_reconcile_pending() == 0
    assert gateway.calls == [("query", "P0001")]  # closed: not asked every minute for a day any more
    assert wallet_balance(user_id=order.buyer_id) == Decimal("0.00")
    assert not Journal.objects.filter(kind=JournalKind.WALLET_TOPUP).exists()
    assert ledger_problems() == []


def test_a_payment_of_a_cancelled_order_is_closed_as_cancelled(gateway: FakeGateway) -> None:
    order = _pending_order()
    payment = _order_payment(order, _channel())
    order_cancel(order_id=order.pk, buyer_id=order.buyer_id)

    payments_reconcile_pending()

    assert _state(payment) == (PaymentStatus.CLOSED, PaymentCloseReason.ORDER_CANCELLED)


def test_the_other_payments_of_an_order_paid_another_way_are_closed(gateway: FakeGateway) -> None:
    order = _pending_order()
    channel = _channel()
    first = _order_payment(order, channel, number="P0001")
    second = _order_payment(order, _channel(code="epay2"), number="P0002")
    fund_wallet(order.buyer, "20.00")
    order_pay_with_wallet(order_id=order.pk, buyer_id=order.buyer_id)

    payments_reconcile_pending()

    assert _state(first) == (PaymentStatus.CLOSED, PaymentCloseReason.ORDER_SETTLED)
    assert _state(second) == (PaymentStatus.CLOSED, PaymentCloseReason.ORDER_SETTLED)
    assert Order.objects.get(pk=order.pk).status == OrderStatus.DELIVERED


def test_a_payment_whose_order_still_waits_is_queried_but_never_closed(gateway: FakeGateway) -> None:
    payment = _order_payment(_pending_order(), _channel())

    payments_reconcile_pending()
    payments_reconcile_pending()  # asked already: next on its schedule, not on every run
    _due_again()
    payments_reconcile_pending()

    assert _state(payment) == (PaymentStatus.PENDING, "")
    assert gateway.calls == [("query", "P0001"), ("query", "P0001")]


def test_a_final_query_that_finds_it_paid_credits_the_wallet_once_with_the_orders_note(gateway: FakeGateway) -> None:
    order = _pending_order()
    payment = _order_payment(order, _channel())
    _expire(order)
    gateway.query_answers = [paid("20.00")]

    assert payments_reconcile_pending() == 1
    assert payments_reconcile_pending() == 0

    assert _state(payment) == (PaymentStatus.SUCCEEDED, "")
    assert payment.gateway_trade_no == "T-QUERY-1"
    assert wallet_balance(user_id=order.buyer_id) == Decimal("20.00")  # the order had closed: it stays there
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference="P0001").count() == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    assert "款项已存入您的钱包余额" in order.events.latest("id").message
    assert gateway.calls == [("query", "P0001")]
    assert ledger_problems() == []


def test_a_final_query_that_says_paid_with_another_amount_credits_nothing_and_is_closed_for_staff(
        gateway: FakeGateway) -> None:
    order = _pending_order()
    payment = _order_payment(order, _channel())
    _expire(order)
    gateway.query_answers = [paid("0.01")]

    assert payments_reconcile_pending() == 0

    assert _state(payment) == (PaymentStatus.CLOSED, PaymentCloseReason.ORDER_EXPIRED)
    assert "请人工核实" in payment.close_detail
    assert wallet_balance(user_id=order.buyer_id) == Decimal("0.00")
    assert RiskEvent.objects.filter(kind="payment_query_mismatch").count() == 1


def test_an_unreachable_gateway_leaves_it_pending_until_it_answers(gateway: FakeGateway) -> None:
    order = _pending_order()
    payment = _order_payment(order, _channel())
    _expire(order)
    gateway.query_answers = [GatewayError("支付网关查询失败", code="gateway_unreachable"), NOT_PAID]

    payments_reconcile_pending()
    assert _state(payment) == (PaymentStatus.PENDING, "")
    _due_again()
    payments_reconcile_pending()

    assert _state(payment) == (PaymentStatus.CLOSED, PaymentCloseReason.ORDER_EXPIRED)
    assert gateway.calls == [("query", "P0001"), ("query", "P0001")]


def test_a_gateway_unreachable_for_three_days_no_longer_keeps_it_in_the_job(gateway: FakeGateway) -> None:
    payment = _topup(_channel(), minutes_old=73 * 60)
    gateway.query_answers = [GatewayError("支付网关查询失败", code="gateway_unreachable")]

    payments_reconcile_pending()

    assert _state(payment) == (PaymentStatus.CLOSED, PaymentCloseReason.TOPUP_UNPAID)
    assert payment.close_detail.startswith("最终查询失败（支付网关查询失败）")
    assert "已直接关闭" in payment.close_detail


def test_a_top_up_is_asked_about_within_the_window_and_closed_after_it(gateway: FakeGateway) -> None:
    recent = _topup(_channel(), number="P0001", minutes_old=23 * 60)
    old = _topup(_channel(code="epay2"), number="P0002", minutes_old=25 * 60)
    paid_late = _topup(_channel(code="epay3"), number="P0003", amount="7.00", minutes_old=30 * 60)
    gateway.query_answers = [NOT_PAID, paid("7.00"), NOT_PAID]  # as asked: those that can pay, then oldest first

    assert payments_reconcile_pending() == 1

    assert _state(recent) == (PaymentStatus.PENDING, "")
    assert _state(old) == (PaymentStatus.CLOSED, PaymentCloseReason.TOPUP_UNPAID)
    assert _state(paid_late) == (PaymentStatus.SUCCEEDED, "")
    assert wallet_balance(user_id=paid_late.user_id) == Decimal("7.00")
    assert gateway.calls == [("query", "P0001"), ("query", "P0003"), ("query", "P0002")]


def test_where_the_protocol_can_the_trade_is_closed_at_the_gateway_before_the_payment(gateway: FakeGateway) -> None:
    gateway.has_close = True
    order = _pending_order()
    payment = _order_payment(order, _channel(kind=ChannelKind.ALIPAY, platform_public_key="PUBLIC"))
    _expire(order)

    payments_reconcile_pending()

    assert gateway.calls == [("query", "P0001"), ("close", "P0001")]
    assert _state(payment) == (PaymentStatus.CLOSED, PaymentCloseReason.ORDER_EXPIRED)
    assert payment.close_detail == "最终查询：未支付；通道交易已关闭"


def test_a_close_the_gateway_could_not_confirm_is_tried_again(gateway: FakeGateway) -> None:
    gateway.has_close = True
    gateway.close_answers = [GatewayError("关单失败", code="gateway_unreachable"),
                             CloseResult(status=CloseStatus.CLOSED, message="通道交易已关闭")]
    order = _pending_order()
    payment = _order_payment(order, _channel(kind=ChannelKind.ALIPAY, platform_public_key="PUBLIC"))
    _expire(order)

    payments_reconcile_pending()
    assert _state(payment) == (PaymentStatus.PENDING, "")
    _due_again()
    payments_reconcile_pending()

    assert _state(payment) == (PaymentStatus.CLOSED, PaymentCloseReason.ORDER_EXPIRED)
    assert [name for name, _ in gateway.calls] == ["query", "close", "query", "close"]


def test_paid_between_the_final_query_and_the_close_is_credited_not_closed(gateway: FakeGateway) -> None:
    gateway.has_close = True
    gateway.query_answers = [NOT_PAID, paid("20.00")]
    gateway.close_answers = [CloseResult(status=CloseStatus.NOT_OPEN, message="交易状态不合法")]
    order = _pending_order()
    payment = _order_payment(order, _channel(kind=ChannelKind.ALIPAY, platform_public_key="PUBLIC"))
    _expire(order)

    assert payments_reconcile_pending() == 1

    assert gateway.calls == [("query", "P0001"), ("close", "P0001"), ("query", "P0001")]
    assert _state(payment) == (PaymentStatus.SUCCEEDED, "")
    assert wallet_balance(user_id=order.buyer_id) == Decimal("20.00")


def test_closing_a_payment_a_notification_credited_meanwhile_changes_nothing() -> None:
    order = _pending_order()
    payment = _order_payment(order, _channel())
    payment_notification_process(channel_code="epay", params=_notify_params(payment))

    assert payment_close(payment_id=payment.pk, reason=PaymentCloseReason.ORDER_EXPIRED) is False

    assert _state(payment) == (PaymentStatus.SUCCEEDED, "")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.DELIVERED


# -- a closed payment proven paid later ------------------------------------------------------------------------

def test_a_late_notification_for_a_closed_top_up_credits_it_once_however_often_it_comes(
        gateway: FakeGateway) -> None:
    payment = _topup(_channel(), amount="30.00", minutes_old=25 * 60)
    payments_reconcile_pending()
    assert _state(payment) == (PaymentStatus.CLOSED, PaymentCloseReason.TOPUP_UNPAID)

    answers = [payment_notification_process(channel_code="epay", params=_notify_params(payment))
               for _ in range(100)]

    assert [answer.outcome for answer in answers] == [NotificationOutcome.CREDITED] + [
        NotificationOutcome.DUPLICATE] * 99
    assert {answer.body for answer in answers} == {"success"}
    assert _state(payment) == (PaymentStatus.SUCCEEDED, PaymentCloseReason.TOPUP_UNPAID)  # why it was closed, kept
    assert payment.gateway_trade_no == "2026112600099"
    assert wallet_balance(user_id=payment.user_id) == Decimal("30.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference=payment.number).count() == 1
    credited = PaymentNotification.objects.get(outcome=NotificationOutcome.CREDITED)
    assert credited.reason == "支付单已关闭后到账，仍入账"
    assert ledger_problems() == []


def test_a_late_notification_with_another_amount_for_a_closed_payment_credits_nothing(gateway: FakeGateway) -> None:
    payment = _topup(_channel(), amount="30.00", minutes_old=25 * 60)
    payments_reconcile_pending()

    forged = payment_notification_process(channel_code="epay", params=_notify_params(payment, money="3000.00"))
    genuine = payment_notification_process(channel_code="epay", params=_notify_params(payment))

    assert (forged.outcome, genuine.outcome) == (NotificationOutcome.REJECTED, NotificationOutcome.CREDITED)
    assert wallet_balance(user_id=payment.user_id) == Decimal("30.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference=payment.number).count() == 1


def test_a_late_notification_for_a_closed_order_payment_lands_in_the_wallet_with_the_orders_note(
        gateway: FakeGateway) -> None:
    order = _pending_order()
    payment = _order_payment(order, _channel())
    order_cancel(order_id=order.pk, buyer_id=order.buyer_id)
    payments_reconcile_pending()
    assert _state(payment) == (PaymentStatus.CLOSED, PaymentCloseReason.ORDER_CANCELLED)

    outcomes = [payment_notification_process(channel_code="epay", params=_notify_params(payment)).outcome
                for _ in range(5)]

    assert outcomes == [NotificationOutcome.CREDITED] + [NotificationOutcome.DUPLICATE] * 4
    assert wallet_balance(user_id=order.buyer_id) == Decimal("20.00")
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    notes = [event.message for event in order.events.filter(from_status=OrderStatus.CANCELLED)]
    assert len(notes) == 1
    assert "款项已存入您的钱包余额" in notes[0]
    assert ledger_problems() == []


def test_a_later_query_that_proves_a_closed_payment_paid_credits_it_once(gateway: FakeGateway) -> None:
    """Staff ask the gateway again about a closed payment (a buyer says they paid after all): credited once."""
    order = _pending_order()
    payment = _order_payment(order, _channel())
    _expire(order)
    payments_reconcile_pending()
    assert _state(payment) == (PaymentStatus.CLOSED, PaymentCloseReason.ORDER_EXPIRED)
    gateway.query_answers = [paid("20.00")]

    outcomes = [payment_recheck(payment_id=payment.pk) for _ in range(3)]

    assert outcomes == [NotificationOutcome.CREDITED, NotificationOutcome.DUPLICATE, NotificationOutcome.DUPLICATE]
    assert _state(payment) == (PaymentStatus.SUCCEEDED, PaymentCloseReason.ORDER_EXPIRED)
    assert wallet_balance(user_id=order.buyer_id) == Decimal("20.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference=payment.number).count() == 1
    assert "款项已存入您的钱包余额" in Order.objects.get(pk=order.pk).events.latest("id").message
    assert ledger_problems() == []


def test_a_later_query_still_checks_the_amount(gateway: FakeGateway) -> None:
    payment = _topup(_channel(), amount="12.00")
    assert payment_close(payment_id=payment.pk, reason=PaymentCloseReason.TOPUP_UNPAID)
    gateway.query_answers = [paid("1200.00")]

    assert payment_recheck(payment_id=payment.pk) == NotificationOutcome.REJECTED

    assert _state(payment) == (PaymentStatus.CLOSED, PaymentCloseReason.TOPUP_UNPAID)
    assert wallet_balance(user_id=payment.user_id) == Decimal("0.00")
    assert RiskEvent.objects.filter(kind="payment_query_mismatch").count() == 1


def test_a_closed_payment_must_say_why() -> None:
    payment = _topup(_channel())

    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.CLOSED)


def _due_again() -> None:
    """The time of every pending payment's next scheduled query has come (minutes pass between runs)."""
    Payment.objects.filter(status=PaymentStatus.PENDING).update(next_query_at=timezone.now())


# -- channels missing a credential -------------------------------------------------------------------------------

def test_payments_of_a_channel_missing_a_credential_are_skipped_and_said_once(
        gateway: FakeGateway, caplog: pytest.LogCaptureFixture) -> None:
    broken = _channel(code="broken", merchant_key=None)
    stale_order = _pending_order()
    skipped_order_payment = _order_payment(stale_order, broken, number="P0001")
    _expire(stale_order)
    skipped_topup = _topup(broken, number="P0002", minutes_old=30 * 60)
    fine = _topup(_channel(), number="P0003")

    with caplog.at_level(logging.WARNING, logger="kameng.payments.reconciliation"):
        for _ in range(5):
            _due_again()
            payments_reconcile_pending()

    said = [record.getMessage() for record in caplog.records if record.name == "kameng.payments.reconciliation"]
    assert len(said) == 1
    assert "broken" in said[0]
    assert "商户密钥" in said[0]
    assert "2 pending payment(s)" in said[0]
    assert gateway.calls == [("query", "P0003")] * 5  # the broken channel's payments never reach a gateway
    assert _state(skipped_order_payment) == (PaymentStatus.PENDING, "")
    assert _state(skipped_topup) == (PaymentStatus.PENDING, "")
    assert _state(fine) == (PaymentStatus.PENDING, "")

    broken.merchant_key = KEY  # completed: its payments are settled on the next run
    broken.save()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="kameng.payments.reconciliation"):
        payments_reconcile_pending()
    assert _state(skipped_order_payment) == (PaymentStatus.CLOSED, PaymentCloseReason.ORDER_EXPIRED)
    assert _state(skipped_topup) == (PaymentStatus.CLOSED, PaymentCloseReason.TOPUP_UNPAID)
    assert not [record for record in caplog.records if record.name == "kameng.payments.reconciliation"]


def test_a_channel_that_loses_a_credential_again_is_said_again(gateway: FakeGateway,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    channel = _channel(code="flaky", merchant_key=None)
    _topup(channel)
    with caplog.at_level(logging.WARNING, logger="kameng.payments.reconciliation"):
        payments_reconcile_pending()
        channel.merchant_key = KEY
        channel.save()
        payments_reconcile_pending()
        channel.merchant_key = None
        channel.save()
        payments_reconcile_pending()
        payments_reconcile_pending()

    said = [record for record in caplog.records if record.name == "kameng.payments.reconciliation"]
    assert len(said) == 2


def test_a_channel_missing_a_credential_no_longer_stops_the_whole_job(caplog: pytest.LogCaptureFixture) -> None:
    """With the real adapters: building one for such a channel raises ChannelMisconfiguredError, which used to
    escape the job every minute, before any other payment was looked at."""
    broken = _channel(code="broken", merchant_key="   ")
    _topup(broken, number="P0001")
    stale = _topup(broken, number="P0002", minutes_old=30 * 60)

    with caplog.at_level(logging.WARNING, logger="kameng.payments.reconciliation"):
        assert payments_reconcile_pending() == 0
        assert payments_reconcile_pending() == 0

    assert _state(stale) == (PaymentStatus.PENDING, "")
    assert len([record for record in caplog.records if record.name == "kameng.payments.reconciliation"]) == 1


def test_a_channel_whose_key_cannot_be_read_does_not_stop_the_job_either() -> None:
    """Every field filled in, but the Alipay key is not a key: found out only when the adapter is built."""
    unreadable = _channel(code="alipay", kind=ChannelKind.ALIPAY, merchant_key="not a key",
                          platform_public_key="not a key either")
    order = _pending_order()
    payment = _order_payment(order, unreadable)
    _expire(order)
    waiting = _topup(unreadable, number="P0002")

    assert payments_reconcile_pending() == 0

    assert _state(payment) == (PaymentStatus.PENDING, "")  # asked again next run; closed anyway after 72 h
    assert _state(waiting) == (PaymentStatus.PENDING, "")


def test_the_job_answers_even_when_a_gateway_misbehaves_in_an_unexpected_way(gateway: FakeGateway) -> None:
    order = _pending_order()
    payment = _order_payment(order, _channel())
    _expire(order)
    gateway.query_answers = [ApplicationError("奇怪的应答", code="odd")]

    payments_reconcile_pending()

    assert _state(payment) == (PaymentStatus.PENDING, "")
