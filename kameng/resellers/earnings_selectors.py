"""What the reseller console shows of its earnings, invitees and commission withdrawals; every query is scoped to
one beneficiary (a user id) or one reseller."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, F, QuerySet, Sum

from kameng.core.money import ZERO, money
from kameng.resellers.models import Earning, EarningKind, EarningState, Referral, ResellerWithdrawal

EARNINGS_LIST_ROWS = 100


@dataclass(frozen=True)
class StateTotal:
    state: str
    label: str
    amount: Decimal  # what is left of the earnings in this state after reversals (reversed: what was taken back)
    count: int


def mask_order_number(number: str) -> str:
    """`K261126143905123048213` → `K2611…8213`: enough to tell orders apart, not enough to look one up."""
    return f"{number[:5]}…{number[-4:]}" if len(number) > 9 else "…" + number[-4:]


def invitees_count(*, user_id: int) -> int:
    return Referral.objects.filter(inviter_id=user_id).count()


def earnings_of(*, user_id: int, kind: EarningKind) -> QuerySet[Earning]:
    return Earning.objects.filter(beneficiary_id=user_id, kind=kind)


def earnings_totals(*, user_id: int, kind: EarningKind) -> list[StateTotal]:
    """One line per state, in the order of the state machine: the amount still earned (the reversed amount for
    `reversed`) and how many earnings."""
    rows = {row["state"]: row for row in earnings_of(user_id=user_id, kind=kind).values("state").annotate(
        net=Sum(F("amount") - F("reversed_amount")), gross=Sum("amount"), reversed=Sum("reversed_amount"),
        count=Count("pk")).order_by()}
    partly_reversed = money(earnings_of(user_id=user_id, kind=kind).exclude(state=EarningState.REVERSED)
                            .aggregate(total=Sum("reversed_amount"))["total"] or ZERO)
    totals = []
    for state in EarningState:
        row = rows.get(state.value)
        if state == EarningState.REVERSED:
            amount = money((row["gross"] if row else ZERO) or ZERO) + partly_reversed
        else:
            amount = money((row["net"] if row else ZERO) or ZERO)
        totals.append(StateTotal(state=state.value, label=str(state.label), amount=amount,
                                 count=int(row["count"]) if row else 0))
    return totals


def earnings_recent(*, user_id: int, kind: EarningKind, limit: int = EARNINGS_LIST_ROWS) -> list[Earning]:
    return list(earnings_of(user_id=user_id, kind=kind).select_related("order").order_by("-pk")[:limit])


def withdrawals_recent(*, reseller_id: int, limit: int = 50) -> list[ResellerWithdrawal]:
    return list(ResellerWithdrawal.objects.filter(reseller_id=reseller_id).order_by("-pk")[:limit])
