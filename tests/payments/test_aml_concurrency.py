"""AML review races on PostgreSQL (real threads): one decision per review, one structuring decision per pattern."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection

from kameng.core.errors import ConflictError
from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.payments.aml import aml_review_approve
from kameng.payments.aml_selectors import wallet_held_balance
from kameng.payments.models import AmlReview, NotificationOutcome
from kameng.payments.services import payment_credit
from tests.factories import UserFactory
from tests.payments.aml_support import paid_topup, policy, topup

WORKERS = 8


def _needs_postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers and ignores select_for_update")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_approvals_post_one_journal() -> None:
    _needs_postgres()
    buyer = UserFactory.create()
    paid_topup(buyer, "7777.77")
    review = AmlReview.objects.get()

    def approve(_: int) -> str:
        try:
            aml_review_approve(review_id=review.pk, staff_id=None)
            return "approved"
        except ConflictError:
            return "refused"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        answers = list(pool.map(approve, range(WORKERS)))

    assert answers.count("approved") == 1
    assert answers.count("refused") == WORKERS - 1
    assert Journal.objects.filter(kind=JournalKind.AML_TOPUP_RELEASED).count() == 1
    assert wallet_balance(user_id=buyer.pk) == Decimal("7777.77")
    assert wallet_held_balance(user_id=buyer.pk) == Decimal("0.00")
    assert ledger_problems() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_notifications_of_a_held_topup_credit_once() -> None:
    _needs_postgres()
    buyer = UserFactory.create()
    payment = topup(buyer, "9000.00")

    def deliver(_: int) -> str:
        try:
            return payment_credit(channel=payment.channel, out_trade_no=payment.number, amount=payment.amount,
                                  gateway_trade_no="T1")[0]
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        outcomes = list(pool.map(deliver, range(WORKERS * 2)))

    assert outcomes.count(NotificationOutcome.CREDITED) == 1
    assert AmlReview.objects.count() == 1
    assert Journal.objects.filter(kind=JournalKind.WALLET_TOPUP, reference=payment.number).count() == 1
    assert wallet_held_balance(user_id=buyer.pk) == Decimal("9000.00")
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")
    assert ledger_problems() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_three_near_threshold_topups_credited_at_once_hold_exactly_one() -> None:
    """Decided one after the other under the buyer's wallet lock: the one that completes the pattern is held."""
    _needs_postgres()
    policy()
    buyer = UserFactory.create()
    payments = [topup(buyer, "4500.00") for _ in range(3)]

    def deliver(index: int) -> str:
        payment = payments[index]
        try:
            return payment_credit(channel=payment.channel, out_trade_no=payment.number, amount=payment.amount,
                                  gateway_trade_no=f"T{index}")[0]
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(deliver, range(3)))

    assert outcomes == [NotificationOutcome.CREDITED] * 3
    assert AmlReview.objects.count() == 1
    assert wallet_balance(user_id=buyer.pk) == Decimal("9000.00")
    assert wallet_held_balance(user_id=buyer.pk) == Decimal("4500.00")
    assert ledger_problems() == []
