"""Reads of orders for the buyer and staff."""

from __future__ import annotations

from django.db.models import QuerySet

from kameng.core.ids import is_public_number
from kameng.orders.models import Order, OrderEvent


def orders_of_buyer(*, buyer_id: int) -> QuerySet[Order]:
    return Order.objects.filter(buyer_id=buyer_id).select_related("sku__product").order_by("-id")


def order_of_buyer(*, buyer_id: int, number: str) -> Order | None:
    if not is_public_number(number):
        return None
    return Order.objects.filter(buyer_id=buyer_id, number=number).select_related("sku__product").first()


def order_timeline(*, order_id: int) -> QuerySet[OrderEvent]:
    return OrderEvent.objects.filter(order_id=order_id).order_by("id")


def order_last_event_id(*, order_id: int) -> int:
    """The id of the order's newest timeline event (0 if none): a page showing the timeline knows from it whether
    the order moved on since it was drawn."""
    return OrderEvent.objects.filter(order_id=order_id).order_by("-id").values_list("id", flat=True).first() or 0
