"""Posting journals. Every money movement in kameng goes through `journal_post`, and every points movement too.

A journal is in one unit only (money in CNY, or points in PTS: kameng.ledger.models.POINTS_UNIT); points legs are
whole numbers. Both are refused here, before anything is written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Round
from django.utils import timezone

from kameng.core.errors import ApplicationError, ConflictError
from kameng.core.money import CURRENCY, ZERO, money
from kameng.core.sql import json_rows
from kameng.ledger.models import POINTS_KINDS, POINTS_UNIT, Account, AccountKind, Entry, Journal, JournalKind, Side

# Which side raises each kind's balance. Wallets are what the platform owes its users (credit-normal).
NORMAL_SIDE = {
    AccountKind.WALLET: Side.CREDIT,
    AccountKind.WALLET_HOLD: Side.CREDIT,
    AccountKind.GATEWAY_CLEARING: Side.DEBIT,
    AccountKind.PLATFORM_REVENUE: Side.CREDIT,
    AccountKind.ORDERS_IN_PROGRESS: Side.CREDIT,
    AccountKind.REFUNDS_PAYABLE: Side.CREDIT,
    # Points: what the platform owes a buyer in points is credit-normal like a wallet; the points issued are the
    # platform's debit side, the points used and expired where they end up.
    AccountKind.POINTS: Side.CREDIT,
    AccountKind.POINTS_ISSUED: Side.DEBIT,
    AccountKind.POINTS_REDEEMED: Side.CREDIT,
    AccountKind.POINTS_EXPIRED: Side.CREDIT,
    # Suppliers: what the platform owes a supplier is credit-normal like a wallet; what a supplier owes the
    # platform (a refund reversed after its money was withdrawn) is debit-normal; tax withheld is owed to the tax
    # office; money paid out by bank transfer leaves the payout clearing account (debit-normal, like a gateway).
    AccountKind.SUPPLIER_PAYABLE: Side.CREDIT,
    AccountKind.SUPPLIER_DEBT: Side.DEBIT,
    AccountKind.TAX_WITHHELD: Side.CREDIT,
    AccountKind.SUPPLIER_WITHDRAWALS_IN_REVIEW: Side.CREDIT,
    AccountKind.SUPPLIER_PAYOUT_CLEARING: Side.DEBIT,
    # Resellers: margins and commissions owed but unconfirmed, a beneficiary's confirmed commission and the
    # commission under withdrawal review are owed by the platform (credit-normal); payouts leave like a supplier's.
    AccountKind.RESELLER_EARNINGS_PENDING: Side.CREDIT,
    AccountKind.RESELLER_COMMISSION: Side.CREDIT,
    AccountKind.RESELLER_WITHDRAWALS_IN_REVIEW: Side.CREDIT,
    AccountKind.RESELLER_PAYOUT_CLEARING: Side.DEBIT,
}


def unit_of_kind(kind: str) -> str:
    return POINTS_UNIT if kind in POINTS_KINDS else CURRENCY


class InsufficientFundsError(ConflictError):
    pass


@dataclass(frozen=True)
class Leg:
    account_id: int
    side: str
    amount: Decimal


def debit(account_id: int, amount: Decimal) -> Leg:
    return Leg(account_id=account_id, side=Side.DEBIT, amount=money(amount))


def credit(account_id: int, amount: Decimal) -> Leg:
    return Leg(account_id=account_id, side=Side.CREDIT, amount=money(amount))


# Account ids never change once created, so they are remembered per process; the sets answer "is this one of
# ours?" on every journal without rebuilding a set of every wallet this process has seen.
_system_account_ids: dict[str, int] = {}
_wallet_account_ids: dict[int, int] = {}
_system_ids: set[int] = set()
_wallet_ids: set[int] = set()
# Points accounts have sets of their own, so a journal on known accounts is known to be money (CNY) or points (PTS)
# without a lookup: a buyer's points account (credit-normal, balance cached, never negative, as created below) and
# the platform's points accounts (issued, redeemed, expired: balance not cached).
_points_account_ids: dict[int, int] = {}
_points_ids: set[int] = set()
_points_system_ids: set[int] = set()


def system_account_id(*, kind: str, suffix: str = "") -> int:
    """The id of a platform account such as `platform_revenue` or `gateway_clearing:epay`."""
    code = f"{kind}:{suffix}" if suffix else kind
    account_id = _system_account_ids.get(code)
    if account_id is None:
        account, _ = Account.objects.get_or_create(
            code=code,
            defaults={"kind": kind, "normal_side": NORMAL_SIDE[AccountKind(kind)], "is_balance_cached": False,
                      "is_negative_allowed": True, "currency": unit_of_kind(kind)},
        )
        account_id = account.pk
        # A points account is kept out of the set of known money accounts: its unit is known from its own set.
        _remember_after_commit(_system_account_ids, code, account_id,
                               _points_system_ids if kind in POINTS_KINDS else _system_ids)
    return account_id


_OWNED_ACCOUNT_SQL = (f"SELECT id FROM {Account._meta.db_table} "  # noqa: S608 - our own table name
                      "WHERE owner_id = %s AND kind = %s")


def wallet_account_id(*, user_id: int) -> int:
    """The id of the user's wallet account, created on first use."""
    account_id = _wallet_account_ids.get(user_id)
    if account_id is None:
        # A buyer's first checkout in a process (each of a flash sale's): one plain query, not the ORM's compiling.
        with connection.cursor() as cursor:
            cursor.execute(_OWNED_ACCOUNT_SQL, [user_id, AccountKind.WALLET.value])
            row = cursor.fetchone()
        account_id = row[0] if row is not None else None
        if account_id is None:
            try:
                with transaction.atomic():
                    account_id = Account.objects.create(
                        code=f"wallet:{user_id}", kind=AccountKind.WALLET, owner_id=user_id,
                        normal_side=Side.CREDIT,
                    ).pk
            except IntegrityError:
                account_id = Account.objects.get(owner_id=user_id, kind=AccountKind.WALLET).pk
        _remember_after_commit(_wallet_account_ids, user_id, account_id, _wallet_ids)
    return account_id


