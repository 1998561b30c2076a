"""Fulfilment of paid orders by delivery kind: one fulfiller per kind, dispatched from here only.

- `card_key`: synchronous. The keys are claimed with the order (sold at once when paid from the wallet, reserved
  and then sold when an unpaid order is paid); a paid order that could not get them is refunded to the wallet —
  unless an upstream supplier can sell them (kameng.orders.upstream): then the order is held and fulfilled later,
  as a direct top-up is.
- `manual`: asynchronous. A paid order's money is held in the ledger's orders-in-progress account; after commit the
  `fulfil_order` task moves it `paid → fulfilling` (待发货 for staff), and staff then mark it delivered with a note
  the buyer reads (the money goes to revenue) or fail it (the money goes back to the wallet, exactly once).
- `direct_topup`: asynchronous, held like manual orders. Orders may not import the suppliers (layers): its fulfiller
  is named by the `KAMENG_FULFILLERS` setting (dotted paths by delivery kind, merged over `FULFILLERS`), by default
  `kameng.suppliers.topup.order_fulfil_direct_topup`, which routes the order to a supplier and hands the top-up to
  the supplier dispatcher after commit; the outcome (delivered, failed over, refunded) is written by the suppliers.

The sweeper (`orders_redrive_stuck`) re-drives paid orders whose task was lost. `orders_fulfil` does the task's
work for many orders in one transaction: the `fulfil_orders` task, sent for the orders committed together
(kameng.orders.fulfilment_queue).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from kameng.catalog.models import DeliveryKind, Sku
from kameng.core.errors import ApplicationError, ConflictError
from kameng.core.sql import rows_insert, rows_update
from kameng.inventory.services import (
    SoldOutError,
    card_keys_claim,
    card_keys_return_undelivered,
    card_keys_sell_reserved,
)
from kameng.ledger import recipes
from kameng.ledger.services import JournalDraft, journal_draft_post, wallet_account_id
from kameng.orders.checkout import order_payment_memo
from kameng.orders.events import fact
from kameng.orders.locks import order_lock
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.orders.state import transition
from kameng.orders.upstream import card_key_upstream, order_money_held

logger = logging.getLogger(__name__)

DELIVERY_NOTE_MAX = 2000

Fulfiller = Callable[[Order], list[OrderEvent]]


def _delivery_kind(order: Order) -> str:
    return str(order.sku.product.delivery_kind)


AWAITING_STAFF = frozenset({OrderStatus.PAID, OrderStatus.FULFILLING})


def order_awaits_staff(*, order: Order) -> bool:
    """Whether the order is paid and waits for staff to deliver it by hand (the back office's 发货处理, the buyer's
    等待人工发货). A direct top-up never does: its supplier's answer settles it."""
    return order.status in AWAITING_STAFF and _delivery_kind(order) == DeliveryKind.MANUAL


def is_fulfilled_later(delivery_kind: str) -> bool:
    """Whether a paid order of this kind is fulfilled after payment (its money held until then)."""
    return delivery_kind != DeliveryKind.CARD_KEY


def order_payment_journal(order: Order, *, delivery_kind: str) -> JournalDraft:
    """What paying this order from its buyer's wallet posts: into revenue when it was delivered with the payment
    (card keys from stock), else into the hold until delivery (other kinds, and card keys waiting for an
    upstream: kameng.orders.upstream)."""
    delivered = not is_fulfilled_later(delivery_kind) and order.status == OrderStatus.DELIVERED
    recipe = recipes.order_payment if delivered else recipes.order_payment_into_hold
    return recipe(order_number=order.number, memo=order_payment_memo(order),
                  wallet_id=wallet_account_id(user_id=order.buyer_id), amount=order.total_amount)


