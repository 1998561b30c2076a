"""Points (积分): earning on completed orders, giving back on refunds, the points shop, expiry.

Points are ledger money of their own unit (PTS, kameng.ledger): every movement is a journal from the recipes in
kameng/ledger/recipes.py, and a change is always a new journal, never an edit of an old one. Settings:
KAMENG_POINTS_PER_YUAN (earned per yuan of cash), KAMENG_POINTS_PER_YUAN_REDEEMED and
KAMENG_POINTS_REDEEM_MAX_SHARE (redemption at checkout, kameng.catalog.pricing), KAMENG_POINTS_EXPIRY_DAYS.

Earning and giving back (`order_points_settle`, run by the aftercare listener `points_aftercare` whenever an order
is delivered or refunded, and safe to run any number of times): the order's state says what its points should be,
and the difference from what is booked (`OrderPoints`) is posted —

- earned: floor((cash total − cash refunded) × KAMENG_POINTS_PER_YUAN) while the order is delivered, completed,
  in after-sales or partially refunded; 0 otherwise (refunded in full, never delivered). Only cash earns: the part
  offset by points and an order paid in points earn nothing. A refund that should take back points the buyer has
  already spent takes what the account holds and records the rest as `shortfall` (the account never goes below
  zero, and the buyer is not chased for it);
- returned (points used on the order, `Order.points_redeemed`): all of them once the order is refunded in full,
  floor(points used × cash refunded / cash total) after partial refunds — rounded down while the refund is partial,
  exact at the end, never more than used.

References: `order:<number>:<n>`, n counting this order's points journals (the kinds say earn / reverse / return).
The points used at checkout are debited by the checkout itself (reference: the order number).

Points shop (积分商城): `points_exchange_create` writes an order paid wholly in points (cash total ¥0.00, no money
journal, a POINTS_EXCHANGE journal) through the checkout's own writer, so its card keys are claimed atomically as
any order's. Card-key goods only: manual goods would need an order in progress with no money to hold. Such an
order is refunded in points, not money (`points_exchange_refund`); a money refund finds nothing refundable.

Expiry (`points_expire_due`, when KAMENG_POINTS_EXPIRY_DAYS is set): points go first in, first out. What expires
now is what was credited before the cutoff and not yet consumed by any debit: max(0, credits before the cutoff −
all debits so far), taken from the balance. Every debit (a redemption, a reversal, an earlier expiry) counts as
consuming the oldest points, and points given back on a refund count as credited on the day they came back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from kameng.catalog.pricing import sku_points_exchange_price
from kameng.catalog.selectors import skus_for_sale
from kameng.core.errors import ConflictError, NotFoundError
from kameng.core.money import ZERO
from kameng.inventory.services import decrypt_secrets
from kameng.ledger import recipes
from kameng.ledger.models import Account, AccountKind, Entry, Side
from kameng.ledger.services import journal_draft_post, journal_post_many, points_account_id
from kameng.orders.aftercare import AftercareEvent
from kameng.orders.checkout import checkout_draft, checkout_validate, drafts_write
from kameng.orders.events import fact
from kameng.orders.locks import order_lock
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.orders.refunds import REFUNDABLE
from kameng.orders.services import InsufficientPointsError
from kameng.orders.state import transition
from kameng.points.models import OrderPoints, PointsExchange, PointsShopItem

logger = logging.getLogger(__name__)

S = OrderStatus
# The buyer has the goods and keeps (some of) the money's worth: the order earns.
EARNING: frozenset[str] = frozenset({S.DELIVERED, S.COMPLETED, S.AFTER_SALES, S.PARTIALLY_REFUNDED})


# --- earning and giving back ---------------------------------------------------------------------------------------


def points_aftercare(*, order_ids: list[int], event: str) -> None:
    """The aftercare listener (KAMENG_ORDER_AFTERCARE): bring each order's points in line with its state.

    Orders heard of for the first time as plainly delivered (the whole group-commit batch, usually) earn together
    on PostgreSQL, in a few statements whatever their number; any other order is settled on its own."""
    rest = order_ids
    if event == AftercareEvent.DELIVERED and connection.vendor == "postgresql":
        rest = _points_earn_fresh(order_ids)
    for order_id in rest:
        order_points_settle(order_id=order_id)


# One statement: claim a points record for each order heard of for the first time (a concurrent run or refund then
# waits for this transaction and finds it), booked at once with what a plainly delivered order earns (floor of cash
# × rate, the journal posted next in the same transaction), and return the claimed orders with what the journals
# need. Any other fresh order (already refunded, not delivered) is claimed at zero, which is what the ledger holds
# for it, and left to `order_points_settle`.
_RECORDS_CLAIM_SQL = """
WITH o AS (
    SELECT id, number, buyer_id, title,
           CASE WHEN status = %(delivered)s AND refunded_amount = 0
                THEN floor(total_amount * %(rate)s)::integer END AS earned
    FROM orders_order WHERE id = ANY(%(ids)s::bigint[])
), claimed AS (
    INSERT INTO points_orderpoints (order_id, earned, returned, shortfall, journals, updated_at)
    SELECT id, coalesce(earned, 0), 0, 0, CASE WHEN earned > 0 THEN 1 ELSE 0 END, now() FROM o ORDER BY id
    ON CONFLICT (order_id) DO NOTHING
    RETURNING order_id
)
SELECT o.id, o.number, o.buyer_id, o.title, o.earned FROM claimed JOIN o ON o.id = claimed.order_id ORDER BY o.id
"""


def _points_earn_fresh(order_ids: list[int]) -> list[int]:
    """Earn the points of orders that have no points record yet and are delivered with nothing refunded: their
    records are claimed and booked and their journals posted in one batch. Returns the ids left for
    `order_points_settle`: every other order, including a fresh one already refunded (its record claimed at zero,
    which is what the ledger holds for it)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_RECORDS_CLAIM_SQL, {"ids": sorted(set(order_ids)), "delivered": str(S.DELIVERED),
                                                "rate": Decimal(settings.KAMENG_POINTS_PER_YUAN)})
            fresh = cursor.fetchall()
        if not fresh:
            return order_ids
        # A buyer's first points create the buyer's points account. Two runs creating accounts for the same new
        # buyers in another order (each run's orders are in id order) would wait on each other's uncreated rows:
        # created in buyer order, one run waits for the other to commit instead.
        for buyer_id in sorted({buyer_id for _order_id, _number, buyer_id, _title, earned in fresh if earned}):
            points_account_id(user_id=buyer_id)
        drafts = [recipes.points_earned(reference=f"order:{number}:1", memo=f"购物获得积分 {title}"[:200],
                                        user_id=buyer_id, points=earned)
                  for _order_id, number, buyer_id, title, earned in fresh if earned]
        if drafts:
            journal_post_many(drafts)
    settled = {row[0] for row in fresh if row[4] is not None}
    return [order_id for order_id in order_ids if order_id not in settled]


