"""Reseller earnings (代理收益): the sub-site margin (分站利润) and the commissions up the invitation chain (推广返利)
that a delivered order earns, their confirmation after a waiting period and their reversal on refund.

What an order earns, worked out once when it is delivered (the aftercare listener `earnings_aftercare`):
- margin (level 0): an order sold on a sub-site (sales channel "subsite:<id>") carries the sub-site's markup as a
  price line with code `subsite_markup` (the amount per unit); the margin is that amount × quantity (never more
  than the cash the buyer paid), to the sub-site owner;
- commission (level n = 1 … depth): the n-th inviter up the buyer's chain (kameng.resellers.referrals) earns the
  level's rate (CommissionSettings) × the order's cash total (`total_amount`), rounded down to the fen.
A beneficiary that is not an ACTIVE reseller earns nothing at that level (the levels above still earn theirs: the
chain is not compressed), nor does the buyer itself (a self-purchase), nor an amount that rounds to ¥0.00. The
rates, depth and chain are those in force when the order is processed.

Each earning is one `Earning` row, unique per (kind, order, level) — the listener runs at least once, the second
run creates nothing — and one journal: platform revenue → earnings pending (a delivered order's money is revenue,
kameng.ledger.recipes). It waits, `pending`, until `available_at` = delivery processing + the confirmation period
(CommissionSettings.confirm_days, else KAMENG_RESELLER_CONFIRM_DAYS); then `earnings_release_due` (a beat task)
confirms it: margin → the owner's wallet, commission → its commission balance (withdrawable, or 转入余额). A
release claims its row with one conditional UPDATE (pending and due → available), so two workers never pay twice.

Refunds: while an earning is pending, a refund (part or whole) takes back the refunded share — the earning keeps
amount × (total − refunded) / total rounded down to the fen, nothing once the order is fully refunded — by a
reversal journal (earnings pending → revenue) of the difference; `reversed_amount` records it and the state
becomes `reversed` when nothing is left. Once released, nothing is clawed back: the confirmation period is the
window for refunds, and taking money back from a wallet or a paid-out commission is a matter for staff.

Order of locks: the order row (the refund path locks it too, so an order's refund and its earnings never cross),
then its earnings rows, then the ledger's accounts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from kameng.catalog.pricing import SUBSITE_CHANNEL_PREFIX, subsite_id_of_channel
from kameng.core.money import FEN, ZERO, money
from kameng.ledger import recipes
from kameng.ledger.services import journal_draft_post
from kameng.orders.locks import order_lock
from kameng.orders.models import Order, OrderStatus
from kameng.resellers.models import (
    CommissionSettings,
    Earning,
    EarningKind,
    EarningState,
    Referral,
    Reseller,
    ResellerStatus,
    SubSite,
)
from kameng.resellers.referrals import inviter_chain

logger = logging.getLogger(__name__)

S = OrderStatus
# An order in these states was delivered and (some of) its money is the platform's: it earns.
EARNING_STATUSES: frozenset[str] = frozenset({S.DELIVERED, S.COMPLETED, S.AFTER_SALES, S.PARTIALLY_REFUNDED})
# ... and in these its earnings may need a reversal.
WATCHED_STATUSES: frozenset[str] = EARNING_STATUSES | {S.REFUNDED}
SUBSITE_MARKUP_LINE = "subsite_markup"
RELEASE_BATCH = 500


def earnings_aftercare(*, order_ids: list[int], event: str) -> None:
    """The aftercare listener (KAMENG_ORDER_AFTERCARE), on delivery and on refund. One query keeps only the orders
    that can earn anything — sold on a sub-site, or bought by a user someone invited — so the checkout's other
    orders cost nothing more."""
    for order_id in _orders_that_earn(order_ids):
        order_earnings_sync(order_id=order_id)


# The listener's filter as one plain statement: it runs after every checkout batch, and building it through the ORM
# cost several times the query itself. Table and column names are the models' (kept in step by the tests).
_THAT_EARN_SQL = """
SELECT o.id FROM orders_order o
WHERE o.id IN ({ids}) AND o.status IN ({statuses})
  AND (o.sales_channel LIKE %s
       OR EXISTS (SELECT 1 FROM resellers_referral r WHERE r.user_id = o.buyer_id))
