"""Supplier money under races on PostgreSQL: simultaneous withdrawal requests never take more than the payable
holds, simultaneous reviews of one withdrawal move its money once, simultaneous settlements of one order post once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kameng.core.errors import ConflictError
from kameng.ledger.models import AccountKind, Journal, JournalKind
from kameng.suppliers.models import SupplierWithdrawal, WithdrawalStatus
from kameng.suppliers.settlement import order_suppliers_settle
from kameng.suppliers.withdrawals import (
    supplier_withdrawal_pay,
    supplier_withdrawal_reject,
    supplier_withdrawal_request,
)
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.factories import SupplierFactory, UserFactory
from tests.suppliers.money_support import Capture, balance, card_key_order, credit_payable

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgresql() -> None:
    requires_postgresql()


def test_simultaneous_requests_cannot_overdraw_the_payable() -> None:
    supplier = SupplierFactory.create()
    credit_payable(supplier, "1000.00")

    outcomes = run_in_threads(8, lambda index: supplier_withdrawal_request(
        supplier_id=supplier.pk, amount=Decimal("300.00"), bank_name="工商银行", account_name="某某公司",
        account_number="6222020200112233445", request_id=f"race-{index}"))

    assert unexpected(outcomes, ConflictError) == []
    refused = [outcome.error for outcome in outcomes if outcome.error is not None]
    assert [getattr(error, "code", "") for error in refused] == ["withdrawal_exceeds_balance"] * 5
    assert SupplierWithdrawal.objects.count() == 3
    assert Journal.objects.filter(kind=JournalKind.SUPPLIER_WITHDRAWAL).count() == 3
    assert balance(supplier, AccountKind.SUPPLIER_PAYABLE) == Decimal("100.00")


def test_simultaneous_reviews_move_the_money_once() -> None:
    supplier = SupplierFactory.create()
    credit_payable(supplier, "1000.00")
    staff = UserFactory.create(is_staff=True)
    withdrawal = supplier_withdrawal_request(supplier_id=supplier.pk, amount=Decimal("600.00"), bank_name="工商银行",
                                             account_name="某某公司", account_number="6222020200112233445")

    def review(index: int) -> SupplierWithdrawal:
        if index % 2:
            return supplier_withdrawal_pay(withdrawal_id=withdrawal.pk, reviewer_id=staff.pk,
                                           transfer_reference=f"T{index}")
        return supplier_withdrawal_reject(withdrawal_id=withdrawal.pk, reviewer_id=staff.pk, reason="重复申请")

    outcomes = run_in_threads(6, review)

    assert unexpected(outcomes, ConflictError) == []
    assert len([outcome for outcome in outcomes if outcome.error is None]) == 1
    final = SupplierWithdrawal.objects.get()
    reviews = Journal.objects.filter(kind__in=[JournalKind.SUPPLIER_WITHDRAWAL_PAID,
                                               JournalKind.SUPPLIER_WITHDRAWAL_REJECTED]).count()
    assert reviews == 1
    expected = Decimal("400.00") if final.status == WithdrawalStatus.PAID else Decimal("1000.00")
    assert balance(supplier, AccountKind.SUPPLIER_PAYABLE) == expected


def test_simultaneous_settlements_of_one_order_post_once(
        django_capture_on_commit_callbacks: Capture) -> None:
    supplier = SupplierFactory.create(tax_rate=Decimal("0.03"))
    order = card_key_order(django_capture_on_commit_callbacks, supplier=supplier, cost="97.00")  # no listener

    outcomes = run_in_threads(6, lambda index: order_suppliers_settle(order_id=order.pk))

    assert unexpected(outcomes) == []
    assert Journal.objects.filter(kind=JournalKind.SUPPLIER_SETTLEMENT).count() == 1
    assert balance(supplier, AccountKind.SUPPLIER_PAYABLE) == Decimal("94.09")