def points_earn_target(order: Order) -> int:
    if order.status not in EARNING:
        return 0
    return points_for_cash(order.total_amount - order.refunded_amount)


def points_for_cash(kept: Decimal) -> int:
    """The points `kept` yuan of cash earn: rounded down to a whole point."""
    return int((kept * settings.KAMENG_POINTS_PER_YUAN).to_integral_value(rounding=ROUND_DOWN))


def points_return_target(order: Order) -> int:
    used = order.points_redeemed
    if not used:
        return 0
    if order.status == S.REFUNDED:
        return used
    if order.total_amount <= ZERO:
        return 0
    share = Decimal(used) * order.refunded_amount / order.total_amount
    return min(used, int(share.to_integral_value(rounding=ROUND_DOWN)))


def order_points_settle(*, order_id: int) -> OrderPoints:
    """Post what the order's points lack or have too much of (module docstring); nothing when they are right."""
    with transaction.atomic():
        record = _record_lock(order_id)
        order = Order.objects.get(pk=order_id)  # read after the lock: the state the last refund committed
        account_id = points_account_id(user_id=order.buyer_id)

        def reference() -> str:
            record.journals += 1
            return f"order:{order.number}:{record.journals}"

        give_back = points_return_target(order) - record.returned
        if give_back > 0:  # first: what comes back may cover a reversal below
            journal_draft_post(draft=recipes.points_redeemed_returned(
                reference=reference(), memo=f"退款退回积分 {order.title}"[:200], user_id=order.buyer_id,
                points=give_back))
            record.returned += give_back
        change = points_earn_target(order) - record.earned
        if change > 0:
            journal_draft_post(draft=recipes.points_earned(
                reference=reference(), memo=f"购物获得积分 {order.title}"[:200], user_id=order.buyer_id,
                points=change))
        elif change < 0:
            available = _locked_balance(account_id)
            taken = min(-change, available)
            if taken:
                journal_draft_post(draft=recipes.points_earned_reversed(
                    reference=reference(), memo=f"退款扣回积分 {order.title}"[:200], user_id=order.buyer_id,
                    points=taken))
            if taken < -change:
                logger.info("order %s: %d points to take back were already spent", order.number, -change - taken)
            record.shortfall += -change - taken
        record.earned += change
        record.save()
    return record