def _fulfil_card_keys(order: Order) -> list[OrderEvent]:
    """Deliver a paid order from its reserved keys, topping up from stock if some were withdrawn or taken over.
    Stock short: the whole order goes to an upstream when one can take it (kameng.orders.upstream; the keys sold
    here go back to stock), else it fails. An order already waiting for its upstream is left to it."""
    if order.status == OrderStatus.FULFILLING:
        return []
    sold = card_keys_sell_reserved(order_id=order.pk)
    if sold < order.quantity:
        try:
            with transaction.atomic():
                card_keys_claim(sku_id=order.sku_id, order_id=order.pk, quantity=order.quantity - sold, sell=True,
                                unit_price=order.unit_price)
        except SoldOutError:
            upstream = card_key_upstream()
            if upstream is not None and upstream.is_available(order):
                card_keys_return_undelivered(order_id=order.pk)
                return upstream.fulfil(order)
            return [transition(order, OrderStatus.DELIVERY_FAILED, said=fact(OrderEventKind.OUT_OF_STOCK))]
    order.delivered_at = timezone.now()
    if order_money_held(order, delivery_kind=DeliveryKind.CARD_KEY):  # paid while waiting for an upstream
        journal_draft_post(draft=recipes.order_hold_released(
            order_number=order.number, memo=f"卡密发货确认收入 {order.title}"[:200], amount=order.total_amount))
    return [transition(order, OrderStatus.DELIVERED)]


def _fulfil_manually(order: Order) -> list[OrderEvent]:
    """Queue the order for staff (待发货); an order already queued waits for them."""
    if order.status == OrderStatus.FULFILLING:
        return []
    return [transition(order, OrderStatus.FULFILLING, said=fact(OrderEventKind.FULFILLING_MANUALLY))]


FULFILLERS: dict[str, Fulfiller] = {
    DeliveryKind.CARD_KEY: _fulfil_card_keys,
    DeliveryKind.MANUAL: _fulfil_manually,
}


_configured: dict[tuple[tuple[str, str], ...], dict[str, Fulfiller]] = {}


def fulfillers() -> dict[str, Fulfiller]:
    """`FULFILLERS` with the ones named in `KAMENG_FULFILLERS` (delivery kind → dotted path) over them."""
    paths = tuple(sorted(getattr(settings, "KAMENG_FULFILLERS", {}).items()))
    merged = _configured.get(paths)
    if merged is None:
        merged = {**FULFILLERS, **{kind: import_string(path) for kind, path in paths}}
        _configured[paths] = merged
    return merged


def order_fulfil_paid(order: Order) -> list[OrderEvent]:
    """Run the order's fulfiller on a locked, paid order (in the caller's transaction); the unsaved events."""
    fulfiller = fulfillers().get(_delivery_kind(order))
    if fulfiller is None:
        raise ApplicationError("该发货方式暂未开放", code="delivery_kind_unsupported")
    return fulfiller(order)


def order_fulfilment_enqueue(*, order_id: int) -> None:
    """Hand a paid order fulfilled later to the worker (after commit), in a `fulfil_orders` batch with the orders
    committed with it (kameng.orders.fulfilment_queue); the sweeper re-drives it if this is lost."""
    from kameng.orders.fulfilment_queue import orders_fulfilment_enqueue

    orders_fulfilment_enqueue(order_ids=[order_id])


def order_fulfil(*, order_id: int) -> Order:
    """Move a paid order on (the task, and the sweeper); a card-key order that cannot be filled is refunded.
    Idempotent: an order already past paid is left alone, a manual one waiting for staff too."""
    with transaction.atomic():
        order = order_lock(order_id=order_id)
        if order.status not in (OrderStatus.PAID, OrderStatus.FULFILLING):
            return order
        events = order_fulfil_paid(order)
        if order.status == OrderStatus.DELIVERY_FAILED:
            events += order_refund_failed_delivery(order)
        if events:
            order.save(update_fields=["status", "delivered_at", "refunded_amount", "updated_at"])
            OrderEvent.objects.bulk_create(events)
    return order


def orders_fulfil(*, order_ids: list[int]) -> int:
    """`order_fulfil` for many orders in one transaction (a batch of the fulfilment task's work): the orders locked
    in id order (their SKUs and products read once for the batch), each fulfiller run in turn as for one order,
    then the writes set-based: what the fulfillers deferred to the batch's end (`batch_defer`: direct top-ups'
    attempts, one INSERT), the orders that moved (one UPDATE on PostgreSQL) and their events (one INSERT). The
    fulfillers may memoise what is the same for every order of the batch (`batch_memo()`: direct top-ups route each
    SKU once). Returns how many orders moved; orders past paid are left alone, as `order_fulfil` leaves them."""
    moved: list[Order] = []
    events: list[OrderEvent] = []
    with transaction.atomic(), fulfilment_batch():
        for order in _orders_lock_with_skus(sorted(set(order_ids))):
            if order.status not in (OrderStatus.PAID, OrderStatus.FULFILLING):
                continue
            mine = order_fulfil_paid(order)
            if order.status == OrderStatus.DELIVERY_FAILED:
                mine += order_refund_failed_delivery(order)
            if mine:
                moved.append(order)
                events += mine
        batch_flush()
        _orders_write(moved, events)
    return len(moved)


