"""Reads of points (积分): a buyer's balance and statement (each movement with its order), an order's points, the
points shop's offer, and what a buyer may use at checkout."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from kameng.catalog.pricing import POINTS_INPUT_MAX, sku_price
from kameng.catalog.selectors import skus_for_sale
from kameng.core.money import ZERO
from kameng.inventory.selectors import stock_by_sku
from kameng.ledger.models import JournalKind
from kameng.ledger.selectors import points_balance, points_statement
from kameng.orders.models import Order
from kameng.points.models import OrderPoints, PointsShopItem
from kameng.points.services import points_earn_target

# Journals whose reference is order:<number>:<n>, and those whose reference is the order number itself.
_PER_ORDER_STEP = {JournalKind.POINTS_EARN, JournalKind.POINTS_EARN_REVERSAL, JournalKind.POINTS_REDEEM_RETURN}
_ORDER_NUMBER = {JournalKind.POINTS_REDEEM, JournalKind.POINTS_EXCHANGE}


def statement_order_number(*, journal_kind: str, reference: str) -> str:
    """The order a points movement belongs to ("" for an expiry)."""
    if journal_kind in _ORDER_NUMBER:
        return reference
    if journal_kind in _PER_ORDER_STEP and reference.startswith("order:"):
        return reference.split(":")[1]
    return ""


@dataclass(frozen=True)
class PointsOverview:
    balance: int
    # created_at, journal_kind, kind (its label), reference, memo, points (signed), order_number ("" for none)
    statement: list[dict[str, Any]]


def points_overview(*, user_id: int, limit: int = 50) -> PointsOverview:
    """The buyer's points and their latest movements, newest first, each with its order number when it has one."""
    rows: list[dict[str, Any]] = points_statement(user_id=user_id, limit=limit)
    for row in rows:
        row["order_number"] = statement_order_number(journal_kind=str(row["journal_kind"]),
                                                     reference=str(row["reference"]))
    return PointsOverview(balance=points_balance(user_id=user_id), statement=rows)


@dataclass(frozen=True)
class OrderPointsSummary:
    redeemed: int  # points used on the order
    offset: Decimal  # the cash they offset
    earned: int  # points earned (booked, or about to be when `is_pending`)
    returned: int  # points used and given back by refunds
    is_pending: bool  # earned but not booked yet (the aftercare runs after commit)


def order_points_summary(order: Order) -> OrderPointsSummary:
    record = OrderPoints.objects.filter(order=order).first()
    if record is None:
        target = points_earn_target(order)
        return OrderPointsSummary(redeemed=order.points_redeemed, offset=order.points_offset, earned=target,
                                  returned=0, is_pending=target > 0)
    return OrderPointsSummary(redeemed=order.points_redeemed, offset=order.points_offset, earned=record.earned,
                              returned=record.returned, is_pending=False)


def points_usable(*, buyer_id: int, sku_id: int, quantity: int, sales_channel: str) -> tuple[int, int, Decimal]:
    """(balance, the most points this order could use, the cash they would offset) for the buy form."""
    balance = points_balance(user_id=buyer_id)
    sku = skus_for_sale(sku_ids=[sku_id]).get(sku_id)
    if sku is None or balance <= 0:
        return balance, 0, ZERO
    quote = sku_price(sku=sku, buyer_id=buyer_id, quantity=quantity, sales_channel=sales_channel,
                      points=min(balance, POINTS_INPUT_MAX))
    return balance, quote.points_redeemed, quote.points_offset


def points_shop_items() -> list[dict[str, object]]:
    """The active items whose SKU is on sale, with their stock."""
    items = list(_active_items())
    on_sale = skus_for_sale(sku_ids=[item.sku_id for item in items])
    stock = stock_by_sku(item.sku_id for item in items)
    return [{"item": item, "title": on_sale[item.sku_id].title, "stock": stock.get(item.sku_id, 0)}
            for item in items if item.sku_id in on_sale]


def _active_items() -> QuerySet[PointsShopItem]:
    return PointsShopItem.objects.filter(is_active=True).select_related("sku", "sku__product")
