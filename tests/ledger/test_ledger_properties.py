"""Property: any sequence of top-ups, purchases and refunds over several wallets keeps every ledger invariant."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kameng.core.errors import ConflictError
from kameng.ledger.models import Account, AccountKind, Entry, Side
from kameng.ledger.models import JournalKind as Kind
from kameng.ledger.selectors import account_balance_from_entries, ledger_problems, wallet_balance
from kameng.ledger.services import (
    InsufficientFundsError,
    credit,
    debit,
    forget_cached_account_ids,
    journal_post,
    system_account_id,
    wallet_account_id,
)
from tests.factories import UserFactory

WALLETS = 3
amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("300.00"), places=2)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("topup"), st.integers(0, WALLETS - 1), amounts),
        st.tuples(st.just("purchase"), st.integers(0, WALLETS - 1), amounts),
        # Spend a wallet's exact balance: the boundary where rounding drift would refuse a payment.
        st.tuples(st.just("spend_all"), st.integers(0, WALLETS - 1), st.just(Decimal("0.00"))),
        # Refund the n-th purchase made so far (modulo their count); refunding one twice must be refused.
        st.tuples(st.just("refund"), st.integers(0, 50), st.just(Decimal("0.00"))),
    ),
    min_size=1,
    max_size=15,
)


@dataclass
class Purchase:
    wallet: int
    amount: Decimal
    reference: str


def _wallet_totals() -> tuple[Decimal, Decimal]:
    def side_total(side: str) -> Decimal:
        total = Entry.objects.filter(account__kind=AccountKind.WALLET, side=side).aggregate(total=Sum("amount"))
        return Decimal(total["total"] or 0).quantize(Decimal("0.01"))

    return side_total(Side.CREDIT), side_total(Side.DEBIT)


def _check_invariants(user_ids: list[int], expected: list[Decimal]) -> None:
    assert ledger_problems() == []
    balances = [wallet_balance(user_id=user_id) for user_id in user_ids]
    assert balances == expected
    assert all(balance >= 0 for balance in balances)
    assert not Account.objects.filter(is_negative_allowed=False, balance__lt=0).exists()
    credited, debited = _wallet_totals()
    assert sum(balances, Decimal("0.00")) == credited - debited


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=operations)
def test_random_topups_purchases_and_refunds_keep_the_ledger_consistent(
    operations: list[tuple[str, int, Decimal]],
) -> None:
    # Each example runs in its own savepoint, rolled back at the end, so examples do not see each other's rows.
    with transaction.atomic():
        forget_cached_account_ids()
        user_ids = [UserFactory.create().pk for _ in range(WALLETS)]
        wallets = [wallet_account_id(user_id=user_id) for user_id in user_ids]
        clearing = system_account_id(kind=AccountKind.GATEWAY_CLEARING, suffix="epay")
        revenue = system_account_id(kind=AccountKind.PLATFORM_REVENUE)
        expected = [Decimal("0.00")] * WALLETS
        purchases: list[Purchase] = []
        refunded: set[str] = set()
        topped_up = spent = refunds = Decimal("0.00")

        for step, (operation, target, drawn) in enumerate(operations):
            amount = expected[target] if operation == "spend_all" else drawn
            if operation == "topup":
                journal_post(kind=Kind.WALLET_TOPUP, reference=f"T{step}",
                             legs=[debit(clearing, amount), credit(wallets[target], amount)])
                expected[target] += amount
                topped_up += amount
            elif operation in ("purchase", "spend_all"):
                reference = f"K{step}"
                if amount == 0:  # spend_all on an empty wallet
                    continue
                if amount > expected[target]:
                    with pytest.raises(InsufficientFundsError):
                        journal_post(kind=Kind.ORDER_PAYMENT, reference=reference,
                                     legs=[debit(wallets[target], amount), credit(revenue, amount)])
                else:
                    journal_post(kind=Kind.ORDER_PAYMENT, reference=reference,
                                 legs=[debit(wallets[target], amount), credit(revenue, amount)])
                    expected[target] -= amount
                    spent += amount
                    purchases.append(Purchase(wallet=target, amount=amount, reference=reference))
            elif purchases:
                purchase = purchases[target % len(purchases)]
                legs = [debit(revenue, purchase.amount), credit(wallets[purchase.wallet], purchase.amount)]
                if purchase.reference in refunded:
                    with pytest.raises(ConflictError):
                        journal_post(kind=Kind.ORDER_REFUND, reference=purchase.reference, legs=legs)
                else:
                    journal_post(kind=Kind.ORDER_REFUND, reference=purchase.reference, legs=legs)
                    refunded.add(purchase.reference)
                    expected[purchase.wallet] += purchase.amount
                    refunds += purchase.amount
            _check_invariants(user_ids, expected)

        assert sum(expected, Decimal("0.00")) == topped_up - spent + refunds
        assert account_balance_from_entries(account_id=clearing) == topped_up
        assert account_balance_from_entries(account_id=revenue) == spent - refunds
        transaction.set_rollback(True)
