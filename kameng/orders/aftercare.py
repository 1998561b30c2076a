"""Aftercare: telling the apps that follow what buyers receive and get back once an order's money settles.

Two events matter to them: an order was delivered (the buyer has the goods, the money is the platform's) and an
order was refunded in part or in whole. Membership growth, points and the delivery e-mail listen; orders does not
know them. They are the dotted paths in `KAMENG_ORDER_AFTERCARE` (empty: nothing is sent and nothing costs), each a
callable `listener(*, order_ids: list[int], event: str) -> None`.

The order state machine registers every move into delivered, refunded or partially refunded here
(`kameng.orders.state.transition`), and the checkout writer a whole batch of orders delivered at checkout at once;
after the transaction commits, a task runs every listener (a sender thread per process publishes it, merging the
registrations that queued up meanwhile, so the committing thread — the checkout writer — never waits on the
broker). Delivery is at least once: a listener must be idempotent — read the order's current state and bring its
own records in line with it, never add a fixed delta per call.
"""

from __future__ import annotations

import atexit
import enum
import functools
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils.module_loading import import_string

from kameng.inventory.models import CardKey
from kameng.orders.models import Order

logger = logging.getLogger(__name__)


class AftercareEvent(enum.StrEnum):
    DELIVERED = "delivered"
    REFUNDED = "refunded"  # in part or in whole


class AftercareListener(Protocol):
    def __call__(self, *, order_ids: list[int], event: str) -> None: ...


_loaded: dict[tuple[str, ...], tuple[AftercareListener, ...]] = {}


def aftercare_listeners() -> tuple[AftercareListener, ...]:
    paths = tuple(settings.KAMENG_ORDER_AFTERCARE)
    listeners = _loaded.get(paths)
    if listeners is None:
        listeners = tuple(import_string(path) for path in paths)
        _loaded[paths] = listeners
    return listeners


def order_aftercare(*, order_ids: Iterable[int], event: AftercareEvent) -> None:
    """Tell the listeners about these orders once the current transaction commits: one task for the ids given
    (nothing if the transaction rolls back, and nothing at all when no listener is configured)."""
    if not settings.KAMENG_ORDER_AFTERCARE:
        return
    ids = sorted(set(order_ids))
    if ids:
        transaction.on_commit(functools.partial(_send, ids, event))


def _send(order_ids: list[int], event: AftercareEvent) -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        # Run in place: Celery's eager apply (task request, tracer, result, log line) costs ~0.6 ms of CPU a call,
        # and this runs in the checkout writer's thread after every batch (the demo, the tests, the benchmark).
        try:
            aftercare_run(order_ids=order_ids, event=str(event))
        except Exception:  # as the eager task would end: logged, the committed orders stand
            logger.exception("aftercare (%s) of %d orders failed", event, len(order_ids))
        return
    _sender().put(order_ids, str(event))


# Sending a task costs ~0.6 ms of CPU and round trips to the broker, and `on_commit` runs it in the committing
# thread: for a checkout batch the group-commit writer, so the batch's buyers and the next batch would wait for it
# (~10 ms a batch on a busy two-core server). One sender thread per process publishes instead; registrations that
# queue up meanwhile go out together, one task per event of at most SEND_MAX_IDS ids. Once woken, the sender
# gathers for KAMENG_ORDER_AFTERCARE_GATHER_SECONDS (or until SEND_MAX_IDS ids wait) before it publishes: a task
# costs the worker about as much as running its listeners on a dozen orders, and the listeners' statements cost
# per order about half at fifty orders a run than at ten. What is queued when the process exits is sent then; a
# process killed in between loses it, as a broker down would (the sweeps catch up).
SEND_MAX_IDS = 500


class _Sender:
    def __init__(self) -> None:
        self._queue: deque[tuple[list[int], str]] = deque()
        self._queued_ids = 0
        self._wakeup = threading.Condition()
        self._thread: threading.Thread | None = None

    def put(self, order_ids: list[int], event: str) -> None:
        with self._wakeup:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="kameng-aftercare-sender", daemon=True)
                self._thread.start()
            self._queue.append((order_ids, event))
            self._queued_ids += len(order_ids)
            self._wakeup.notify()

    def _take(self) -> list[tuple[list[int], str]]:
        pending = list(self._queue)
        self._queue.clear()
        self._queued_ids = 0
        return pending

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._queue:
                    self._wakeup.wait()
                gather = settings.KAMENG_ORDER_AFTERCARE_GATHER_SECONDS
                if gather > 0:
                    self._wakeup.wait_for(lambda: self._queued_ids >= SEND_MAX_IDS, timeout=gather)
                pending = self._take()
            _publish(pending)

    def flush(self) -> None:
        """Send what is queued now, in this thread (at exit; tests)."""
        with self._wakeup:
            pending = self._take()
        _publish(pending)