def wallet_account_id_seen(*, user_id: int, account_id: int) -> None:
    """The user's wallet account id, read (committed) by another query: `wallet_account_id` answers it without one."""
    _wallet_account_ids[user_id] = account_id
    _wallet_ids.add(account_id)


def points_account_id(*, user_id: int) -> int:
    """The id of the user's points account (unit PTS, never below zero), created on first use."""
    account_id = _points_account_ids.get(user_id)
    if account_id is None:
        account_id = Account.objects.filter(owner_id=user_id, kind=AccountKind.POINTS).values_list(
            "pk", flat=True).first()
        if account_id is None:
            try:
                with transaction.atomic():
                    account_id = Account.objects.create(
                        code=f"points:{user_id}", kind=AccountKind.POINTS, owner_id=user_id,
                        normal_side=Side.CREDIT, currency=POINTS_UNIT,
                    ).pk
            except IntegrityError:
                account_id = Account.objects.get(owner_id=user_id, kind=AccountKind.POINTS).pk
        _remember_after_commit(_points_account_ids, user_id, account_id, _points_ids)
    return account_id


# The per-user accounts other than wallets and points: one of each kind per user, balance cached, never negative.
OWNER_ACCOUNT_KINDS = frozenset({AccountKind.SUPPLIER_PAYABLE, AccountKind.SUPPLIER_DEBT,
                                 AccountKind.RESELLER_COMMISSION})
# A buyer's top-ups held for AML review (待审核充值, kameng.payments.aml): owed to the buyer, not spendable.
OWNER_ACCOUNT_KINDS |= {AccountKind.WALLET_HOLD}


def owner_account_id(*, user_id: int, kind: AccountKind) -> int:
    """The id of the user's account of `kind` (a supplier's payable or debt), created on first use. Not cached per
    process: these accounts are off the checkout's hot path."""
    if kind not in OWNER_ACCOUNT_KINDS:
        raise ValueError(f"not a per-user account kind: {kind}")
    account_id = Account.objects.filter(owner_id=user_id, kind=kind).values_list("pk", flat=True).first()
    if account_id is None:
        try:
            with transaction.atomic():
                account_id = Account.objects.create(code=f"{kind}:{user_id}", kind=kind, owner_id=user_id,
                                                    normal_side=NORMAL_SIDE[kind]).pk
        except IntegrityError:
            account_id = Account.objects.get(owner_id=user_id, kind=kind).pk
    return account_id


def _remember_after_commit(cache: dict[Any, int], key: object, account_id: int, ids: set[int]) -> None:
    # Only a committed row may be remembered: an id from a transaction that rolls back would point nowhere.
    def remember() -> None:
        cache[key] = account_id
        ids.add(account_id)

    transaction.on_commit(remember)


