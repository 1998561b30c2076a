"""The one place orders are locked, so every path takes the same locks in the same order."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection

from kameng.orders.models import Order


def order_lock(*, order_id: int) -> Order:
    return Order.objects.select_for_update().get(pk=order_id)


def buyer_lock(*, buyer_id: int) -> None:
    """Lock the buyer's user row until the transaction ends, so that one buyer's unpaid checkouts count that
    buyer's unpaid orders one after another (checked, then written, never both at once).

    FOR NO KEY UPDATE where the database has it (PostgreSQL): the foreign-key checks of the buyer's new rows take
    FOR KEY SHARE, which it does not block, so the buyer's wallet checkouts never wait for it. MySQL/MariaDB only
    have FOR UPDATE (their foreign-key checks do wait for it, for that buyer only); SQLite serialises writers anyway.
    """
    no_key = connection.features.has_select_for_no_key_update
    list(get_user_model().objects.select_for_update(no_key=no_key).filter(pk=buyer_id).values_list("pk", flat=True))