def _record_lock(order_id: int) -> OrderPoints:
    """The order's points row, locked: two runs for one order take turns (each then sees what the other did)."""
    try:
        with transaction.atomic():
            OrderPoints.objects.get_or_create(order_id=order_id)
    except IntegrityError:  # created by a concurrent run in between
        pass
    return OrderPoints.objects.select_for_update().get(order_id=order_id)


def _locked_balance(account_id: int) -> int:
    balance = Account.objects.select_for_update().filter(pk=account_id).values_list("balance", flat=True).get()
    return int(balance)


# --- points shop ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExchangeResult:
    order: Order
    created: bool
    secrets: list[str]


def points_exchange_create(*, buyer_id: int, item_id: int, quantity: int = 1, request_id: str | None = None,
                           client_ip: str = "") -> ExchangeResult:
    """Exchange points for goods of the points shop: an order paid wholly in points, its card keys delivered.

    Refuses an item not on offer (404), a quantity out of the SKU's bounds, the buyer's limit for the item
    (409 `points_exchange_limit`), too few points (400 `insufficient_points`) and sold-out goods (409): nothing is
    written then. One buyer's exchanges take turns on their points account row, so the limit and the balance are
    counted exactly; the ledger's guard keeps the balance from going below zero whatever else spends it.
    Idempotent by (buyer, request_id) like a checkout.
    """
    item = PointsShopItem.objects.filter(pk=item_id, is_active=True).first()
    sku = skus_for_sale(sku_ids=[item.sku_id]).get(item.sku_id) if item is not None else None
    if item is None or sku is None:
        raise NotFoundError("积分商品不存在或已下架", code="points_item_not_found")
    existing = _existing(buyer_id, request_id)
    if existing is not None:
        return existing
    quote = sku_points_exchange_price(sku=sku, quantity=quantity, points_per_unit=item.points_price)
    checkout_validate(sku, quantity, quote)
    now = timezone.now()
    draft = checkout_draft(sku=sku, quote=quote, buyer_id=buyer_id, request_id=request_id, wallet_id=None,
                           client_ip=client_ip, now=now, points_exchange=True)
    account_id = points_account_id(user_id=buyer_id)
    try:
        with transaction.atomic():
            available = _locked_balance(account_id)
            _limit_check(item, buyer_id=buyer_id, quantity=quantity)
            if available < quote.points_redeemed:
                raise InsufficientPointsError(
                    "积分不足：需要 %(needed)s 积分，当前可用 %(available)s 积分", code="insufficient_points",
                    extra={"needed": quote.points_redeemed, "available": available},
                    params={"needed": quote.points_redeemed, "available": available})
            written, claimed = drafts_write([draft], now)
            if written:
                PointsExchange.objects.create(item=item, buyer_id=buyer_id, order=draft.order, quantity=quantity,
                                              points=quote.points_redeemed)
    except IntegrityError:
        written = []
    if not written:  # the request id was taken meanwhile
        replay = _existing(buyer_id, request_id)
        if replay is None:
            raise ConflictError("订单未生成，请重试", code="checkout_conflict")
        return replay
    secrets = decrypt_secrets([token for _, token in claimed.get(draft.order.pk, [])])
    return ExchangeResult(order=draft.order, created=True, secrets=secrets)


