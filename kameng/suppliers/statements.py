"""Monthly statements (月度对账单) of a supplier's money, read from its settlements and the ledger.

A month is a calendar month in the shop's time zone (settings.TIME_ZONE, Asia/Shanghai); a movement belongs to the
month of its journal's time. Per month: the orders delivered (settlements: count, gross cost, tax withheld), the
refunds reversed (cost, tax given back), the supplier's debt paid down or incurred, the net that reached the
payable, the withdrawals (requested, less those rejected), and the payable balance at the start and end of the
month (the sum of the payable account's legs before each boundary). They agree by construction with the ledger:
closing = opening + net − withdrawals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone

from kameng.core.money import ZERO, money
from kameng.ledger.models import AccountKind, Entry, JournalKind, Side
from kameng.suppliers.models import SettlementMovement, SettlementMovementKind, Supplier


@dataclass(frozen=True)
class MonthlyStatement:
    month: date  # the first day of the month
    orders_delivered: int
    gross_cost: Decimal
    tax_withheld: Decimal
    reversed_cost: Decimal
    reversed_tax: Decimal
    debt_repaid: Decimal
    debt_incurred: Decimal
    net: Decimal  # what reached the payable from settlements and reversals
    withdrawals_requested: Decimal
    withdrawals_rejected: Decimal
    opening_payable: Decimal
    closing_payable: Decimal
    opening_debt: Decimal
    closing_debt: Decimal

    @property
    def withdrawals(self) -> Decimal:
        return self.withdrawals_requested - self.withdrawals_rejected


@dataclass(frozen=True)
class StatementLine:
    at: datetime
    kind: str
    reference: str
    cost: Decimal
    tax: Decimal
    payable: Decimal  # signed: + into the payable, − out of it
    debt: Decimal  # signed: + the supplier owes more, − it owes less


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """[start, end) of the calendar month holding `month`, in the shop's time zone."""
    start = datetime(month.year, month.month, 1, tzinfo=_zone())
    end = datetime(month.year + (month.month == 12), month.month % 12 + 1, 1, tzinfo=_zone())
    return start, end


def _sum(values: dict[str, Decimal | None], key: str) -> Decimal:
    return money(values.get(key) or ZERO)


def _account_balance_before(owner_id: int, kind: AccountKind, moment: datetime) -> Decimal:
    """The account's balance as its legs stood just before `moment` (normal side positive)."""
    normal = Side.DEBIT if kind == AccountKind.SUPPLIER_DEBT else Side.CREDIT
    rows = (Entry.objects.filter(account__owner_id=owner_id, account__kind=kind, journal__created_at__lt=moment)
            .aggregate(up=Sum("amount", filter=Q(side=normal)), down=Sum("amount", filter=~Q(side=normal))))
    return money((rows["up"] or ZERO) - (rows["down"] or ZERO))


def movements_between(*, supplier_ids: list[int] | None, start: datetime, end: datetime) -> dict[int, dict[str, Any]]:
    """Supplier id → the sums of its settlement movements whose journals fall in [start, end)."""
    query = SettlementMovement.objects.filter(journal__created_at__gte=start, journal__created_at__lt=end)
    if supplier_ids is not None:
        query = query.filter(supplier_id__in=supplier_ids)
    settled = Q(kind=SettlementMovementKind.SETTLEMENT)
    reversed_ = Q(kind=SettlementMovementKind.REVERSAL)
    rows = query.values("supplier_id").order_by().annotate(
        orders=Count("pk", filter=settled),
        gross_cost=Sum("cost", filter=settled), tax_withheld=Sum("tax", filter=settled),
        debt_repaid=Sum("debt", filter=settled), settled_payable=Sum("payable", filter=settled),
        reversed_cost=Sum("cost", filter=reversed_), reversed_tax=Sum("tax", filter=reversed_),
        debt_incurred=Sum("debt", filter=reversed_), reversed_payable=Sum("payable", filter=reversed_),
    )
    return {row["supplier_id"]: dict(row) for row in rows}


