"""Supplier withdrawals: the money leaves the payable at request, staff pay (transfer reference) or reject (money
back) exactly once, the bank account is encrypted and masked, and every refusal leaves nothing behind."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from kameng.core.errors import ApplicationError, ConflictError
from kameng.ledger.models import AccountKind, Journal, JournalKind
from kameng.suppliers.models import SupplierWithdrawal, WithdrawalStatus
from kameng.suppliers.withdrawals import (
    mask_bank_account,
    supplier_withdrawal_pay,
    supplier_withdrawal_reject,
    supplier_withdrawal_request,
    withdrawable_amount,
)
from tests.factories import SupplierFactory, UserFactory
from tests.suppliers.money_support import balance, credit_payable

pytestmark = pytest.mark.django_db
PAYABLE = AccountKind.SUPPLIER_PAYABLE
ACCOUNT = "6222 0202 0011 2233 445"


def _request(supplier_id: int, amount: str, **kwargs: str) -> SupplierWithdrawal:
    fields: dict[str, Any] = {"bank_name": "工商银行北京分行", "account_name": "北京某某科技有限公司",
                              "account_number": ACCOUNT}
    fields.update(kwargs)
    return supplier_withdrawal_request(supplier_id=supplier_id, amount=Decimal(amount), **fields)


def _in_review() -> Decimal:
    from kameng.ledger.models import Account
    from kameng.ledger.selectors import account_balance_from_entries

    account = Account.objects.filter(kind=AccountKind.SUPPLIER_WITHDRAWALS_IN_REVIEW).first()
    return account_balance_from_entries(account_id=account.pk) if account else Decimal("0.00")


def test_a_request_moves_the_money_into_review_and_keeps_the_account_encrypted() -> None:
    supplier = SupplierFactory.create()
    credit_payable(supplier, "500.00")

    withdrawal = _request(supplier.pk, "300.00")

    assert balance(supplier, PAYABLE) == Decimal("200.00")
    assert _in_review() == Decimal("300.00")
    assert withdrawal.status == WithdrawalStatus.REQUESTED
    assert SupplierWithdrawal.objects.get().account_number == "6222020200112233445"
    with connection.cursor() as cursor:
        cursor.execute("SELECT account_number FROM suppliers_supplierwithdrawal")
        stored = bytes(cursor.fetchone()[0])
    assert b"6222020200112233445" not in stored
    assert mask_bank_account("6222020200112233445") == "**** 3445"


def test_paying_records_the_transfer_once() -> None:
    supplier = SupplierFactory.create()
    credit_payable(supplier, "500.00")
    staff = UserFactory.create(is_staff=True)
    withdrawal = _request(supplier.pk, "300.00")

    paid = supplier_withdrawal_pay(withdrawal_id=withdrawal.pk, reviewer_id=staff.pk,
                                   transfer_reference="ICBC20261203001")

    assert (paid.status, paid.transfer_reference, paid.reviewed_by_id) == (WithdrawalStatus.PAID, "ICBC20261203001",
                                                                           staff.pk)
    assert _in_review() == Decimal("0.00")
    with pytest.raises(ConflictError) as again:
        supplier_withdrawal_pay(withdrawal_id=withdrawal.pk, reviewer_id=staff.pk, transfer_reference="X")
    assert again.value.code == "withdrawal_already_reviewed"
    with pytest.raises(ConflictError):
        supplier_withdrawal_reject(withdrawal_id=withdrawal.pk, reviewer_id=staff.pk, reason="晚了")
    assert balance(supplier, PAYABLE) == Decimal("200.00")
    assert SupplierWithdrawal.objects.get().transfer_reference == "ICBC20261203001"
    assert Journal.objects.filter(kind=JournalKind.SUPPLIER_WITHDRAWAL_PAID).count() == 1
    assert Journal.objects.filter(kind=JournalKind.SUPPLIER_WITHDRAWAL_REJECTED).count() == 0


def test_rejecting_gives_the_money_back_once() -> None:
    supplier = SupplierFactory.create()
    credit_payable(supplier, "500.00")
    staff = UserFactory.create(is_staff=True)
    withdrawal = _request(supplier.pk, "300.00")

    rejected = supplier_withdrawal_reject(withdrawal_id=withdrawal.pk, reviewer_id=staff.pk, reason="户名不符")

    assert (rejected.status, rejected.rejection_reason) == (WithdrawalStatus.REJECTED, "户名不符")
    assert balance(supplier, PAYABLE) == Decimal("500.00")
    with pytest.raises(ConflictError):
        supplier_withdrawal_reject(withdrawal_id=withdrawal.pk, reviewer_id=staff.pk, reason="户名不符")
    with pytest.raises(ConflictError):
        supplier_withdrawal_pay(withdrawal_id=withdrawal.pk, reviewer_id=staff.pk, transfer_reference="T1")
    assert balance(supplier, PAYABLE) == Decimal("500.00")
    assert _in_review() == Decimal("0.00")


@pytest.mark.parametrize(("amount", "fields", "code"), [
    ("500.01", {}, "withdrawal_exceeds_balance"),
    ("99.99", {}, "withdrawal_below_minimum"),
    ("200.00", {"account_number": "12345"}, "bank_account_invalid"),
    ("200.00", {"account_number": "6222abc0200112233"}, "bank_account_invalid"),
    ("200.00", {"bank_name": "  "}, "bank_details_missing"),
])
def test_a_bad_request_is_refused_and_nothing_moves(amount: str, fields: dict[str, str], code: str) -> None:
    supplier = SupplierFactory.create()
    credit_payable(supplier, "500.00")

    with pytest.raises(ApplicationError) as refused:
        _request(supplier.pk, amount, **fields)

    assert refused.value.code == code
    assert SupplierWithdrawal.objects.count() == 0
    assert balance(supplier, PAYABLE) == Decimal("500.00")
    assert not Journal.objects.filter(kind=JournalKind.SUPPLIER_WITHDRAWAL).exists()


def test_staff_must_give_a_reason_and_a_transfer_reference() -> None:
    supplier = SupplierFactory.create()
    credit_payable(supplier, "500.00")
    staff = UserFactory.create(is_staff=True)
    withdrawal = _request(supplier.pk, "300.00")

    with pytest.raises(ApplicationError):
        supplier_withdrawal_pay(withdrawal_id=withdrawal.pk, reviewer_id=staff.pk, transfer_reference=" ")
    with pytest.raises(ApplicationError):
        supplier_withdrawal_reject(withdrawal_id=withdrawal.pk, reviewer_id=staff.pk, reason="")

    assert SupplierWithdrawal.objects.get().status == WithdrawalStatus.REQUESTED
    assert _in_review() == Decimal("300.00")


def test_the_same_request_id_makes_one_withdrawal() -> None:
    supplier = SupplierFactory.create()
    credit_payable(supplier, "500.00")

    first = _request(supplier.pk, "300.00", request_id="form-1")
    second = _request(supplier.pk, "300.00", request_id="form-1")

    assert first.pk == second.pk
    assert balance(supplier, PAYABLE) == Decimal("200.00")


def test_the_minimum_is_configurable_and_debt_is_not_withdrawable(settings: object) -> None:
    settings.KAMENG_SUPPLIER_WITHDRAWAL_MIN = "0.01"  # type: ignore[attr-defined]
    supplier = SupplierFactory.create()
    credit_payable(supplier, "10.00")

    _request(supplier.pk, "0.01")

    assert withdrawable_amount(owner_id=supplier.owner_id) == Decimal("9.99")
