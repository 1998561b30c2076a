from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum
from pytest_django import DjangoCaptureOnCommitCallbacks

from kameng.core.errors import ApplicationError, ConflictError
from kameng.ledger.models import Account, AccountKind, Entry, Journal, JournalKind, Side
from kameng.ledger.selectors import account_balance_from_entries, ledger_problems, wallet_balance, wallet_statement
from kameng.ledger.services import (
    InsufficientFundsError,
    Leg,
    credit,
    debit,
    forget_cached_account_ids,
    journal_post,
    system_account_id,
    wallet_account_id,
)
from tests.factories import UserFactory, fund_wallet

pytestmark = pytest.mark.django_db


def _clearing() -> int:
    return system_account_id(kind=AccountKind.GATEWAY_CLEARING, suffix="epay")


def _revenue() -> int:
    return system_account_id(kind=AccountKind.PLATFORM_REVENUE)


def _nothing_posted() -> None:
    assert Journal.objects.count() == 0
    assert Entry.objects.count() == 0
    assert list(Account.objects.filter(is_balance_cached=True).values_list("balance", flat=True)) == [
        Decimal("0.00")] * Account.objects.filter(is_balance_cached=True).count()


def test_topup_credits_the_wallet_and_balances() -> None:
    user = UserFactory.create()
    wallet = wallet_account_id(user_id=user.pk)

    journal = journal_post(kind=JournalKind.WALLET_TOPUP, reference="T1", memo="充值",
                           legs=[debit(_clearing(), Decimal("100.00")), credit(wallet, Decimal("100.00"))])

    assert journal.entries.count() == 2
    assert wallet_balance(user_id=user.pk) == Decimal("100.00")
    assert account_balance_from_entries(account_id=wallet) == Decimal("100.00")
    assert account_balance_from_entries(account_id=_clearing()) == Decimal("100.00")
    assert Account.objects.get(pk=_clearing()).balance == Decimal("0.00")  # not cached: derived from legs
    assert [row["amount"] for row in wallet_statement(user_id=user.pk)] == [Decimal("100.00")]
    assert ledger_problems() == []


def test_wallet_account_is_created_once_per_user() -> None:
    user = UserFactory.create()

    first = wallet_account_id(user_id=user.pk)

    assert wallet_account_id(user_id=user.pk) == first
    account = Account.objects.get(pk=first)
    assert (account.code, account.kind, account.owner_id, account.normal_side) == (
        f"wallet:{user.pk}", AccountKind.WALLET, user.pk, Side.CREDIT)
    assert not account.is_negative_allowed


