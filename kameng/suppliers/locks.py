"""The one place suppliers' rows are locked. A direct top-up's outcome takes its order first (kameng.orders.locks),
then the attempt: the fulfiller, the submit's outcome, a query's and a callback's all lock in that order."""

from __future__ import annotations

from kameng.orders.locks import order_lock
from kameng.orders.models import Order
from kameng.suppliers.models import TopupAttempt


def attempt_lock_with_order(*, attempt_id: int, order_id: int | None = None) -> tuple[Order, TopupAttempt]:
    """Lock the attempt's order (`order_id` when the caller knows it), then the attempt (in the caller's
    transaction)."""
    if order_id is None:
        order_id = TopupAttempt.objects.values_list("order_id", flat=True).get(pk=attempt_id)
    order = order_lock(order_id=order_id)
    attempt = TopupAttempt.objects.select_for_update().select_related("supplier").get(pk=attempt_id,
                                                                                       order_id=order_id)
    return order, attempt
