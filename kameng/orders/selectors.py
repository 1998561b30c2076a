"""Reads of orders for the buyer and staff."""

from __future__ import annotations

import re

from django.db.models import QuerySet

from kameng.orders.models import Order, OrderEvent

# What an order number can look like (kameng.core.ids.public_number makes them, the column holds 32). Anything
# else names no order and is answered without a query: PostgreSQL cannot even compare a string with a NUL in it.
ORDER_NUMBER_RE = re.compile(r"[A-Za-z0-9-]{1,32}", re.ASCII)


def orders_of_buyer(*, buyer_id: int) -> QuerySet[Order]:
    return Order.objects.filter(buyer_id=buyer_id).order_by("-id")


def order_of_buyer(*, buyer_id: int, number: str) -> Order | None:
    if not ORDER_NUMBER_RE.fullmatch(number):
        return None
    return Order.objects.filter(buyer_id=buyer_id, number=number).select_related("sku__product").first()


def order_timeline(*, order_id: int) -> QuerySet[OrderEvent]:
    return OrderEvent.objects.filter(order_id=order_id).order_by("id")