def journal_post(*, kind: JournalKind, reference: str, legs: list[Leg], memo: str = "") -> Journal:
    """Post one balanced journal and move the cached balances it touches, in the caller's transaction.

    Refuses an unbalanced or empty journal, a non-positive leg, a second journal for the same (kind, reference),
    and any movement that would take a non-negative account below zero (the row update is guarded, and the
    database CHECK is the last line). Cached balances are updated last and in account-id order, so the row locks
    on hot wallets are held for as short a time as possible and always taken in the same order.
    """
    _check_balanced(legs)
    with transaction.atomic():
        # No savepoint of its own around the insert: a duplicate leaves this block by raising, and this block's
        # atomic() rolls back to its own savepoint, so the caller's transaction stays usable (two round trips
        # fewer on every order).
        try:
            journal = _journal_insert(kind, reference, memo[:200])
        except IntegrityError as error:
            raise ConflictError("该业务已记账，不会重复入账", code="ledger_duplicate_event",
                                extra={"kind": str(kind), "reference": reference}) from error
        _entries_insert(journal, legs)
        _apply_cached_balances(legs)
    return journal


def journal_draft_post(*, draft: JournalDraft) -> Journal:
    """Post a journal a recipe drew up (kameng.ledger.recipes)."""
    return journal_post(kind=JournalKind(draft.kind), reference=draft.reference, legs=draft.legs, memo=draft.memo)


def _check_balanced(legs: list[Leg]) -> None:
    if len(legs) < 2:
        raise ApplicationError("a journal needs at least two legs", code="ledger_unbalanced")
    debits = sum((leg.amount for leg in legs if leg.side == Side.DEBIT), ZERO)
    credits = sum((leg.amount for leg in legs if leg.side == Side.CREDIT), ZERO)
    if any(leg.amount <= ZERO for leg in legs):
        raise ApplicationError("journal legs must be positive amounts", code="ledger_non_positive_leg")
    if debits != credits:
        raise ApplicationError(f"journal does not balance: debits {debits} ≠ credits {credits}",
                               code="ledger_unbalanced")


# On PostgreSQL the three writes of a journal are plain statements: building them through the ORM cost several
# times the round trips themselves, and every order posts a journal. Other backends keep the ORM path.


def _journal_insert(kind: str, reference: str, memo: str) -> Journal:
    if connection.vendor != "postgresql":
        return Journal.objects.create(kind=kind, reference=reference, memo=memo)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO ledger_journal (kind, reference, memo, created_at) VALUES (%s, %s, %s, %s) "
                       "RETURNING id", [str(kind), reference, memo, now])
        journal = Journal(id=cursor.fetchone()[0], kind=kind, reference=reference, memo=memo, created_at=now)
    journal._state.adding = False
    journal._state.db = connection.alias
    return journal


def _entries_insert(journal: Journal, legs: list[Leg]) -> None:
    if connection.vendor != "postgresql":
        Entry.objects.bulk_create(
            [Entry(journal=journal, account_id=leg.account_id, side=leg.side, amount=leg.amount) for leg in legs])
        return
    params: list[Any] = []
    for leg in legs:
        params += [journal.pk, leg.account_id, str(leg.side), leg.amount]
    with connection.cursor() as cursor:
        rows = ", ".join(["(%s, %s, %s, %s)"] * len(legs))
        sql = "INSERT INTO ledger_entry (journal_id, account_id, side, amount) VALUES " + rows  # noqa: S608 - placeholders only
        cursor.execute(sql, params)


def _balance_move(account_id: int, delta: Decimal, *, guard: bool) -> bool:
    """Add `delta` to the cached balance; with `guard`, only if it stays ≥ 0. Returns whether the row moved."""
    if connection.vendor != "postgresql":
        query = Account.objects.filter(pk=account_id)
        if guard:
            query = query.filter(Q(balance__gte=-delta))
        # Rounded in SQL because SQLite keeps decimals as binary floats: without it 0.30 − 0.10 is stored as
        # 0.19999999999999998 and a later `balance >= 0.20` guard refuses a wallet holding exactly ¥0.20.
        return query.update(balance=Round(F("balance") + delta, 2)) == 1
    # PostgreSQL numeric is exact: no rounding needed. The guard and the move are one statement, so two
    # concurrent debits of one wallet serialise on its row and the second re-checks the balance the first left.
    with connection.cursor() as cursor:
        if guard:
            cursor.execute("UPDATE ledger_account SET balance = balance + %s WHERE id = %s AND balance >= %s",
                           [delta, account_id, -delta])
        else:
            cursor.execute("UPDATE ledger_account SET balance = balance + %s WHERE id = %s", [delta, account_id])
        return cursor.rowcount == 1


