"""The same valid notify arriving 100 times at once credits the wallet exactly once (PostgreSQL, real threads)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection

from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.payments.models import NotificationOutcome, PaymentNotification, PaymentStatus
from kameng.payments.services import payment_notification_process
from kameng.simulators.services import simulated_epay_notify_params
from tests.factories import UserFactory
from tests.payments.support import CHANNEL_CODE, epay_channel, epay_merchant, paid_trade, pending_payment

DELIVERIES = 100
WORKERS = 16


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_same_notify_processed_100_times_in_parallel_credits_once() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers and ignores select_for_update")
    buyer = UserFactory.create()
    payment = pending_payment(user_id=buyer.pk, channel=epay_channel(), amount="50.00", number="P0100")
    params = simulated_epay_notify_params(paid_trade(merchant=epay_merchant(), out_trade_no=payment.number,
                                                     money="50.00"))

    def deliver(_: int) -> str:
        try:
            return payment_notification_process(channel_code=CHANNEL_CODE, params=dict(params)).outcome
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        outcomes = list(pool.map(deliver, range(DELIVERIES)))

    assert outcomes.count(NotificationOutcome.CREDITED) == 1
    assert outcomes.count(NotificationOutcome.DUPLICATE) == DELIVERIES - 1
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert wallet_balance(user_id=buyer.pk) == Decimal("50.00")
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference="P0100").count() == 1
    assert PaymentNotification.objects.filter(outcome=NotificationOutcome.CREDITED).count() == 1
    assert PaymentNotification.objects.filter(outcome=NotificationOutcome.DUPLICATE).count() == DELIVERIES - 1
    assert ledger_problems() == []
