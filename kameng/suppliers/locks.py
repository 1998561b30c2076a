"""The one place suppliers' rows are locked. A direct top-up's outcome takes its order first (kameng.orders.locks),
then the attempt (many at once: the orders in id order, then the attempts in id order): the fulfiller, the
submit's outcome, a query's and a callback's all lock in that order."""

from __future__ import annotations

from collections.abc import Sequence

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


# What writing an answer reads of an order (anything else is loaded if touched): not the buyer's input, which
# costs a decryption per order on loading, nor the price lines (JSON).
ORDER_COLUMNS_READ = ("id", "number", "buyer_id", "sku_id", "title", "quantity", "unit_price", "total_amount",
                      "refunded_amount", "status", "delivered_at", "updated_at")


def attempts_lock_with_orders(*, pairs: Sequence[tuple[int, int | None]]) -> tuple[dict[int, Order],
                                                                                  dict[int, TopupAttempt]]:
    """Lock the orders of many attempts, in id order, then the attempts, in id order (in the caller's
    transaction); `pairs` are (attempt id, its order id or None when the caller does not know it). Returns the
    orders and the attempts by id. Two batches, or a batch and a single path, take the same locks in the same
    order: an order before its attempts, lower ids first."""
    known = {attempt_id: order_id for attempt_id, order_id in pairs if order_id is not None}
    unknown = [attempt_id for attempt_id, order_id in pairs if order_id is None and attempt_id not in known]
    if unknown:
        known.update(TopupAttempt.objects.filter(pk__in=unknown).values_list("pk", "order_id"))
    order_ids = sorted(set(known.values()))
    if len(order_ids) == 1:
        orders = {order_ids[0]: order_lock(order_id=order_ids[0])}
    else:
        orders = {order.pk: order for order in
                  Order.objects.select_for_update().filter(pk__in=order_ids).only(*ORDER_COLUMNS_READ)
                  .order_by("pk")}
    attempts = {attempt.pk: attempt for attempt in
                TopupAttempt.objects.select_for_update().filter(pk__in=sorted(known), order_id__in=order_ids)
                .order_by("pk")}
    missing = [attempt_id for attempt_id, _ in pairs if attempt_id not in attempts]
    if missing:
        raise TopupAttempt.DoesNotExist(f"top-up attempts {missing} not found (or not of the order named)")
    return orders, attempts