def _apply_cached_balances(legs: list[Leg]) -> None:
    for account_id, delta, guard in _cached_balance_moves([legs]):
        if not _balance_move(account_id, delta, guard=guard):
            raise InsufficientFundsError("余额不足", code="insufficient_balance",
                                         extra={"account_id": account_id, "needed": str(-delta)})


def _cached_balance_moves(journals: Sequence[list[Leg]]) -> list[tuple[int, Decimal, bool]]:
    """(account id, delta, guarded) for every balance-cached account the journals' legs move, in account-id order.

    Refuses a journal whose legs are in more than one unit, and points legs that are not whole numbers (the
    accounts are read anyway unless every one is a known money account)."""
    net: dict[int, dict[str, Decimal]] = defaultdict(lambda: {Side.DEBIT: ZERO, Side.CREDIT: ZERO})
    for legs in journals:
        for leg in legs:
            net[leg.account_id][leg.side] += leg.amount
    if _needs_lookup(net):
        rows: dict[int, dict[str, Any]] = {row["pk"]: dict(row) for row in Account.objects.filter(
            pk__in=net.keys()).values("pk", "normal_side", "is_negative_allowed", "is_balance_cached", "currency")}
        for legs in journals:
            _check_one_unit(legs, rows)
        accounts: dict[int, dict[str, Any]] = {pk: row for pk, row in rows.items() if row["is_balance_cached"]}
    else:
        for legs in journals:
            _check_one_unit(legs, _known_units(legs))
        accounts = _known_wallets(net)
    moves = []
    for account_id in sorted(accounts):
        row = accounts[account_id]
        sides = net[account_id]
        delta = sides[Side.CREDIT] - sides[Side.DEBIT]
        if row["normal_side"] == Side.DEBIT:
            delta = -delta
        if delta != ZERO:
            moves.append((account_id, delta, delta < ZERO and not row["is_negative_allowed"]))
    return moves


def _check_one_unit(legs: list[Leg], rows: dict[int, dict[str, Any]]) -> None:
    units = {rows[leg.account_id]["currency"] for leg in legs if leg.account_id in rows}
    if len(units) > 1:
        raise ApplicationError(f"a journal moves one unit only, not {sorted(units)}", code="ledger_mixed_units")
    if units == {POINTS_UNIT} and any(leg.amount != leg.amount.to_integral_value() for leg in legs):
        raise ApplicationError("points are whole numbers", code="ledger_points_not_whole")


def _needs_lookup(net: dict[int, dict[str, Decimal]]) -> bool:
    return any(account_id not in _system_ids and account_id not in _wallet_ids and account_id not in _points_ids
               and account_id not in _points_system_ids for account_id in net)


def _known_units(legs: list[Leg]) -> dict[int, dict[str, Any]]:
    return {leg.account_id: {"currency": POINTS_UNIT if leg.account_id in _points_ids
                             or leg.account_id in _points_system_ids else CURRENCY} for leg in legs}


def _known_wallets(net: dict[int, dict[str, Decimal]]) -> dict[int, dict[str, Any]]:
    """Skip the lookup query on the hot path: ids we created ourselves are wallets and buyers' points accounts
    (balance cached, never negative) or uncached system accounts."""
    return {
        account_id: {"pk": account_id, "normal_side": Side.CREDIT, "is_negative_allowed": False}
        for account_id in net
        if account_id in _wallet_ids or account_id in _points_ids
    }


def forget_cached_account_ids() -> None:
    """For tests that flush the database between cases."""
    _system_account_ids.clear()
    _wallet_account_ids.clear()
    _system_ids.clear()
    _wallet_ids.clear()
    _points_account_ids.clear()
    _points_ids.clear()
    _points_system_ids.clear()


# --- many journals at once (group commit of checkouts, PostgreSQL) ----------------------------------------------


@dataclass(frozen=True)
class JournalDraft:
    kind: str
    reference: str
    memo: str
    legs: list[Leg]


class InsufficientFundsManyError(InsufficientFundsError):
    """Some accounts of a batch would go below zero: `account_ids` names every one of them."""

    def __init__(self, account_ids: set[int]) -> None:
        super().__init__("余额不足", code="insufficient_balance", extra={"account_ids": sorted(account_ids)})
        self.account_ids = account_ids