def test_a_wallet_seen_first_in_this_process_is_one_plain_query(
        django_assert_num_queries: Callable[..., Any], django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    user = UserFactory.create()
    account = wallet_account_id(user_id=user.pk)
    forget_cached_account_ids()  # another process, which has not seen this buyer

    with django_assert_num_queries(1), django_capture_on_commit_callbacks(execute=True):  # remembered after commit
        assert wallet_account_id(user_id=user.pk) == account
    with django_assert_num_queries(0):
        assert wallet_account_id(user_id=user.pk) == account


def test_unbalanced_journal_is_refused_and_writes_nothing() -> None:
    wallet = wallet_account_id(user_id=UserFactory.create().pk)

    with pytest.raises(ApplicationError) as error:
        journal_post(kind=JournalKind.WALLET_TOPUP, reference="T1",
                     legs=[debit(_clearing(), Decimal("10.00")), credit(wallet, Decimal("9.99"))])

    assert error.value.code == "ledger_unbalanced"
    assert error.value.message == "journal does not balance: debits 10.00 ≠ credits 9.99"
    _nothing_posted()


@pytest.mark.parametrize("legs", [0, 1])
def test_journal_with_fewer_than_two_legs_is_refused(legs: int) -> None:
    wallet = wallet_account_id(user_id=UserFactory.create().pk)

    with pytest.raises(ApplicationError) as error:
        journal_post(kind=JournalKind.WALLET_TOPUP, reference="T1", legs=[credit(wallet, Decimal("5.00"))][:legs])

    assert error.value.code == "ledger_unbalanced"
    assert error.value.message == "a journal needs at least two legs"
    _nothing_posted()


@pytest.mark.parametrize("amount", [Decimal("0.00"), Decimal("-5.00"), Decimal("0.004")])
def test_non_positive_leg_is_refused(amount: Decimal) -> None:
    wallet = wallet_account_id(user_id=UserFactory.create().pk)
    clearing = _clearing()

    with pytest.raises(ApplicationError) as error:
        journal_post(kind=JournalKind.WALLET_TOPUP, reference="T1",
                     legs=[debit(clearing, amount), credit(wallet, amount)])

    assert error.value.code == "ledger_non_positive_leg"
    _nothing_posted()


def test_balanced_journal_hiding_a_negative_leg_is_refused() -> None:
    wallet = wallet_account_id(user_id=UserFactory.create().pk)
    clearing = _clearing()
    legs = [Leg(account_id=clearing, side=Side.DEBIT, amount=Decimal("-5.00")),
            Leg(account_id=wallet, side=Side.DEBIT, amount=Decimal("5.00")),
            Leg(account_id=wallet, side=Side.CREDIT, amount=Decimal("0.00"))]

    with pytest.raises(ApplicationError) as error:
        journal_post(kind=JournalKind.WALLET_TOPUP, reference="T1", legs=legs)

    assert error.value.code == "ledger_non_positive_leg"
    _nothing_posted()


def test_duplicate_event_is_refused_and_changes_nothing() -> None:
    user = UserFactory.create()
    wallet = wallet_account_id(user_id=user.pk)
    legs = [debit(_clearing(), Decimal("20.00")), credit(wallet, Decimal("20.00"))]
    journal_post(kind=JournalKind.WALLET_TOPUP, reference="P-1", legs=legs)

    with pytest.raises(ConflictError) as error:
        journal_post(kind=JournalKind.WALLET_TOPUP, reference="P-1", legs=legs)

    assert error.value.code == "ledger_duplicate_event"
    assert error.value.status_code == 409
    assert error.value.extra == {"kind": "wallet_topup", "reference": "P-1"}
    assert Journal.objects.count() == 1
    assert Entry.objects.count() == 2
    assert wallet_balance(user_id=user.pk) == Decimal("20.00")


def test_same_reference_under_another_kind_is_a_different_event() -> None:
    user = UserFactory.create()
    fund_wallet(user, "30.00", reference="K1")
    wallet = wallet_account_id(user_id=user.pk)

    journal_post(kind=JournalKind.ORDER_PAYMENT, reference="K1",
                 legs=[debit(wallet, Decimal("30.00")), credit(_revenue(), Decimal("30.00"))])

    assert Journal.objects.filter(reference="K1").count() == 2
    assert wallet_balance(user_id=user.pk) == Decimal("0.00")


def test_wallet_cannot_go_negative_and_nothing_is_written() -> None:
    user = UserFactory.create()
    fund_wallet(user, "10.00")
    wallet = wallet_account_id(user_id=user.pk)

    with pytest.raises(InsufficientFundsError) as error:
        journal_post(kind=JournalKind.ORDER_PAYMENT, reference="K1",
                     legs=[debit(wallet, Decimal("10.01")), credit(_revenue(), Decimal("10.01"))])

    assert error.value.code == "insufficient_balance"
    assert error.value.message == "余额不足"
    assert error.value.extra == {"account_id": wallet, "needed": "10.01"}
    assert Journal.objects.count() == 1  # only the funding
    assert Entry.objects.count() == 2
    assert wallet_balance(user_id=user.pk) == Decimal("10.00")


def test_wallet_can_be_spent_to_exactly_zero() -> None:
    user = UserFactory.create()
    fund_wallet(user, "10.00")
    wallet = wallet_account_id(user_id=user.pk)

    journal_post(kind=JournalKind.ORDER_PAYMENT, reference="K1",
                 legs=[debit(wallet, Decimal("10.00")), credit(_revenue(), Decimal("10.00"))])

    assert wallet_balance(user_id=user.pk) == Decimal("0.00")


def test_wallet_cannot_go_negative_on_the_cached_id_fast_path(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    # Once the account ids are remembered (after commit), posting skips the account lookup: the guard must hold.
    user = UserFactory.create()
    with django_capture_on_commit_callbacks(execute=True):
        wallet = wallet_account_id(user_id=user.pk)
        revenue = _revenue()
    fund_wallet(user, "5.00")

    with pytest.raises(InsufficientFundsError):
        journal_post(kind=JournalKind.ORDER_PAYMENT, reference="K1",
                     legs=[debit(wallet, Decimal("5.01")), credit(revenue, Decimal("5.01"))])

    assert wallet_balance(user_id=user.pk) == Decimal("5.00")
    assert Journal.objects.filter(kind=JournalKind.ORDER_PAYMENT).count() == 0


def test_a_journal_moving_two_wallets_is_all_or_nothing() -> None:
    rich, poor = UserFactory.create(), UserFactory.create()
    fund_wallet(rich, "50.00")
    fund_wallet(poor, "1.00")
    rich_wallet, poor_wallet = wallet_account_id(user_id=rich.pk), wallet_account_id(user_id=poor.pk)

    with pytest.raises(InsufficientFundsError):
        journal_post(kind=JournalKind.ADJUSTMENT, reference="X1",
                     legs=[debit(rich_wallet, Decimal("5.00")), debit(poor_wallet, Decimal("5.00")),
                           credit(_revenue(), Decimal("10.00"))])

    assert wallet_balance(user_id=rich.pk) == Decimal("50.00")
    assert wallet_balance(user_id=poor.pk) == Decimal("1.00")
    assert Entry.objects.aggregate(total=Sum("amount"))["total"] == Decimal("102.00")


def test_wallet_can_spend_its_exact_balance_after_fractional_movements() -> None:
    # Regression (SQLite): the cached balance drifted to 0.19999999999999998 and ¥0.20 could not be paid from ¥0.20.
    user = UserFactory.create()
    fund_wallet(user, "0.30")
    wallet, revenue = wallet_account_id(user_id=user.pk), _revenue()

    journal_post(kind=JournalKind.ORDER_PAYMENT, reference="K1",
                 legs=[debit(wallet, Decimal("0.10")), credit(revenue, Decimal("0.10"))])
    journal_post(kind=JournalKind.ORDER_PAYMENT, reference="K2",
                 legs=[debit(wallet, Decimal("0.20")), credit(revenue, Decimal("0.20"))])

    assert wallet_balance(user_id=user.pk) == Decimal("0.00")
    assert account_balance_from_entries(account_id=wallet) == Decimal("0.00")
    assert ledger_problems() == []


def test_fractional_legs_that_balance_are_not_reported_unbalanced() -> None:
    # Regression (SQLite): SUM(0.10, 0.20) as floats differs from 0.30 and ledger_check reported a false problem.
    user = UserFactory.create()
    wallet, clearing = wallet_account_id(user_id=user.pk), _clearing()

    journal_post(kind=JournalKind.WALLET_TOPUP, reference="T1",
                 legs=[debit(clearing, Decimal("0.10")), debit(clearing, Decimal("0.20")),
                       credit(wallet, Decimal("0.30"))])

    assert ledger_problems() == []
    assert account_balance_from_entries(account_id=clearing) == Decimal("0.30")


def test_the_database_refuses_a_second_wallet_for_one_user() -> None:
    # Regression (MariaDB): the constraint had a `condition`, which MySQL/MariaDB silently drop.
    from django.db import IntegrityError, transaction

    user = UserFactory.create()
    wallet_account_id(user_id=user.pk)

    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.create(code=f"wallet-again:{user.pk}", kind=AccountKind.WALLET, owner=user,
                               normal_side=Side.CREDIT)

    assert Account.objects.filter(owner=user, kind=AccountKind.WALLET).count() == 1
