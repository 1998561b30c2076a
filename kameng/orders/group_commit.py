"""Group commit of wallet-paid card-key checkouts on PostgreSQL: checkouts that arrive together share a transaction.

A checkout alone costs PostgreSQL a transaction of its own: BEGIN, nine statements, COMMIT and a WAL flush, most of
the database's work per order. Here the request threads of one server process hand their checkout to one writer
thread, which takes everything queued since its last commit (up to `KAMENG_CHECKOUT_GROUP_MAX` orders) and writes
it with set-based statements — one INSERT for the orders, one claim per SKU, one INSERT for the events, one for
the journals and their entries, then the wallets locked in id order and moved by one guarded UPDATE — in one
transaction, nine statements whatever the batch size. The guards are the single path's: keys are taken only while
`available` (skipping rows others hold), a wallet never goes below zero, one order per (buyer, request_id), one
journal per order number. The database stays the source of truth.

Whatever a batch cannot settle for a checkout goes back to its request thread, which runs it through the single
path and so gives the exact answer it always gave: a replayed request id (the first order, 200), a wallet short
of the total (rolled back, the rest of the batch retried without that wallet's orders), stock short for a SKU
(the same, without that SKU's orders), a SKU not on sale or a quantity out of bounds, or any database error before
COMMIT. An error during COMMIT itself is answered as an error: the batch may or may not have landed, and only a
replay with the same request id can tell.

The writer is a daemon thread per process, started on first use (after a server forks its workers), with its own
database connection. Request threads wait on an event; the writer never waits for a new arrival, so a checkout is
delayed by at most the batch before it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.utils import timezone

from kameng.catalog.models import Sku
from kameng.core.errors import ApplicationError
from kameng.core.sql import json_rows
from kameng.inventory.services import card_keys_claim_many, decrypt_secrets
from kameng.ledger.models import AccountKind, JournalKind
from kameng.ledger.services import (
    InsufficientFundsManyError,
    JournalDraft,
    credit,
    debit,
    journal_post_many,
    system_account_id,
    wallet_account_id,
)
from kameng.orders.models import Order
from kameng.orders.services import (
    CheckoutResult,
    Timeline,
    checkout_validate,
    order_inserted,
    order_payment_memo,
    paid_checkout_drafts,
    skus_for_checkout,
)

logger = logging.getLogger(__name__)


def group_commit_enabled() -> bool:
    return bool(settings.KAMENG_CHECKOUT_GROUP_COMMIT) and connection.vendor == "postgresql"


@dataclass(eq=False)
class _Checkout:
    """One request thread's checkout, waiting for its batch."""

    buyer_id: int
    wallet_id: int
    sku_id: int
    quantity: int
    request_id: str | None
    done: threading.Event = field(default_factory=threading.Event)
    order: Order | None = None  # set when the batch wrote it; None with `done` set: run it singly
    ciphertexts: list[bytes] = field(default_factory=list)
    error: BaseException | None = None


def checkout_grouped(*, buyer_id: int, sku_id: int, quantity: int, request_id: str | None) -> CheckoutResult | None:
    """Queue a wallet checkout for this process's writer and wait for its batch.

    Returns the delivered order, or None when the batch left it to the single path (`order_checkout` runs it).
    """
    checkout = _Checkout(buyer_id=buyer_id, wallet_id=wallet_account_id(user_id=buyer_id), sku_id=sku_id,
                         quantity=quantity, request_id=request_id)
    writer = _writer()
    writer.submit(checkout)
    if not checkout.done.wait(settings.KAMENG_CHECKOUT_GROUP_WAIT_SECONDS):
        if writer.withdraw(checkout):
            raise ApplicationError("系统繁忙，订单未生成，未扣款，请稍后重试", code="checkout_busy", status_code=503)
        # The writer has it: it may commit after this answer, so only a replay can tell (or "my orders").
        raise ApplicationError("下单处理超时：订单可能已经生成，请用同一 request_id 重新提交以查询结果，"
                               "或在「我的订单」中查看", code="checkout_timeout", status_code=503)
    if checkout.error is not None:
        raise checkout.error
    if checkout.order is None:
        return None
    return CheckoutResult(order=checkout.order, created=True, secrets=decrypt_secrets(checkout.ciphertexts))


class _Rollback(Exception):  # noqa: N818 - a control-flow signal inside the writer, never raised to callers
    """Undo the batch and write it again without `culprits` (they go to the single path)."""

    def __init__(self, culprits: Iterable[_Checkout]) -> None:
        super().__init__()
        self.culprits = list(culprits)


