"""Closing a payment while its notification is being credited, on real PostgreSQL row locks with real threads.

Both take the payment's order first, then the payment (kameng.payments.locks), so they queue: whichever commits
first, the payment ends SUCCEEDED with exactly one top-up journal (closing a credited payment changes nothing;
crediting a closed one still credits it, once), nobody deadlocks, and the ledger balances. Two reconciliation runs
overlapping (two beat schedulers by mistake) credit a payment their final query finds paid once.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout, orders_expire_due
from kameng.payments import reconciliation
from kameng.payments.gateways.base import QueryResult
from kameng.payments.gateways.epay import epay_sign
from kameng.payments.models import (
    ChannelKind,
    NotificationOutcome,
    Payment,
    PaymentChannel,
    PaymentCloseReason,
    PaymentPurpose,
    PaymentStatus,
)
from kameng.payments.reconciliation import payment_close, payments_reconcile_pending
from kameng.payments.services import payment_notification_process
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.factories import SkuFactory, UserFactory, stock_sku

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PID = "1001"
KEY = "race-merchant-key-0123456789abcd"
THREADS = 24


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    requires_postgresql()


def _expired_order_payment() -> Payment:
    channel = PaymentChannel.objects.create(code="epay", name="易支付", kind=ChannelKind.EPAY_V1,
                                            gateway_url="https://pay.example.com/", merchant_id=PID,
                                            merchant_key=KEY)
    sku = SkuFactory.create(price=Decimal("20.00"))
    stock_sku(sku, 2)
    order = order_checkout(buyer_id=UserFactory.create().pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order
    payment = Payment.objects.create(number="P-RACE-1", user_id=order.buyer_id, channel=channel,
                                     purpose=PaymentPurpose.ORDER, order=order, amount=order.total_amount)
    Payment.objects.filter(pk=payment.pk).update(created_at=timezone.now() - timedelta(minutes=20))
    Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert orders_expire_due() == 1
    return Payment.objects.get(pk=payment.pk)


def _signed(payment: Payment) -> dict[str, str]:
    params = {"pid": PID, "trade_no": "2026112600777", "out_trade_no": payment.number, "type": "alipay",
              "name": "order", "money": f"{payment.amount:.2f}", "trade_status": "TRADE_SUCCESS"}
    return {**params, "sign": epay_sign(params, KEY), "sign_type": "MD5"}


def test_closing_and_crediting_at_once_credit_exactly_once() -> None:
    payment = _expired_order_payment()
    params = _signed(payment)

    def act(index: int) -> str:
        if index % 2:
            return payment_notification_process(channel_code="epay", params=dict(params)).outcome
        return "closed" if payment_close(payment_id=payment.pk, reason=PaymentCloseReason.ORDER_EXPIRED) else "kept"

    outcomes = run_in_threads(THREADS, act)

    assert unexpected(outcomes) == []
    values = [outcome.value for outcome in outcomes]
    assert values.count(NotificationOutcome.CREDITED) == 1
    assert values.count(NotificationOutcome.DUPLICATE) == THREADS // 2 - 1
    assert values.count("closed") <= 1
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert wallet_balance(user_id=payment.user_id) == Decimal("20.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference=payment.number).count() == 1
    assert payment.order is not None
    assert payment.order.status == OrderStatus.EXPIRED
    assert ledger_problems() == []


def test_overlapping_reconciliation_runs_credit_a_payment_found_paid_once(monkeypatch: pytest.MonkeyPatch) -> None:
    payment = _expired_order_payment()

    class PaidGateway:
        has_close = False

        def query(self, *, out_trade_no: str) -> QueryResult:
            return QueryResult(is_paid=True, amount=Decimal("20.00"), gateway_trade_no="T-RACE")

    monkeypatch.setattr(reconciliation, "gateway_for", lambda channel: PaidGateway())

    outcomes = run_in_threads(8, lambda index: payments_reconcile_pending())

    assert unexpected(outcomes) == []
    assert sum(outcome.value or 0 for outcome in outcomes) == 1
    payment.refresh_from_db()
    assert (payment.status, payment.gateway_trade_no) == (PaymentStatus.SUCCEEDED, "T-RACE")
    assert wallet_balance(user_id=payment.user_id) == Decimal("20.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference=payment.number).count() == 1
    assert ledger_problems() == []
