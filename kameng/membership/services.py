"""Writes of membership: counting what buyers spend (the aftercare listener), levels after staff edit them.

Spend counts completed spend only: an order adds total − refunded while the buyer keeps the goods (delivered,
completed, under after-sales, partially refunded) and nothing in any other state, so a refund lowers the spend by
what came back, a full refund takes the whole order out. The level follows the spend both ways: it is the highest
level whose threshold the spend reaches (equal is enough), recomputed in the same transaction as the spend, so an
upgrade is immediate and a refund that takes the spend below a threshold drops the level (a level bought and then
refunded is not kept).
"""

from __future__ import annotations

import functools
import logging
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from kameng.core.money import ZERO, money
from kameng.membership.models import CountedOrder, MemberLevel, Membership
from kameng.membership.pricing import buyer_levels_changed, price_tables, price_tables_changed
from kameng.orders.models import Order, OrderStatus

logger = logging.getLogger(__name__)

# The buyer has the goods and what was not refunded is spent.
COUNTED_STATUSES = frozenset({OrderStatus.DELIVERED, OrderStatus.COMPLETED, OrderStatus.AFTER_SALES,
                              OrderStatus.PARTIALLY_REFUNDED})


def order_counted_amount(*, status: str, total_amount: Decimal, refunded_amount: Decimal) -> Decimal:
    return money(total_amount - refunded_amount) if status in COUNTED_STATUSES else ZERO


# One statement on PostgreSQL (the listener runs after every checkout batch; with eager tasks, in the checkout
# writer's thread): lock the orders in id order and read their state (a refund committing meanwhile is waited for
# and then seen), upsert each order's counted amount where it changed, returning the change (amount − previous,
# from the row version it replaced, so two runs never both apply it), add the changes per buyer to the spend
# (rows locked in buyer order by the upsert), and set the level from the levels table; returns the levels.
_COUNT_SQL = """
WITH o AS (
    SELECT id, buyer_id,
           CASE WHEN status = ANY(%(counted)s) THEN total_amount - refunded_amount ELSE 0 END AS amount
    FROM orders_order WHERE id = ANY(%(ids)s::bigint[]) ORDER BY id FOR NO KEY UPDATE
), changed AS (
    INSERT INTO membership_countedorder AS c (order_id, buyer_id, amount, previous_amount, updated_at)
    SELECT id, buyer_id, amount, 0, now() FROM o
    WHERE amount <> 0 OR EXISTS (SELECT 1 FROM membership_countedorder k WHERE k.order_id = o.id)
    ORDER BY id
    ON CONFLICT (order_id) DO UPDATE SET previous_amount = c.amount, amount = EXCLUDED.amount,
                                         updated_at = EXCLUDED.updated_at
    WHERE c.amount <> EXCLUDED.amount
    RETURNING c.buyer_id, c.amount - c.previous_amount AS delta
), delta AS (
    SELECT buyer_id, sum(delta) AS delta FROM changed GROUP BY buyer_id HAVING sum(delta) <> 0
)
INSERT INTO membership_membership AS m (user_id, spend, level_rank, updated_at)
SELECT buyer_id, greatest(delta, 0),
       (SELECT coalesce(max(l.rank), 0) FROM membership_memberlevel l WHERE l.threshold <= greatest(delta, 0)),
       now()
FROM delta ORDER BY buyer_id
ON CONFLICT (user_id) DO UPDATE SET
    spend = greatest(m.spend + (SELECT d.delta FROM delta d WHERE d.buyer_id = EXCLUDED.user_id), 0),
    level_rank = (SELECT coalesce(max(l.rank), 0) FROM membership_memberlevel l
                  WHERE l.threshold <= greatest(m.spend + (SELECT d.delta FROM delta d
                                                            WHERE d.buyer_id = EXCLUDED.user_id), 0)),
    updated_at = EXCLUDED.updated_at
RETURNING m.user_id, m.level_rank
"""


