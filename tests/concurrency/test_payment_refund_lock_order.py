"""A second gateway payment for an order that is already delivered, credited while staff refund that order.

Every path locks the order row before the wallet (kameng/orders/services.py). Crediting used to lock the wallet
(the top-up journal) and then the order (paying it), so against a refund — order, then wallet — each transaction
held what the other waited for and PostgreSQL killed one with a deadlock. Finishing a refused original refund
posted to the wallet and then noted the order, the same inversion.

Each test forces the dangerous interleaving with two events around the real calls: the first transaction holds
its first lock and waits (a bounded time) until the second holds the other one. With the locks in one order the
second simply queues behind the first, the wait times out, and both finish.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from kameng.ledger.models import JournalKind
from kameng.ledger.selectors import wallet_balance
from kameng.orders import refunds as order_refunds
from kameng.orders.models import OrderStatus
from kameng.payments import locks as payment_locks
from kameng.payments import refunds as payment_refunds
from kameng.payments import services as payment_services
from kameng.payments.gateways.base import RefundResult, RefundStatus
from kameng.payments.models import (
    NotificationOutcome,
    Payment,
    PaymentPurpose,
    PaymentStatus,
    Refund,
    RefundDestination,
)
from kameng.payments.models import RefundStatus as OurRefundStatus
from kameng.payments.refunds import order_refund
from kameng.payments.services import payment_credit
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.payments.refund_support import fake_refund_gateway_install, order_paid_by_channel

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Long enough for PostgreSQL's deadlock check (deadlock_timeout, 1 s by default) to fire while both wait.
HOLD_SECONDS = 3.0


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    requires_postgresql()


def _after(real: Callable[..., Any], done: threading.Event, *, wait_for: threading.Event | None = None,
           when: Callable[..., bool] = lambda **kwargs: True) -> Callable[..., Any]:
    """`real`, then (when `when(**kwargs)`) set `done` and wait a bounded time for `wait_for`."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if when(**kwargs):
            done.set()
            if wait_for is not None:
                wait_for.wait(HOLD_SECONDS)
        return result

    return wrapper


def _before(real: Callable[..., Any], wait_for: threading.Event, done: threading.Event | None = None,
            thread: str = "") -> Callable[..., Any]:
    """Wait a bounded time for `wait_for`, then `real`, then set `done` (only in the named thread, if one is)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if thread and threading.current_thread().name != thread:
            return real(*args, **kwargs)
        wait_for.wait(HOLD_SECONDS)
        result = real(*args, **kwargs)
        if done is not None:
            done.set()
        return result

    return wrapper


def _second_payment(payment: Payment) -> Payment:
    """The buyer paid the same order again (a second QR code scanned): a pending payment of the same amount."""
    assert payment.order_id is not None
    return Payment.objects.create(number=f"{payment.number}-2", user_id=payment.user_id, channel=payment.channel,
                                  purpose=PaymentPurpose.ORDER, order_id=payment.order_id, amount=payment.amount)


def test_a_second_payment_credited_while_staff_refund_the_order_to_the_wallet(
        monkeypatch: pytest.MonkeyPatch) -> None:
    order, payment = order_paid_by_channel("30.00")
    second = _second_payment(payment)
    refund_holds_order, credit_holds_wallet = threading.Event(), threading.Event()
    # The refund: order locked, then (before its journal touches the wallet) wait for the credit to hold the wallet.
    monkeypatch.setattr(order_refunds, "journal_draft_post",
                        _before(order_refunds.journal_draft_post, wait_for=credit_holds_wallet))
    monkeypatch.setattr(order_refunds, "order_lock",
                        _after(order_refunds.order_lock, refund_holds_order))
    # The credit starts once the refund holds the order, and says when its top-up journal holds the wallet.
    monkeypatch.setattr(payment_services, "journal_draft_post",
                        _after(payment_services.journal_draft_post, credit_holds_wallet))

    def act(index: int) -> object:
        connection.ensure_connection()
        if index == 0:
            return order_refund(order_id=order.pk, amount=Decimal("30.00"), destination=RefundDestination.WALLET,
                                reason="买家申请")
        refund_holds_order.wait(HOLD_SECONDS)
        return payment_credit(channel=payment.channel, out_trade_no=second.number, amount=Decimal("30.00"),
                              gateway_trade_no="T2")

    outcomes = run_in_threads(2, act)

    assert unexpected(outcomes) == []  # no deadlock: the credit queued behind the refund on the order
    order.refresh_from_db()
    second.refresh_from_db()
    assert (order.status, order.refunded_amount) == (OrderStatus.REFUNDED, Decimal("30.00"))
    assert second.status == PaymentStatus.SUCCEEDED
    assert outcomes[1].value == (NotificationOutcome.CREDITED, "", second)
    # The refund and the second payment both stay in the wallet: nothing lost, nothing twice.
    assert wallet_balance(user_id=order.buyer_id) == Decimal("60.00")
    assert "款项已存入您的钱包余额" in order.events.latest("id").message  # the credit came second


def test_a_second_payment_credited_while_a_refused_original_refund_comes_back_to_the_wallet(
        monkeypatch: pytest.MonkeyPatch) -> None:
    order, payment = order_paid_by_channel("30.00")
    second = _second_payment(payment)
    gateway = fake_refund_gateway_install(monkeypatch)
    gateway.answers.append(RefundResult(status=RefundStatus.FAILED, message="交易已超过退款期限"))
    refund_holds_wallet, credit_holds_order = threading.Event(), threading.Event()
    # Finishing the refused refund: its reversal journal (the wallet), then wait for the credit to hold the order
    # before it notes the order.
    monkeypatch.setattr(payment_refunds, "journal_draft_post", _after(
        payment_refunds.journal_draft_post, refund_holds_wallet, wait_for=credit_holds_order,
        when=lambda **kwargs: kwargs["draft"].kind == JournalKind.REFUND_PAYOUT_REVERSAL))
    # The credit (thread 1 only): takes the order once the refund holds the wallet, then wants the wallet.
    monkeypatch.setattr(payment_locks, "order_lock", _before(
        payment_locks.order_lock, wait_for=refund_holds_wallet, done=credit_holds_order, thread="race-1"))

    def act(index: int) -> object:
        connection.ensure_connection()
        if index == 0:
            return order_refund(order_id=order.pk, amount=Decimal("30.00"), destination=RefundDestination.ORIGINAL,
                                reason="买家申请")
        return payment_credit(channel=payment.channel, out_trade_no=second.number, amount=Decimal("30.00"),
                              gateway_trade_no="T2")

    outcomes = run_in_threads(2, act)

    assert unexpected(outcomes) == []
    refund = Refund.objects.get()
    second.refresh_from_db()
    order.refresh_from_db()
    assert (refund.status, refund.failure_reason) == (OurRefundStatus.FAILED, "交易已超过退款期限")
    assert second.status == PaymentStatus.SUCCEEDED
    assert (order.status, order.refunded_amount) == (OrderStatus.REFUNDED, Decimal("30.00"))
    assert wallet_balance(user_id=order.buyer_id) == Decimal("60.00")
