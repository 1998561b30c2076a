"""Points are a unit of their own on the ledger: a journal is in one unit, points are whole, and the invariant check
balances each unit apart."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kameng.core.errors import ApplicationError
from kameng.ledger.models import Account, AccountKind, Entry, Journal, JournalKind, Side
from kameng.ledger.selectors import ledger_problems, points_balance
from kameng.ledger.services import (
    InsufficientFundsError,
    credit,
    debit,
    journal_post,
    points_account_id,
    system_account_id,
    wallet_account_id,
)
from tests.factories import UserFactory, fund_wallet
from tests.points.support import give_points

pytestmark = pytest.mark.django_db


def test_points_accounts_are_in_points() -> None:
    user = UserFactory.create()
    give_points(user.pk, 120)

    account = Account.objects.get(pk=points_account_id(user_id=user.pk))
    issued = Account.objects.get(kind=AccountKind.POINTS_ISSUED)
    assert (account.code, account.currency, account.balance, account.is_negative_allowed) == (
        f"points:{user.pk}", "PTS", Decimal("120.00"), False)
    assert (issued.currency, issued.is_balance_cached) == ("PTS", False)
    assert points_balance(user_id=user.pk) == 120


def test_a_journal_mixing_money_and_points_is_refused() -> None:
    user = UserFactory.create()
    fund_wallet(user, "10.00")

    with pytest.raises(ApplicationError) as error:
        journal_post(kind=JournalKind.ADJUSTMENT, reference="mixed", legs=[
            debit(wallet_account_id(user_id=user.pk), Decimal("1.00")),
            credit(points_account_id(user_id=user.pk), Decimal("1.00"))])

    assert error.value.code == "ledger_mixed_units"
    assert not Journal.objects.filter(reference="mixed").exists()
    assert points_balance(user_id=user.pk) == 0


def test_fractional_points_are_refused() -> None:
    user = UserFactory.create()

    with pytest.raises(ApplicationError) as error:
        journal_post(kind=JournalKind.POINTS_EARN, reference="half", legs=[
            debit(system_account_id(kind=AccountKind.POINTS_ISSUED), Decimal("0.50")),
            credit(points_account_id(user_id=user.pk), Decimal("0.50"))])

    assert error.value.code == "ledger_points_not_whole"
    assert not Journal.objects.filter(reference="half").exists()


def test_points_never_go_below_zero() -> None:
    user = UserFactory.create()
    give_points(user.pk, 10)

    with pytest.raises(InsufficientFundsError):
        journal_post(kind=JournalKind.POINTS_REDEEM, reference="too-many", legs=[
            debit(points_account_id(user_id=user.pk), Decimal("11")),
            credit(system_account_id(kind=AccountKind.POINTS_REDEEMED), Decimal("11"))])

    assert points_balance(user_id=user.pk) == 10


def test_the_check_balances_each_unit_apart() -> None:
    user = UserFactory.create()
    fund_wallet(user, "10.00")
    give_points(user.pk, 10)
    # Written behind the services' back: ¥1 debited against 1 point credited "balances" only if units are ignored.
    journal = Journal.objects.create(kind=JournalKind.ADJUSTMENT, reference="bad-mix")
    revenue = system_account_id(kind=AccountKind.PLATFORM_REVENUE)
    issued = system_account_id(kind=AccountKind.POINTS_ISSUED)
    Entry.objects.create(journal=journal, account_id=revenue, side=Side.DEBIT, amount=Decimal("1.00"))
    Entry.objects.create(journal=journal, account_id=issued, side=Side.CREDIT, amount=Decimal("1.00"))
    half = Journal.objects.create(kind=JournalKind.ADJUSTMENT, reference="bad-half")
    Entry.objects.create(journal=half, account_id=issued, side=Side.DEBIT, amount=Decimal("0.50"))
    Entry.objects.create(journal=half, account_id=issued, side=Side.CREDIT, amount=Decimal("0.50"))
    try:
        problems = sorted((problem.what, problem.detail) for problem in ledger_problems())

        assert problems == sorted([
            ("unbalanced journal", f"#{journal.pk} adjustment bad-mix: D 1.00 ≠ C 0.00"),
            ("unbalanced journal", f"#{journal.pk} adjustment bad-mix (PTS): D 0.00 ≠ C 1.00"),
            ("journal in several units", f"#{journal.pk} adjustment bad-mix"),
            *[("points not whole", f"entry #{pk} points_issued: 0.50")
              for pk in half.entries.values_list("pk", flat=True)],
        ])
    finally:
        Entry.objects.filter(journal__in=[journal, half]).delete()
        Journal.objects.filter(pk__in=[journal.pk, half.pk]).delete()