def membership_orders_count(*, order_ids: list[int], event: str) -> None:
    """Aftercare listener (`KAMENG_ORDER_AFTERCARE`): bring each order's counted amount in line with its state and
    move the buyers' spend and level by the difference. Idempotent: a second run finds nothing to change.

    The orders are locked (in id order) while they are read, so a refund committing meanwhile is either seen or
    waits; the memberships are locked in id order too. PostgreSQL: one statement (`_COUNT_SQL`)."""
    if not order_ids:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_COUNT_SQL, {"ids": sorted(set(order_ids)), "counted": sorted(COUNTED_STATUSES)})
            levels: dict[int, int] = dict(cursor.fetchall())
        if levels:
            transaction.on_commit(functools.partial(buyer_levels_changed, levels))
        return
    ranks: dict[int, int] = {}
    with transaction.atomic():
        no_key = connection.features.has_select_for_no_key_update
        orders = list(Order.objects.select_for_update(no_key=no_key).filter(pk__in=order_ids).order_by("pk")
                      .values_list("pk", "buyer_id", "status", "total_amount", "refunded_amount"))
        counted = dict(CountedOrder.objects.filter(order_id__in=[row[0] for row in orders])
                       .values_list("order_id", "amount"))
        rows: list[CountedOrder] = []
        deltas: dict[int, Decimal] = {}
        for order_id, buyer_id, status, total_amount, refunded_amount in orders:
            amount = order_counted_amount(status=status, total_amount=total_amount, refunded_amount=refunded_amount)
            before = counted.get(order_id)
            if amount == (ZERO if before is None else before):
                continue
            rows.append(CountedOrder(order_id=order_id, buyer_id=buyer_id, amount=amount,
                                     previous_amount=before or ZERO))
            deltas[buyer_id] = deltas.get(buyer_id, ZERO) + amount - (before or ZERO)
        if not rows:
            return
        # MySQL/MariaDB upsert on any unique key and refuse to be told which (the primary key is the only one).
        target = ["order"] if connection.features.supports_update_conflicts_with_target else None
        CountedOrder.objects.bulk_create(rows, update_conflicts=True, unique_fields=target,
                                         update_fields=["amount", "previous_amount", "updated_at"])
        buyers = sorted(buyer_id for buyer_id, delta in deltas.items() if delta != ZERO)
        if buyers:
            ranks = _spend_move(deltas={buyer_id: deltas[buyer_id] for buyer_id in buyers})
    transaction.on_commit(functools.partial(buyer_levels_changed, ranks))


def _spend_move(*, deltas: dict[int, Decimal]) -> dict[int, int]:
    """Add the deltas to the buyers' spend (rows created as needed) and set each level; returns the levels."""
    Membership.objects.bulk_create([Membership(user_id=buyer_id) for buyer_id in deltas], ignore_conflicts=True)
    memberships = list(Membership.objects.select_for_update().filter(user_id__in=list(deltas)).order_by("pk"))
    tables = price_tables()
    ranks: dict[int, int] = {}
    now = timezone.now()
    for membership in memberships:
        membership.updated_at = now  # bulk_update does not set auto_now fields
        membership.spend = max(money(membership.spend + deltas[membership.user_id]), ZERO)
        rank = tables.rank_for_spend(membership.spend)
        if rank != membership.level_rank:
            logger.info("buyer %s: level %s -> %s", membership.user_id, membership.level_rank, rank)
        membership.level_rank = rank
        ranks[membership.user_id] = rank
    Membership.objects.bulk_update(memberships, ["spend", "level_rank", "updated_at"])
    return ranks


def membership_spend_seed(*, user_id: int, spend: Decimal) -> int:
    """Set a buyer's spend without orders behind it (the demo's members; a migration from another shop), and the
    level it gives; returns the level. Orders counted later move it by their own amounts as usual."""
    spend = money(spend)
    rank = price_tables().rank_for_spend(spend)
    Membership.objects.update_or_create(user_id=user_id, defaults={"spend": spend, "level_rank": rank})
    transaction.on_commit(functools.partial(buyer_levels_changed, {user_id: rank}))
    return rank


def member_levels_recompute() -> int:
    """Set every member's level from their spend by the levels as they are now (after staff edited thresholds);
    returns how many changed. One UPDATE per level; the price tables are reloaded everywhere after commit."""
    levels = list(MemberLevel.objects.order_by("rank").values_list("rank", "threshold"))
    changed = 0
    with transaction.atomic():
        for index, (rank, threshold) in enumerate(levels):
            members = Membership.objects.filter(spend__gte=threshold if index else Decimal("-1"))
            if index + 1 < len(levels):
                members = members.filter(spend__lt=levels[index + 1][1])
            changed += members.exclude(level_rank=rank).update(level_rank=rank)
        if not levels:
            changed += Membership.objects.exclude(level_rank=0).update(level_rank=0)
        transaction.on_commit(price_tables_changed)
    return changed


def member_prices_changed() -> None:
    """A member price was added, changed or removed: every process reloads the tables after commit."""
    transaction.on_commit(price_tables_changed)