def _publish(pending: list[tuple[list[int], str]]) -> None:
    from kameng.orders.tasks import order_aftercare_run

    by_event: dict[str, list[int]] = {}
    for order_ids, event in pending:
        by_event.setdefault(event, []).extend(order_ids)
    for event, order_ids in by_event.items():
        ids = sorted(set(order_ids))
        for start in range(0, len(ids), SEND_MAX_IDS):
            part = ids[start:start + SEND_MAX_IDS]
            try:
                order_aftercare_run.delay(part, event)
            except Exception:  # a broker down must not fail a committed order; the listeners' own sweeps catch up
                logger.exception("could not enqueue aftercare (%s) of %d orders", event, len(part))


_senders: dict[int, _Sender] = {}
_senders_lock = threading.Lock()


def _sender() -> _Sender:
    # One per process: a server that forks its workers after import must not share the parent's (dead) thread.
    pid = os.getpid()
    sender = _senders.get(pid)
    if sender is None:
        with _senders_lock:
            sender = _senders.get(pid)
            if sender is None:
                sender = _senders[pid] = _Sender()
                atexit.register(sender.flush)
    return sender


def aftercare_run(*, order_ids: list[int], event: str,
                  listeners: Callable[[], tuple[AftercareListener, ...]] = aftercare_listeners) -> None:
    """Run every listener; one failing does not keep the others from running, and the error is raised at the end
    (the task retries, and idempotent listeners make the rerun harmless). `aftercare_orders` reads the orders once
    for all of them."""
    failed: BaseException | None = None
    outer = getattr(_run, "orders", None)
    _run.orders = {}  # this run's reads, by the ids asked for
    try:
        for listener in listeners():
            try:
                listener(order_ids=order_ids, event=event)
            except Exception as error:
                logger.exception("aftercare listener %r failed for %d orders (%s)", listener, len(order_ids), event)
                failed = error
    finally:
        _run.orders = outer
    if failed is not None:
        raise failed


@dataclass(frozen=True, slots=True)
class AftercareOrder:
    """What listeners decide on: an order's columns as read at the start of the run, and two facts about it."""

    id: int
    number: str
    buyer_id: int
    sku_id: int
    title: str
    quantity: int
    status: str
    total_amount: Decimal
    refunded_amount: Decimal
    delivered_at: datetime | None
    buyer_email: str
    holds_card_keys: bool  # any card key, the platform's or a supplier's
    holds_supplier_keys: bool  # a card key of some supplier


_run = threading.local()  # .orders: {ids: rows} while a run is on in this thread (a worker thread runs one at a time)

_COLUMNS = ("id", "number", "buyer_id", "sku_id", "title", "quantity", "status", "total_amount", "refunded_amount",
            "delivered_at")

# PostgreSQL: one plain statement (the ORM would spend more CPU compiling it than the database spends running it).
_ORDERS_SQL = """
SELECT o.id, o.number, o.buyer_id, o.sku_id, o.title, o.quantity, o.status, o.total_amount, o.refunded_amount,
       o.delivered_at, u.email,
       EXISTS (SELECT 1 FROM inventory_cardkey k WHERE k.order_id = o.id),
       EXISTS (SELECT 1 FROM inventory_cardkey k WHERE k.order_id = o.id AND k.supplier_id IS NOT NULL)
FROM orders_order o JOIN accounts_user u ON u.id = o.buyer_id
WHERE o.id = ANY(%s::bigint[])
ORDER BY o.id
"""


def aftercare_orders(order_ids: Iterable[int]) -> dict[int, AftercareOrder]:
    """The orders among `order_ids` that exist, by id (in id order), read in one statement. Inside `aftercare_run`
    the same ids are read once for every listener; outside one, every call reads."""
    ids = tuple(sorted(set(order_ids)))
    reads: dict[tuple[int, ...], dict[int, AftercareOrder]] | None = getattr(_run, "orders", None)
    if reads is not None and ids in reads:
        return reads[ids]
    orders = _orders_read(ids) if ids else {}
    if reads is not None:
        reads[ids] = orders
    return orders


def _orders_read(ids: tuple[int, ...]) -> dict[int, AftercareOrder]:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_ORDERS_SQL, [list(ids)])
            rows = cursor.fetchall()
    else:
        rows = list(Order.objects.filter(pk__in=ids).order_by("pk").annotate(
            holds_card_keys=Exists(CardKey.objects.filter(order_id=OuterRef("pk"))),
            holds_supplier_keys=Exists(CardKey.objects.filter(order_id=OuterRef("pk"), supplier__isnull=False)),
        ).values_list(*_COLUMNS, "buyer__email", "holds_card_keys", "holds_supplier_keys"))
    return {pk: AftercareOrder(id=pk, number=number, buyer_id=buyer_id, sku_id=sku_id, title=title, quantity=quantity,
                               status=status, total_amount=total_amount, refunded_amount=refunded_amount,
                               delivered_at=delivered_at, buyer_email=email or "", holds_card_keys=bool(keys),
                               holds_supplier_keys=bool(supplier_keys))
            for (pk, number, buyer_id, sku_id, title, quantity, status, total_amount, refunded_amount, delivered_at,
                 email, keys, supplier_keys) in rows}