# Rows travel as one JSON document per statement: psycopg adapts a Python list into a PostgreSQL array element by
# element in Python, which cost more CPU than the statements themselves.
#
# One statement: the journals, their entries, then the balance-cached accounts locked in id order (as every
# single-journal path locks them) and moved by one guarded UPDATE. The UPDATE reaches its rows only through the
# `locked` rows, which come out (and are locked) in id order, so the locks are taken in that order whatever plan
# PostgreSQL picks. NO KEY UPDATE is the lock an UPDATE of the balance takes anyway: it leaves the foreign-key checks
# of other transactions' entries on these accounts unblocked. Answers the entries written and the accounts moved.
_JOURNALS_POST_SQL = """
WITH journal AS (
    INSERT INTO ledger_journal (kind, reference, memo, created_at)
    SELECT j.kind, j.reference, j.memo, %(now)s
    FROM json_to_recordset(%(journals)s::json) AS j(kind text, reference text, memo text)
    RETURNING id, kind, reference
), entry AS (
    INSERT INTO ledger_entry (journal_id, account_id, side, amount)
    SELECT journal.id, leg.account_id, leg.side, leg.amount
    FROM json_to_recordset(%(legs)s::json) AS leg(kind text, reference text, account_id bigint, side text,
                                                  amount numeric)
    JOIN journal ON journal.kind = leg.kind AND journal.reference = leg.reference
    RETURNING 1
), locked AS MATERIALIZED (
    SELECT id FROM ledger_account
    WHERE id IN (SELECT m.id FROM json_to_recordset(%(moves)s::json) AS m(id bigint))
    ORDER BY id FOR NO KEY UPDATE
), moved AS (
    UPDATE ledger_account AS account SET balance = account.balance + move.delta
    FROM json_to_recordset(%(moves)s::json) AS move(id bigint, delta numeric, guarded boolean)
    JOIN locked USING (id)
    WHERE account.id = move.id AND (NOT move.guarded OR account.balance + move.delta >= 0)
    RETURNING account.id
)
SELECT (SELECT count(*) FROM entry), ARRAY(SELECT id FROM moved),
       -- strict: fail the statement (division by zero) when an entry is missing or a balance did not move
       1 / (CASE WHEN %(strict)s AND ((SELECT count(*) FROM entry) <> %(entries)s
                                      OR (SELECT count(*) FROM moved) <> %(moved)s) THEN 0 ELSE 1 END)
"""


def journal_post_many(drafts: Sequence[JournalDraft]) -> None:
    """PostgreSQL: post many balanced journals in the caller's transaction, in one statement whatever their count.

    The same rules as `journal_post`: every journal balanced with positive legs, one journal per (kind, reference)
    (a duplicate raises `IntegrityError`), no balance-cached account below zero. When some accounts would go below
    zero, `InsufficientFundsManyError` names all of them; some rows are written by then, so the caller rolls its
    transaction back (it is the group-commit writer, which retries without those accounts' orders).
    """
    journal_post_many_send(drafts)()


def journal_post_many_send(drafts: Sequence[JournalDraft], *, cursor: Any = None,
                           strict: bool = False) -> Callable[[], None]:
    """`journal_post_many` in two steps: send its statement now and return the function that reads its answer and
    raises what `journal_post_many` raises. Inside `kameng.core.sql.statements_pipelined` it travels with the
    statements around it, and on a `kameng.core.sql.OneMessage` cursor with that message; call the function after
    the block (or the message), always: until it has run, nothing says the journals were posted.

    `strict`: the statement itself fails (a database error) where `journal_post_many` would raise — for a message
    that carries its own COMMIT, which then never runs."""
    if connection.vendor != "postgresql":
        raise ApplicationError("journal_post_many needs PostgreSQL", code="ledger_backend_unsupported")
    legs = [leg for draft in drafts for leg in draft.legs]
    for draft in drafts:
        _check_balanced(draft.legs)
    moves = _cached_balance_moves([draft.legs for draft in drafts])
    if cursor is None:
        cursor = connection.cursor()
    cursor.execute(_JOURNALS_POST_SQL, {
        "now": timezone.now(),
        "journals": json_rows({"kind": str(draft.kind), "reference": draft.reference, "memo": draft.memo[:200]}
                              for draft in drafts),
        "legs": json_rows({"kind": str(draft.kind), "reference": draft.reference, "account_id": leg.account_id,
                           "side": str(leg.side), "amount": str(leg.amount)}
                          for draft in drafts for leg in draft.legs),
        "moves": json_rows({"id": account_id, "delta": str(delta), "guarded": guarded}
                           for account_id, delta, guarded in moves),
        "strict": strict, "entries": len(legs), "moved": len(moves),
    })

    def posted() -> None:
        with cursor:
            entries, moved, _strict = cursor.fetchone()
        if entries != len(legs):
            raise ApplicationError("journal entries went missing in a batch", code="ledger_batch_mismatch")
        if len(moved) != len(moves):
            raise InsufficientFundsManyError({account_id for account_id, _, _ in moves} - set(moved))

    return posted
