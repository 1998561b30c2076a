"""The one place orders are locked, so every path takes the same locks in the same order."""

from __future__ import annotations

from django.db.models import QuerySet

from kameng.orders.models import Order


def order_lock(*, order_id: int) -> Order:
    return Order.objects.select_for_update().get(pk=order_id)


def orders_lock(*, order_ids: list[int]) -> QuerySet[Order]:
    return Order.objects.select_for_update().filter(pk__in=order_ids).order_by("pk")