def withdrawals_between(*, owner_id: int, start: datetime, end: datetime) -> tuple[Decimal, Decimal]:
    """(requested, rejected) withdrawal amounts on the payable in [start, end), from the ledger."""
    rows = (Entry.objects.filter(account__owner_id=owner_id, account__kind=AccountKind.SUPPLIER_PAYABLE,
                                 journal__created_at__gte=start, journal__created_at__lt=end)
            .aggregate(requested=Sum("amount", filter=Q(journal__kind=JournalKind.SUPPLIER_WITHDRAWAL)),
                       rejected=Sum("amount", filter=Q(journal__kind=JournalKind.SUPPLIER_WITHDRAWAL_REJECTED))))
    return money(rows["requested"] or ZERO), money(rows["rejected"] or ZERO)


def supplier_monthly_statement(*, supplier: Supplier, month: date) -> MonthlyStatement:
    start, end = month_bounds(month)
    sums = movements_between(supplier_ids=[supplier.pk], start=start, end=end).get(supplier.pk, {})
    requested, rejected = withdrawals_between(owner_id=supplier.owner_id, start=start, end=end)
    owner_id = supplier.owner_id
    return MonthlyStatement(
        month=date(month.year, month.month, 1), orders_delivered=int(sums.get("orders") or 0),
        gross_cost=_sum(sums, "gross_cost"), tax_withheld=_sum(sums, "tax_withheld"),
        reversed_cost=_sum(sums, "reversed_cost"), reversed_tax=_sum(sums, "reversed_tax"),
        debt_repaid=_sum(sums, "debt_repaid"), debt_incurred=_sum(sums, "debt_incurred"),
        net=_sum(sums, "settled_payable") - _sum(sums, "reversed_payable"),
        withdrawals_requested=requested, withdrawals_rejected=rejected,
        opening_payable=_account_balance_before(owner_id, AccountKind.SUPPLIER_PAYABLE, start),
        closing_payable=_account_balance_before(owner_id, AccountKind.SUPPLIER_PAYABLE, end),
        opening_debt=_account_balance_before(owner_id, AccountKind.SUPPLIER_DEBT, start),
        closing_debt=_account_balance_before(owner_id, AccountKind.SUPPLIER_DEBT, end),
    )


def supplier_statement_months(*, supplier: Supplier) -> list[date]:
    """The months with a statement, newest first: from the supplier's first money movement to this month."""
    first = (Entry.objects.filter(account__owner_id=supplier.owner_id,
                                  account__kind__in=[AccountKind.SUPPLIER_PAYABLE, AccountKind.SUPPLIER_DEBT])
             .order_by("journal__created_at").values_list("journal__created_at", flat=True).first())
    today = timezone.localtime(timezone.now(), _zone()).date()
    if first is None:
        return [date(today.year, today.month, 1)]
    month = timezone.localtime(first, _zone()).date().replace(day=1)
    months = []
    while month <= today:
        months.append(month)
        month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return months[::-1]


def supplier_statement_lines(*, supplier: Supplier, month: date) -> list[StatementLine]:
    """Every movement of the month, oldest first: settlements and reversals (by order), then withdrawals."""
    start, end = month_bounds(month)
    lines = []
    movements = (SettlementMovement.objects.filter(supplier=supplier, journal__created_at__gte=start,
                                                   journal__created_at__lt=end)
                 .select_related("journal", "settlement__order").order_by("journal__created_at", "pk"))
    for movement in movements:
        sign = 1 if movement.kind == SettlementMovementKind.SETTLEMENT else -1
        lines.append(StatementLine(at=movement.journal.created_at, kind=movement.get_kind_display(),
                                   reference=movement.settlement.order.number, cost=sign * movement.cost,
                                   tax=sign * movement.tax, payable=sign * movement.payable,
                                   debt=(-sign * movement.debt) or ZERO))  # never "-0.00"
    withdrawals = (Entry.objects.filter(account__owner_id=supplier.owner_id,
                                        account__kind=AccountKind.SUPPLIER_PAYABLE,
                                        journal__created_at__gte=start, journal__created_at__lt=end,
                                        journal__kind__in=[JournalKind.SUPPLIER_WITHDRAWAL,
                                                           JournalKind.SUPPLIER_WITHDRAWAL_REJECTED])
                   .select_related("journal").order_by("journal__created_at", "pk"))
    for entry in withdrawals:
        lines.append(StatementLine(at=entry.journal.created_at, kind=entry.journal.get_kind_display(),
                                   reference=entry.journal.reference, cost=ZERO, tax=ZERO,
                                   payable=entry.amount if entry.side == Side.CREDIT else -entry.amount, debt=ZERO))
    return sorted(lines, key=lambda line: line.at)