class _Writer:
    def __init__(self) -> None:
        self._queue: deque[_Checkout] = deque()
        self._wakeup = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def submit(self, checkout: _Checkout) -> None:
        with self._wakeup:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="kameng-checkout-writer", daemon=True)
                self._thread.start()
            self._queue.append(checkout)
            self._wakeup.notify()

    def withdraw(self, checkout: _Checkout) -> bool:
        """Take a checkout back if the writer has not picked it up yet (then it will never be written)."""
        with self._wakeup:
            try:
                self._queue.remove(checkout)
            except ValueError:
                return False
            return True

    def stop(self) -> None:
        """Let the writer finish what is queued, close its connection and end (tests; a server just exits)."""
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=settings.KAMENG_CHECKOUT_GROUP_WAIT_SECONDS)

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            connection.close()

    def _loop(self) -> None:
        while True:
            with self._wakeup:
                while not self._queue and not self._stopping:
                    self._wakeup.wait()
                if not self._queue:
                    self._thread = None
                    self._stopping = False
                    return
                limit = settings.KAMENG_CHECKOUT_GROUP_MAX
                batch = [self._queue.popleft() for _ in range(min(limit, len(self._queue)))]
            try:
                write_batch(batch)
            except BaseException as error:  # the writer must outlive any batch
                logger.exception("checkout batch failed outside its transaction")
                _fail(batch, error)


_writers: dict[int, _Writer] = {}
_writers_lock = threading.Lock()


def _writer() -> _Writer:
    # One per process: a server that forks its workers after import must not share the parent's (dead) thread.
    pid = os.getpid()
    writer = _writers.get(pid)
    if writer is None:
        with _writers_lock:
            writer = _writers.setdefault(pid, _Writer())
    return writer


def writer_stop() -> None:
    """Stop this process's writer, if it runs, and close its database connection."""
    writer = _writers.get(os.getpid())
    if writer is not None:
        writer.stop()


def write_batch(batch: list[_Checkout]) -> None:
    """Write the batch in as few transactions as its culprits need (one, normally); settle every checkout in it."""
    todo = batch
    try:
        close_old_connections()  # what a request does first: drop a connection that broke or aged out
        skus = skus_for_checkout(sorted({checkout.sku_id for checkout in batch}))
        todo = _drop_invalid(batch, skus)
        while todo:
            try:
                _write(todo, skus, timezone.now())
                return
            except _Rollback as rollback:
                _run_singly(rollback.culprits)
                culprits = set(rollback.culprits)
                todo = [checkout for checkout in todo if checkout not in culprits]
    except _CommitFailed as failure:
        logger.error("COMMIT of a checkout batch of %d failed; its outcome is unknown", len(todo))
        _fail(todo, failure.error)
    except Exception:
        logger.warning("checkout batch of %d rolled back; each runs alone", len(todo), exc_info=True)
        connection.close_if_unusable_or_obsolete()
        _run_singly(checkout for checkout in todo if not checkout.done.is_set())  # never one already answered


class _CommitFailed(Exception):  # noqa: N818 - carries the error of a COMMIT whose outcome is unknown
    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def _drop_invalid(batch: list[_Checkout], skus: dict[int, Sku]) -> list[_Checkout]:
    """Leave to the single path what it must refuse (SKU not on sale, quantity out of bounds): it says why."""
    valid = []
    for checkout in batch:
        if _is_allowed(skus.get(checkout.sku_id), checkout.quantity):
            valid.append(checkout)
        else:
            _run_singly([checkout])
    return valid


def _is_allowed(sku: Sku | None, quantity: int) -> bool:
    if sku is None:
        return False
    try:
        checkout_validate(sku, quantity)
    except ApplicationError:
        return False
    return True


def _run_singly(checkouts: Iterable[_Checkout]) -> None:
    for checkout in checkouts:
        checkout.order = None
        checkout.done.set()


def _fail(checkouts: Iterable[_Checkout], error: BaseException) -> None:
    """Answer with `error` every checkout of the batch not answered yet."""
    for checkout in checkouts:
        if not checkout.done.is_set():
            checkout.error = error
            checkout.done.set()


def _write(todo: list[_Checkout], skus: dict[int, Sku], now: datetime) -> None:
    orders, timeline = paid_checkout_drafts(
        [(skus[checkout.sku_id], checkout.buyer_id, checkout.quantity, checkout.request_id) for checkout in todo],
        now)
    drafts = dict(zip(todo, orders, strict=True))
    committing = False
    try:
        with transaction.atomic():
            written = _orders_insert(drafts, now)
            replays = [checkout for checkout in todo if checkout not in written]
            claimed = _claim(written, drafts)
            _events_insert([drafts[checkout].pk for checkout in written], timeline, now)
            _payments_post(written, drafts)
            committing = True
    except IntegrityError:
        raise  # a constraint checked at COMMIT (deferred foreign keys) rolls the whole transaction back, surely
    except Exception as error:
        if committing:
            raise _CommitFailed(error) from error
        raise
    for checkout in written:
        checkout.order = drafts[checkout]
        checkout.ciphertexts = [secret for _, secret in claimed[checkout.order.pk]]
        checkout.done.set()
    _run_singly(replays)  # after COMMIT: the single path finds the first order and answers with it