ORDER_FULFILMENT_FIELDS = ["status", "delivered_at", "refunded_amount", "updated_at"]


# Not read by the fulfillers (loaded if touched): the price lines are JSON, the note text.
ORDER_COLUMNS_UNREAD = ("price_lines", "delivery_note")


def _orders_lock_with_skus(order_ids: list[int]) -> list[Order]:
    """The orders locked in id order, each with its SKU and product (one object per SKU, read in one query)."""
    if connection.vendor != "postgresql":
        # Only the orders are locked where the database can say so (not MariaDB: there the SKU rows are too).
        of = ("self",) if connection.features.has_select_for_update_of else ()
        return list(Order.objects.select_for_update(of=of).select_related("sku__product")
                    .filter(pk__in=order_ids).order_by("pk"))
    orders = list(Order.objects.select_for_update().filter(pk__in=order_ids).defer(*ORDER_COLUMNS_UNREAD)
                  .order_by("pk"))
    skus = {sku.pk: sku for sku in Sku.objects.select_related("product").filter(
        pk__in=sorted({order.sku_id for order in orders}))}
    for order in orders:
        Order.sku.field.set_cached_value(order, skus[order.sku_id])
    return orders


def _orders_write(orders: list[Order], events: list[OrderEvent]) -> None:
    """The batch's moved orders and their events: one UPDATE and one INSERT on PostgreSQL, the ORM elsewhere."""
    if connection.vendor != "postgresql":
        for order in orders:
            order.save(update_fields=ORDER_FULFILMENT_FIELDS)
        OrderEvent.objects.bulk_create(events)
        return
    now = timezone.now()
    for order in orders:
        order.updated_at = now
    rows_update(Order, orders, ORDER_FULFILMENT_FIELDS)
    rows_insert(OrderEvent, events)


_batch = threading.local()
Deferred = dict[str, tuple[Callable[[list[Any]], None], list[Any]]]


@contextmanager
def fulfilment_batch() -> Iterator[dict[object, object]]:
    """A memo shared by the fulfillers for the length of one batch (`batch_memo()` inside it), and the writes they
    defer to its end (`batch_defer`): written by `batch_flush()`, or when the outermost batch ends without error
    (inside the caller's transaction)."""
    outer = getattr(_batch, "memo", None)
    outer_deferred = getattr(_batch, "deferred", None)
    _batch.memo = {} if outer is None else outer
    _batch.deferred = {} if outer_deferred is None else outer_deferred
    try:
        yield _batch.memo
        if outer is None:
            batch_flush()
    finally:
        _batch.memo = outer
        _batch.deferred = outer_deferred


def batch_memo() -> dict[object, object] | None:
    """The memo of the batch being fulfilled in this thread, None outside a batch."""
    return getattr(_batch, "memo", None)


def batch_defer(name: str, write: Callable[[list[Any]], None]) -> list[Any] | None:
    """The list of rows a fulfiller defers to the end of this thread's batch, written then by `write(rows)` in one
    go (in the batch's transaction, before the orders and their events); None outside a batch: write them now."""
    deferred: Deferred | None = getattr(_batch, "deferred", None)
    if deferred is None:
        return None
    if name not in deferred:
        deferred[name] = (write, [])
    return deferred[name][1]


def batch_flush() -> None:
    """Write what the fulfillers deferred so far in this thread's batch (each kind in one go)."""
    deferred: Deferred | None = getattr(_batch, "deferred", None)
    if not deferred:
        return
    pending = list(deferred.values())
    deferred.clear()
    for write, rows in pending:
        if rows:
            write(rows)