def _existing(buyer_id: int, request_id: str | None) -> ExchangeResult | None:
    if not request_id:
        return None
    order = Order.objects.filter(buyer_id=buyer_id, request_id=request_id).first()
    if order is None:
        return None
    if not PointsExchange.objects.filter(order=order).exists():
        raise ConflictError("该 request_id 已用于另一笔订单", code="request_id_reused", extra={"number": order.number})
    from kameng.inventory.selectors import secrets_for_order
    from kameng.orders.state import KEYS_VISIBLE

    secrets = secrets_for_order(order_id=order.pk) if order.status in KEYS_VISIBLE else []
    return ExchangeResult(order=order, created=False, secrets=secrets)


def _limit_check(item: PointsShopItem, *, buyer_id: int, quantity: int) -> None:
    if not item.per_buyer_limit:
        return
    # Refunded exchanges gave their points back: they do not count against the limit.
    taken = (PointsExchange.objects.filter(item=item, buyer_id=buyer_id).exclude(order__status=S.REFUNDED)
             .aggregate(total=Sum("quantity"))["total"]) or 0
    if taken + quantity > item.per_buyer_limit:
        raise ConflictError("该商品每人限兑 %(limit)s 件，您已兑换 %(taken)s 件", code="points_exchange_limit",
                            extra={"limit": item.per_buyer_limit, "taken": taken},
                            params={"limit": item.per_buyer_limit, "taken": taken})


def points_exchange_refund(*, order_id: int, reason: str = "") -> Order:
    """Refund an order paid wholly in points: it becomes refunded and its points come back (a new journal)."""
    with transaction.atomic():
        order = order_lock(order_id=order_id)
        if order.total_amount != ZERO or not order.points_redeemed:
            raise ConflictError("该订单不是积分兑换订单，请按金额退款", code="not_points_order")
        if order.status not in REFUNDABLE:
            raise ConflictError("订单状态为「%(status)s」，不能退款", code="not_refundable",
                                params={"status": order.get_status_display()})
        event = transition(order, S.REFUNDED, said=fact(OrderEventKind.POINTS_REFUNDED,
                                                        points=order.points_redeemed, reason=reason))
        order.save(update_fields=["status", "updated_at"])
        OrderEvent.objects.bulk_create([event])
        order_points_settle(order_id=order.pk)
    return order


# --- expiry --------------------------------------------------------------------------------------------------------


def points_expire_due(*, now: datetime | None = None) -> int:
    """Expire points older than KAMENG_POINTS_EXPIRY_DAYS, oldest first (module docstring). Returns the points
    expired; nothing when the setting is empty."""
    days = settings.KAMENG_POINTS_EXPIRY_DAYS
    if not days:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    account_ids = Account.objects.filter(kind=AccountKind.POINTS, balance__gt=0).values_list("pk", flat=True)
    return sum(_expire_account(account_id, cutoff) for account_id in account_ids)


def _expire_account(account_id: int, cutoff: datetime) -> int:
    with transaction.atomic():
        balance = _locked_balance(account_id)
        sums = Entry.objects.filter(account_id=account_id).aggregate(
            old_credits=Sum("amount", filter=Q(side=Side.CREDIT, journal__created_at__lt=cutoff)),
            debits=Sum("amount", filter=Q(side=Side.DEBIT)))
        unused_old = int(sums["old_credits"] or 0) - int(sums["debits"] or 0)
        expiring = min(balance, unused_old)
        if expiring <= 0:
            return 0
        owner_id = Account.objects.filter(pk=account_id).values_list("owner_id", flat=True).get()
        assert owner_id is not None
        journal_draft_post(draft=recipes.points_expired(
            reference=f"{owner_id}:{cutoff:%Y%m%dT%H%M%S}", memo=f"积分过期（{cutoff:%Y-%m-%d} 前获得）",
            user_id=owner_id, points=expiring))
    return expiring