_ORDERS_INSERT_SQL = """
INSERT INTO orders_order (number, buyer_id, sku_id, title, quantity, unit_price, total_amount, status, request_id,
                          created_at, expires_at, paid_at, delivered_at, updated_at)
SELECT o.number, o.buyer_id, o.sku_id, o.title, o.quantity, o.unit_price, o.total_amount, %(status)s, o.request_id,
       %(now)s, NULL, %(now)s, %(now)s, %(now)s
FROM json_to_recordset(%(orders)s::json) AS o(number text, buyer_id bigint, sku_id bigint, title text,
                                               quantity integer, unit_price numeric, total_amount numeric,
                                               request_id text)
ORDER BY o.buyer_id, o.request_id
ON CONFLICT (buyer_id, request_id) DO NOTHING
RETURNING id, number
"""


def _orders_insert(drafts: dict[_Checkout, Order], now: datetime) -> list[_Checkout]:
    """Insert every order; a (buyer, request_id) already taken is skipped, and so is its checkout (a replay)."""
    orders = list(drafts.values())
    with connection.cursor() as cursor:
        cursor.execute(_ORDERS_INSERT_SQL, {"status": str(orders[0].status), "now": now, "orders": json_rows(
            {"number": order.number, "buyer_id": order.buyer_id, "sku_id": order.sku_id, "title": order.title,
             "quantity": order.quantity, "unit_price": str(order.unit_price),
             "total_amount": str(order.total_amount), "request_id": order.request_id}
            for order in orders)})
        ids = {number: pk for pk, number in cursor.fetchall()}
    written = []
    for checkout, order in drafts.items():
        if order.number in ids:
            order_inserted(order, pk=ids[order.number], now=now)
            written.append(checkout)
    return written


def _claim(written: list[_Checkout], drafts: dict[_Checkout, Order]) -> dict[int, list[tuple[int, bytes]]]:
    by_sku: dict[int, list[_Checkout]] = defaultdict(list)
    for checkout in written:
        by_sku[checkout.sku_id].append(checkout)
    claimed: dict[int, list[tuple[int, bytes]]] = {}
    for sku_id in sorted(by_sku):
        group = by_sku[sku_id]
        keys = card_keys_claim_many(sku_id=sku_id, wants=[(drafts[checkout].pk, checkout.quantity)
                                                          for checkout in group])
        if keys is None:
            raise _Rollback(group)  # stock is short: the single path serves them one by one, "sold out" exactly
        claimed.update(keys)
    return claimed


_EVENTS_INSERT_SQL = """
INSERT INTO orders_orderevent (order_id, from_status, to_status, kind, params, created_at)
SELECT o.order_id, e.from_status, e.to_status, e.kind, e.params, %(now)s
FROM json_to_recordset(%(orders)s::json) AS o(position integer, order_id bigint)
CROSS JOIN json_to_recordset(%(timeline)s::json) AS e(step integer, from_status text, to_status text, kind text,
                                                      params jsonb)
ORDER BY o.position, e.step
"""


def _events_insert(order_ids: list[int], timeline: Timeline, now: datetime) -> None:
    """Every order's timeline, in order (event ids ascend along each timeline, as the single path writes them)."""
    with connection.cursor() as cursor:
        cursor.execute(_EVENTS_INSERT_SQL, {
            "now": now,
            "orders": json_rows({"position": position, "order_id": order_id}
                                for position, order_id in enumerate(order_ids)),
            "timeline": json_rows({"step": step, "from_status": from_status, "to_status": to_status, "kind": kind,
                                   "params": params}
                                  for step, (from_status, to_status, kind, params) in enumerate(timeline)),
        })


def _payments_post(written: list[_Checkout], drafts: dict[_Checkout, Order]) -> None:
    revenue_id = system_account_id(kind=AccountKind.PLATFORM_REVENUE)
    journals = []
    for checkout in written:
        order = drafts[checkout]
        journals.append(JournalDraft(
            kind=JournalKind.ORDER_PAYMENT, reference=order.number, memo=order_payment_memo(order),
            legs=[debit(checkout.wallet_id, order.total_amount), credit(revenue_id, order.total_amount)]))
    try:
        journal_post_many(journals)
    except InsufficientFundsManyError as short:
        raise _Rollback(checkout for checkout in written if checkout.wallet_id in short.account_ids) from short