def order_refund_failed_delivery(order: Order) -> list[OrderEvent]:
    """The whole total of an order that failed delivery (locked, just moved to DELIVERY_FAILED by the caller) back
    to the wallet, from wherever its money sits; the caller saves the order and the events returned."""
    card_keys_return_undelivered(order_id=order.pk)
    memo = f"发货失败退款 {order.title}"[:200]
    if order_money_held(order, delivery_kind=_delivery_kind(order)):
        journal = recipes.order_hold_refunded(order_number=order.number, memo=memo, buyer_id=order.buyer_id,
                                              amount=order.total_amount)
    else:
        journal = recipes.order_refund_to_wallet(reference=order.number, memo=memo, buyer_id=order.buyer_id,
                                                 amount=order.total_amount)
    journal_draft_post(draft=journal)
    order.refunded_amount = order.total_amount
    said = fact(OrderEventKind.DELIVERY_FAILED_REFUNDED, amount=order.total_amount)
    return [transition(order, OrderStatus.REFUNDED, said=said)]


def _locked_awaiting_staff(order_id: int) -> Order:
    order = order_lock(order_id=order_id)
    if _delivery_kind(order) != DeliveryKind.MANUAL or order.status not in (OrderStatus.PAID, OrderStatus.FULFILLING):
        raise ConflictError("订单状态为「%(status)s」，不是待人工发货的订单", code="not_awaiting_delivery",
                            params={"status": order.get_status_display()})
    return order


def order_deliver_manually(*, order_id: int, note: str) -> Order:
    """Staff delivered a manual order: the note is shown to the buyer, the held money goes to revenue."""
    note = note.strip()
    if not note:
        raise ApplicationError("请填写发货说明（买家会在订单页看到）", code="delivery_note_required")
    if len(note) > DELIVERY_NOTE_MAX:
        raise ApplicationError("发货说明最多 %(max)s 字", code="delivery_note_too_long",
                               params={"max": DELIVERY_NOTE_MAX})
    with transaction.atomic():
        order = _locked_awaiting_staff(order_id)
        events = [] if order.status == OrderStatus.FULFILLING else [transition(order, OrderStatus.FULFILLING)]
        # The note itself is on the order (the page shows it in full); the timeline points to it.
        events.append(transition(order, OrderStatus.DELIVERED, said=fact(OrderEventKind.DELIVERED_MANUALLY)))
        order.delivered_at = timezone.now()
        order.delivery_note = note
        journal_draft_post(draft=recipes.order_hold_released(
            order_number=order.number, memo=f"发货确认收入 {order.title}"[:200], amount=order.total_amount))
        order.save(update_fields=["status", "delivered_at", "delivery_note", "updated_at"])
        OrderEvent.objects.bulk_create(events)
    return order


def order_fail_delivery(*, order_id: int, reason: str) -> Order:
    """Staff could not deliver a manual order: it fails and its whole total goes back to the buyer's wallet."""
    reason = reason.strip()[:200]
    if not reason:
        raise ApplicationError("请填写无法发货的原因（买家会在订单页看到）", code="failure_reason_required")
    with transaction.atomic():
        order = _locked_awaiting_staff(order_id)
        failed = fact(OrderEventKind.DELIVERY_FAILED, reason=reason)
        events = [transition(order, OrderStatus.DELIVERY_FAILED, said=failed)]
        events += order_refund_failed_delivery(order)
        order.save(update_fields=["status", "refunded_amount", "updated_at"])
        OrderEvent.objects.bulk_create(events)
    return order


def orders_redrive_stuck(*, older_than_seconds: int | None = None, limit: int = 200) -> int:
    """Re-drive orders paid but not moved on for too long (a crash, a lost task). Manual orders waiting for staff
    are not stuck. Returns how many it touched."""
    age = older_than_seconds if older_than_seconds is not None else settings.KAMENG_SWEEP_STUCK_AFTER_SECONDS
    stuck = list(
        Order.objects.filter(updated_at__lte=timezone.now() - timedelta(seconds=age))
        .filter(status=OrderStatus.PAID)
        .order_by("pk").values_list("pk", flat=True)[:limit]
    )
    for order_id in stuck:
        try:
            order_fulfil(order_id=order_id)
        except Exception:  # one broken order must not stop the sweep of the others
            logger.exception("re-driving order %s failed", order_id)
    return len(stuck)
