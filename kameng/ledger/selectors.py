"""Reads of the ledger: balances, statements (money and points) and the invariant check, per unit."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Case, Count, DecimalField, F, Sum, Value, When
from django.db.models.functions import Round

from kameng.core.money import CURRENCY, ZERO, money
from kameng.ledger.models import POINTS_UNIT, Account, AccountKind, Entry, Journal, Side


def wallet_balance(*, user_id: int) -> Decimal:
    balance = Account.objects.filter(owner_id=user_id, kind=AccountKind.WALLET).values_list(
        "balance", flat=True).first()
    return balance if balance is not None else ZERO


def points_balance(*, user_id: int) -> int:
    """The buyer's points (积分), a whole number."""
    balance = Account.objects.filter(owner_id=user_id, kind=AccountKind.POINTS).values_list(
        "balance", flat=True).first()
    return int(balance) if balance is not None else 0


def points_statement(*, user_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The buyer's points movements, newest first, signed from the buyer's point of view (whole numbers);
    `journal_kind` and `reference` as in `wallet_statement`."""
    rows = _statement(user_id=user_id, kind=AccountKind.POINTS, limit=limit)
    for row in rows:
        row["points"] = int(row.pop("amount"))
    return rows


def _statement(*, user_id: int, kind: str, limit: int) -> list[dict[str, Any]]:
    """The movements of the user's account of `kind`, newest first, signed from the user's point of view."""
    rows = (
        Entry.objects.filter(account__owner_id=user_id, account__kind=kind)
        .select_related("journal")
        .order_by("-id")[:limit]
    )
    return [
        {
            "created_at": row.journal.created_at,
            "journal_kind": row.journal.kind,
            "kind": row.journal.get_kind_display(),
            "reference": row.journal.reference,
            "memo": row.journal.memo,
            "amount": row.amount if row.side == Side.CREDIT else -row.amount,
        }
        for row in rows
    ]


def _signed_sum() -> Sum:
    return Sum(
        Case(
            When(side=F("account__normal_side"), then=F("amount")),
            default=-F("amount"),
            output_field=DecimalField(max_digits=18, decimal_places=2),
        )
    )


def account_balance_from_entries(*, account_id: int) -> Decimal:
    total = Entry.objects.filter(account_id=account_id).aggregate(total=_signed_sum())["total"]
    return money(total) if total is not None else ZERO


def wallet_statement(*, user_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The user's wallet movements, newest first, signed from the user's point of view. `journal_kind` is the
    journal's kind code and `reference` its business number (a payment number, an order number…), so a caller
    that knows what they stand for can present related movements together."""
    return _statement(user_id=user_id, kind=AccountKind.WALLET, limit=limit)


@dataclass
class LedgerProblem:
    what: str
    detail: str


def ledger_problems() -> list[LedgerProblem]:
    """Every violated invariant: unbalanced journals, cached balances that differ from their legs, negatives.

    All of it is read in one snapshot: a journal committed by live traffic between the sum of the entries and
    the read of the balances would otherwise show up as a mismatch that is not there.
    """
    if connection.in_atomic_block:  # the caller's transaction is the snapshot (tests, an enclosing check)
        return _ledger_problems()
    with transaction.atomic():
        if connection.vendor in ("postgresql", "mysql"):
            # PostgreSQL's READ COMMITTED and the READ COMMITTED Django sets on MySQL/MariaDB take a new snapshot
            # per statement; REPEATABLE READ keeps the first one. SQLite's read transaction is a snapshot already.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return _ledger_problems()


def _ledger_problems() -> list[LedgerProblem]:
    problems: list[LedgerProblem] = []
    # Per unit: a journal's legs balance within each unit (points against points, money against money) ...
    unbalanced = (
        Journal.objects.values("pk", "kind", "reference", "entries__account__currency").annotate(
            debits=Sum(Case(When(entries__side=Side.DEBIT, then=F("entries__amount")), default=Value(0),
                            output_field=DecimalField(max_digits=18, decimal_places=2))),
            credits=Sum(Case(When(entries__side=Side.CREDIT, then=F("entries__amount")), default=Value(0),
                             output_field=DecimalField(max_digits=18, decimal_places=2))),
        )
        # SQLite sums decimals as binary floats (0.10 + 0.20 ≠ 0.30): compare the difference rounded to the fen.
        .annotate(difference=Round(F("debits") - F("credits"), 2,
                                   output_field=DecimalField(max_digits=18, decimal_places=2)))
        .exclude(difference=0)
        .values_list("pk", "kind", "reference", "entries__account__currency", "debits", "credits")
        .order_by("pk")
    )
    for pk, kind, reference, unit, debits, credits in unbalanced:
        unit_text = f" ({unit})" if unit not in (CURRENCY, None) else ""
        problems.append(LedgerProblem("unbalanced journal", f"#{pk} {kind} {reference}{unit_text}: "
                                                            f"D {money(debits)} ≠ C {money(credits)}"))
    # ... and it is in one unit only.
    mixed = (Journal.objects.annotate(units=Count("entries__account__currency", distinct=True))
             .filter(units__gt=1).values_list("pk", "kind", "reference"))
    problems.extend(LedgerProblem("journal in several units", f"#{pk} {kind} {reference}")
                    for pk, kind, reference in mixed)
    fractional = (Entry.objects.filter(account__currency=POINTS_UNIT)
                  .annotate(whole=Round(F("amount"), 0, output_field=DecimalField(max_digits=18, decimal_places=2)))
                  .exclude(whole=F("amount")).values_list("pk", "account__code", "amount"))
    problems.extend(LedgerProblem("points not whole", f"entry #{pk} {code}: {amount}")
                    for pk, code, amount in fractional)
    empty = Journal.objects.filter(entries__isnull=True).values_list("pk", flat=True)
    problems.extend(LedgerProblem("journal without legs", f"#{pk}") for pk in empty)

    derived = dict(
        Entry.objects.values("account_id").annotate(total=_signed_sum()).values_list("account_id", "total")
    )
    for account in Account.objects.all().only("pk", "code", "balance", "is_balance_cached", "is_negative_allowed"):
        total = money(derived.get(account.pk) or ZERO)
        if account.is_balance_cached and account.balance != total:
            problems.append(LedgerProblem("balance mismatch",
                                          f"{account.code}: cached {account.balance} ≠ entries {total}"))
        if not account.is_negative_allowed and (total < ZERO or account.balance < ZERO):
            problems.append(LedgerProblem("negative balance", f"{account.code}: {total}"))
    return problems
