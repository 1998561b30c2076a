"""What a supplier delivered (its console's 订单 and 售后 pages): orders its card keys were sold in and its direct
top-up attempts. Rows carry the order number, time, quantity, cost, status and delivery time — never the buyer nor
a card secret."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Sum

from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.orders.models import Order, OrderStatus
from kameng.suppliers.models import AttemptStatus, TopupAttempt

CARD_KEYS_KIND = "卡密"
TOPUP_KIND = "直充"


@dataclass(frozen=True)
class DeliveredRow:
    order_number: str
    created_at: datetime
    kind: str
    quantity: int
    cost: Decimal
    status: str  # a display label: the order's status, or the top-up attempt's
    delivery_seconds: int | None


def _seconds(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds()))


def _card_key_rows(*, supplier_id: int, limit: int, order_status: str | None) -> list[DeliveredRow]:
    keys = CardKey.objects.filter(supplier_id=supplier_id, status=CardKeyStatus.SOLD, order__isnull=False)
    if order_status is not None:
        keys = keys.filter(order__status=order_status)
    sold = list(keys.values("order_id").annotate(count=Count("pk"), cost=Sum("cost")).order_by("-order_id")[:limit])
    orders = Order.objects.only("number", "created_at", "status", "paid_at", "delivered_at").in_bulk(
        [row["order_id"] for row in sold])
    return [DeliveredRow(order_number=order.number, created_at=order.created_at, kind=CARD_KEYS_KIND,
                         quantity=row["count"], cost=row["cost"] or Decimal("0.00"),
                         status=order.get_status_display(),
                         delivery_seconds=_seconds(order.paid_at, order.delivered_at))
            for row in sold if (order := orders.get(row["order_id"])) is not None]


def _topup_rows(*, supplier_id: int, limit: int, order_status: str | None) -> list[DeliveredRow]:
    attempts = TopupAttempt.objects.filter(supplier_id=supplier_id)
    if order_status is not None:
        attempts = attempts.filter(order__status=order_status, status=AttemptStatus.SUCCEEDED)
    rows = attempts.select_related("order").only(
        "cost", "status", "submitted_at", "finished_at", "created_at", "order__number", "order__quantity",
        "order__status", "order__created_at").order_by("-pk")[:limit]
    return [DeliveredRow(order_number=attempt.order.number, created_at=attempt.created_at, kind=TOPUP_KIND,
                         quantity=attempt.order.quantity, cost=attempt.cost,
                         status=(attempt.order.get_status_display() if order_status is not None
                                 else attempt.get_status_display()),
                         delivery_seconds=(_seconds(attempt.submitted_at, attempt.finished_at)
                                           if attempt.status == AttemptStatus.SUCCEEDED else None))
            for attempt in rows]


def supplier_delivered_orders(*, supplier_id: int, limit: int = 200) -> list[DeliveredRow]:
    """The newest orders the supplier delivered (card keys sold) or was asked to top up, newest first."""
    rows = (_card_key_rows(supplier_id=supplier_id, limit=limit, order_status=None)
            + _topup_rows(supplier_id=supplier_id, limit=limit, order_status=None))
    return sorted(rows, key=lambda row: row.created_at, reverse=True)[:limit]


def supplier_disputes(*, supplier_id: int, limit: int = 200) -> list[DeliveredRow]:
    """Orders it delivered that are in after-sales (售后中) now."""
    rows = (_card_key_rows(supplier_id=supplier_id, limit=limit, order_status=OrderStatus.AFTER_SALES)
            + _topup_rows(supplier_id=supplier_id, limit=limit, order_status=OrderStatus.AFTER_SALES))
    return sorted(rows, key=lambda row: row.created_at, reverse=True)[:limit]