ORDER BY o.id
"""
_STATUS_LIST = sorted(str(status) for status in WATCHED_STATUSES)


def _orders_that_earn(order_ids: list[int]) -> list[int]:
    if not order_ids:
        return []
    sql = _THAT_EARN_SQL.format(ids=", ".join(["%s"] * len(order_ids)),
                                statuses=", ".join(["%s"] * len(_STATUS_LIST)))
    with connection.cursor() as cursor:
        cursor.execute(sql, [*order_ids, *_STATUS_LIST, f"{SUBSITE_CHANNEL_PREFIX}%"])
        return [row[0] for row in cursor.fetchall()]


def _that_earn(orders: QuerySet[Order]) -> list[int]:
    invited = Referral.objects.filter(user_id=OuterRef("buyer_id"))
    return list(orders.filter(status__in=WATCHED_STATUSES)
                .filter(Q(sales_channel__startswith=SUBSITE_CHANNEL_PREFIX) | Exists(invited))
                .order_by("pk").values_list("pk", flat=True))


@dataclass(frozen=True)
class PlannedEarning:
    kind: EarningKind
    level: int
    beneficiary_id: int
    amount: Decimal


def commission_of(total: Decimal, rate_percent: Decimal) -> Decimal:
    """rate % of the order's cash, rounded DOWN to the fen (5 % of ¥33.33 = ¥1.66)."""
    return (total * rate_percent / Decimal(100)).quantize(FEN, rounding=ROUND_DOWN)


def _active_resellers(user_ids: list[int]) -> set[int]:
    return set(Reseller.objects.filter(user_id__in=user_ids, status=ResellerStatus.ACTIVE)
               .values_list("user_id", flat=True))


def _subsite_markup(order: Order) -> Decimal:
    per_unit = ZERO
    for line in order.price_lines or []:
        if isinstance(line, dict) and line.get("code") == SUBSITE_MARKUP_LINE:
            per_unit += money(str(line.get("amount", "0")))
    return per_unit


def order_earnings_plan(*, order: Order, settings_row: CommissionSettings) -> list[PlannedEarning]:
    """What the order earns whom (module docstring), without writing anything."""
    planned: list[PlannedEarning] = []
    subsite_id = subsite_id_of_channel(order.sales_channel or "")
    if subsite_id is not None:
        owner_id = (SubSite.objects.filter(pk=subsite_id, reseller__status=ResellerStatus.ACTIVE)
                    .values_list("reseller__user_id", flat=True).first())
        margin = min(money(_subsite_markup(order) * order.quantity), money(order.total_amount))
        if owner_id is not None and owner_id != order.buyer_id and margin > ZERO:
            planned.append(PlannedEarning(EarningKind.MARGIN, 0, owner_id, margin))
    rates = settings_row.rates()
    chain = inviter_chain(user_id=order.buyer_id, depth=len(rates))
    active = _active_resellers(chain) if chain else set()
    for level, (inviter_id, rate) in enumerate(zip(chain, rates, strict=False), start=1):
        amount = commission_of(money(order.total_amount), rate)
        if inviter_id in active and inviter_id != order.buyer_id and amount > ZERO:
            planned.append(PlannedEarning(EarningKind.COMMISSION, level, inviter_id, amount))
    return planned


def _reference(order_number: str, kind: str, level: int) -> str:
    return f"{order_number}:{'M' if kind == EarningKind.MARGIN else 'C'}{level}"


def order_earnings_sync(*, order_id: int, now: datetime | None = None) -> list[Earning]:
    """Bring the order's earnings in line with it: create them once it is delivered, reverse the refunded share
    of those still pending. Idempotent; returns the order's earnings."""
    now = now or timezone.now()
    with transaction.atomic():
        order = order_lock(order_id=order_id)
        if order.status in EARNING_STATUSES and not Earning.objects.filter(order_id=order_id).exists():
            _earnings_create(order=order, now=now)
        earnings = list(Earning.objects.select_for_update().filter(order_id=order_id).order_by("pk"))
        for earning in earnings:
            if earning.state == EarningState.PENDING:
                _reverse_to_target(earning=earning, order=order)
    return earnings


def _earnings_create(*, order: Order, now: datetime) -> None:
    settings_row = CommissionSettings.current()
    available_at = now + timedelta(days=settings_row.period_days())
    for plan in order_earnings_plan(order=order, settings_row=settings_row):
        try:
            with transaction.atomic():
                Earning.objects.create(kind=plan.kind, beneficiary_id=plan.beneficiary_id, order_id=order.pk,
                                       level=plan.level, amount=plan.amount, available_at=available_at)
        except IntegrityError:  # made by an earlier run: the listener runs at least once
            continue
        is_margin = plan.kind == EarningKind.MARGIN
        journal_draft_post(draft=recipes.reseller_earning_pending(
            reference=_reference(order.number, plan.kind, plan.level),
            memo=f"{'分站利润' if is_margin else f'第 {plan.level} 级佣金'} {order.title}"[:200],
            amount=plan.amount, is_margin=is_margin))


def kept_amount(*, amount: Decimal, order: Order) -> Decimal:
    """What of an earning the order's refunds leave: its share of the cash the buyer kept, rounded down."""
    if order.status == S.REFUNDED or order.refunded_amount >= order.total_amount:
        return ZERO
    if order.refunded_amount <= ZERO or order.total_amount <= ZERO:
        return amount
    kept = amount * (order.total_amount - order.refunded_amount) / order.total_amount
    return kept.quantize(FEN, rounding=ROUND_DOWN)


def _reverse_to_target(*, earning: Earning, order: Order) -> None:
    target = earning.amount - kept_amount(amount=earning.amount, order=order)
    change = target - earning.reversed_amount
    if change <= ZERO:  # a refund never shrinks; nothing to do
        return
    is_margin = earning.kind == EarningKind.MARGIN
    journal_draft_post(draft=recipes.reseller_earning_reversed(
        reference=f"{_reference(order.number, earning.kind, earning.level)}:R{int(target * 100)}",
        memo=f"退款冲回 {order.title}"[:200], amount=change, is_margin=is_margin))
    earning.reversed_amount = target
    fields = ["reversed_amount"]
    if target == earning.amount:
        earning.state = EarningState.REVERSED
        earning.settled_at = timezone.now()
        fields += ["state", "settled_at"]
    earning.save(update_fields=fields)


def earnings_release_due(*, now: datetime | None = None, limit: int = RELEASE_BATCH) -> int:
    """Confirm the pending earnings whose time has come (the beat task). Returns how many this call released."""
    now = now or timezone.now()
    due = list(Earning.objects.filter(state=EarningState.PENDING, available_at__lte=now).order_by("available_at", "pk")
               .values_list("pk", flat=True)[:limit])
    released = 0
    for earning_id in due:
        try:
            released += earning_release(earning_id=earning_id, now=now)
        except Exception:  # one bad row must not stop the others; the next run tries it again
            logger.exception("releasing earning %s failed", earning_id)
    return released


def earning_release(*, earning_id: int, now: datetime | None = None) -> bool:
    """Release one due earning, once: a conditional UPDATE claims it (pending and due → available); whoever
    claims it posts the journal in the same transaction. False when it was not due or someone else had it."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = Earning.objects.filter(pk=earning_id, state=EarningState.PENDING, available_at__lte=now).update(
            state=EarningState.AVAILABLE, settled_at=now)
        if not claimed:
            return False
        earning = Earning.objects.select_related("order").get(pk=earning_id)
        amount = earning.amount - earning.reversed_amount
        if amount <= ZERO:  # cannot happen (fully reversed is not pending), but never post an empty journal
            return True
        reference = _reference(earning.order.number, earning.kind, earning.level)
        title = earning.order.title
        if earning.kind == EarningKind.MARGIN:
            draft = recipes.reseller_margin_released(reference=reference, memo=f"分站利润入账 {title}"[:200],
                                                     owner_id=earning.beneficiary_id, amount=amount)
        else:
            draft = recipes.commission_released(reference=reference, memo=f"佣金入账 {title}"[:200],
                                                owner_id=earning.beneficiary_id, amount=amount)
        journal_draft_post(draft=draft)
    return True


def earnings_sweep(*, since: datetime) -> int:
    """Sync every order changed since `since` that can earn (the listener's safety net). Returns how many."""
    earning = _that_earn(Order.objects.filter(updated_at__gte=since))
    for order_id in earning:
        try:
            order_earnings_sync(order_id=order_id)
        except Exception:
            logger.exception("syncing the earnings of order %s failed", order_id)
    return len(earning)
