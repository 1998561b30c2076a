"""Group commit of wallet-paid card-key checkouts on PostgreSQL: checkouts that arrive together share a transaction.

A checkout alone costs PostgreSQL a transaction of its own: BEGIN, nine statements, COMMIT and a WAL flush, most of
the database's work per order. Here the request threads of one server process hand their checkout to one writer
thread, which takes everything queued since its last commit (up to `KAMENG_CHECKOUT_GROUP_MAX` orders) and writes
it with set-based statements — one INSERT for the orders and their events, one claim per SKU, one statement for the
journals, their entries and the wallets (locked in id order, moved by one guarded UPDATE) — in one transaction,
whatever the batch size. With the SKUs read in the last second (`skus_for_sale_recent`) and the orders' ids taken
ahead, no statement needs another's answer: the whole transaction, a guard and COMMIT go as one message, so a batch
waits for PostgreSQL once (`kameng.orders.checkout.drafts_write_at_once`; a batch the guard refuses is written
again with its answers read before COMMIT). Each wait matters more than its CPU: under load the writer thread then
waits for the GIL held by the request threads (bench/README.md). The guards are the single
path's: keys are taken only while `available` (skipping rows others hold), a wallet never goes below zero, one
order per (buyer, request_id), one journal per order number. The database stays the source of truth.

Whatever a batch cannot settle for a checkout goes back to its request thread, which runs it through the single
path and so gives the exact answer it always gave: a replayed request id (the first order, 200), a wallet short
of the total (rolled back, the rest of the batch retried without that wallet's orders), stock short for a SKU
(the same, without that SKU's orders; but when the batch took no key of it and proved that the single path would
answer each of them "sold out" — nothing sellable, nothing to take over, no upstream: `checkout_sold_out_proven` —
they are answered so at once, the SKU remembered as sold out), a SKU not on sale or a quantity out of bounds, or
any database error before COMMIT. An error during COMMIT itself is answered as an error: the batch may or may not
have landed, and only a replay with the same request id can tell.

The rows themselves are drafted and written by `kameng.orders.checkout` (`checkout_draft`, `drafts_write`), the same
code the single path runs for a batch of one; this module owns only the batching: the writer thread, the culprits,
the retries. The purchase service chooses it explicitly (`order_checkout(batched=True)`) for wallet payments.

The writer is a daemon thread per process (KAMENG_CHECKOUT_GROUP_WRITERS of them, one by default, sharing the
queue), started on first use (after a server forks its workers), each with its own database connection. Request
threads wait on an event. A checkout that comes alone is written at once. When checkouts come together (the batch
before held more than one, or more than one is waiting), the writer lets more come for
KAMENG_CHECKOUT_GROUP_GATHER_SECONDS (or until a batch is full) before it takes them: a bigger batch costs less per
order in the writer and in PostgreSQL, and request threads parked meanwhile leave the GIL to the others
(bench/README.md), so under load the wait is repaid in throughput.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.utils import timezone

from kameng.catalog.models import DeliveryKind
from kameng.catalog.pricing import PriceQuote, price_rules_warm, sku_price
from kameng.catalog.selectors import SkuForSale, skus_for_sale_recent
from kameng.core.errors import ApplicationError
from kameng.inventory.services import SoldOutError, card_keys_sold_out_error, decrypt_secrets
from kameng.ledger.services import InsufficientFundsManyError, wallet_account_id
from kameng.orders.checkout import (
    CheckoutDraft,
    CommitUnknownError,
    StockShortError,
    checkout_draft,
    checkout_validate,
    drafts_at_once,
    drafts_write,
    drafts_write_at_once,
)
from kameng.orders.models import Order
from kameng.orders.services import CheckoutResult

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
    sales_channel: str = "storefront"
    client_ip: str = ""
    done: threading.Event = field(default_factory=threading.Event)
    order: Order | None = None  # set when the batch wrote it; None with `done` set: run it singly
    ciphertexts: list[bytes] = field(default_factory=list)
    error: BaseException | None = None
    quote: PriceQuote | None = None  # priced once per batch, when checked (`_is_allowed`), and drafted at that price


def checkout_grouped(*, buyer_id: int, sku_id: int, quantity: int, request_id: str | None, sales_channel: str,
                     client_ip: str) -> CheckoutResult | None:
    """Queue a wallet checkout for this process's writer and wait for its batch.

    Returns the delivered order, or None when the batch left it to the single path (`order_checkout` runs it).
    """
    price_rules_warm(buyer_id=buyer_id, sales_channel=sales_channel)  # the writer prices it without a round trip
    checkout = _Checkout(buyer_id=buyer_id, wallet_id=wallet_account_id(user_id=buyer_id), sku_id=sku_id,
                         quantity=quantity, request_id=request_id, sales_channel=sales_channel,
                         client_ip=client_ip)
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
    """Undo the batch and write it again without `culprits` (they go to the single path, or are answered "sold
    out" when `sold_out`)."""

    def __init__(self, culprits: Iterable[_Checkout], *, sold_out: bool = False) -> None:
        super().__init__()
        self.culprits = list(culprits)
        self.sold_out = sold_out


class _Writer:
    def __init__(self) -> None:
        self._queue: deque[_Checkout] = deque()
        self._wakeup = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopping = False

    def submit(self, checkout: _Checkout) -> None:
        with self._wakeup:
            if len(self._threads) < settings.KAMENG_CHECKOUT_GROUP_WRITERS or not all(
                    thread.is_alive() for thread in self._threads):
                self._threads = [thread for thread in self._threads if thread.is_alive()]
                while len(self._threads) < settings.KAMENG_CHECKOUT_GROUP_WRITERS:
                    thread = threading.Thread(target=self._run, daemon=True,
                                              name=f"kameng-checkout-writer-{len(self._threads) + 1}")
                    self._threads.append(thread)
                    thread.start()
            self._queue.append(checkout)
            self._wakeup.notify()

    def _gathered(self, limit: int) -> bool:
        return len(self._queue) >= limit or self._stopping

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
            self._wakeup.notify_all()
            threads, self._threads = self._threads, []
        for thread in threads:
            thread.join(timeout=settings.KAMENG_CHECKOUT_GROUP_WAIT_SECONDS)
        with self._wakeup:
            self._stopping = False

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            connection.close()

    def _loop(self) -> None:
        last = 0  # the size of the batch before, 0 once the writer has waited idle for a checkout
        while True:
            with self._wakeup:
                while not self._queue and not self._stopping:
                    last = 0
                    self._wakeup.wait()
                if not self._queue:
                    return
                limit = settings.KAMENG_CHECKOUT_GROUP_MAX
                gather = settings.KAMENG_CHECKOUT_GROUP_GATHER_SECONDS
                if gather > 0 and (last > 1 or len(self._queue) > 1):  # checkouts come together: let more come
                    self._wakeup.wait_for(functools.partial(self._gathered, limit), timeout=gather)
                    if not self._queue:  # withdrawn meanwhile, or taken by another writer
                        continue
                batch = [self._queue.popleft() for _ in range(min(limit, len(self._queue)))]
            last = len(batch)
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
        skus = skus_for_sale_recent(sku_ids=sorted({checkout.sku_id for checkout in batch}))
        todo = _drop_invalid(batch, skus)
        while todo:
            try:
                _write(todo, skus, timezone.now())
                return
            except _Rollback as rollback:
                if rollback.sold_out:
                    _answer_sold_out(rollback.culprits)
                else:
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


def _drop_invalid(batch: list[_Checkout], skus: dict[int, SkuForSale]) -> list[_Checkout]:
    """Leave to the single path what it must refuse (SKU not on sale, quantity out of bounds) or what is not a
    card-key purchase (fulfilled later): it says why, or writes it."""
    valid = []
    for checkout in batch:
        if _is_allowed(skus.get(checkout.sku_id), checkout):
            valid.append(checkout)
        else:
            _run_singly([checkout])
    return valid


def _is_allowed(sku: SkuForSale | None, checkout: _Checkout) -> bool:
    if sku is None or sku.delivery_kind != DeliveryKind.CARD_KEY:
        return False
    try:
        checkout.quote = sku_price(sku=sku, buyer_id=checkout.buyer_id, quantity=checkout.quantity,
                                   sales_channel=checkout.sales_channel)
        checkout_validate(sku, checkout.quantity, checkout.quote, sales_channel=checkout.sales_channel)
    except ApplicationError:
        return False
    return True


def _run_singly(checkouts: Iterable[_Checkout]) -> None:
    for checkout in checkouts:
        checkout.order = None
        checkout.done.set()


def _answer_sold_out(checkouts: Iterable[_Checkout]) -> None:
    """Answer each "sold out" (nothing sellable), as the single path would have (one error each: they are raised
    in their own request threads)."""
    for checkout in checkouts:
        checkout.error = card_keys_sold_out_error()
        checkout.done.set()


def _fail(checkouts: Iterable[_Checkout], error: BaseException) -> None:
    """Answer with `error` every checkout of the batch not answered yet."""
    for checkout in checkouts:
        if not checkout.done.is_set():
            checkout.error = error
            checkout.done.set()


def _write(todo: list[_Checkout], skus: dict[int, SkuForSale], now: datetime) -> None:
    drafts = _drafts(todo, skus, now)
    if drafts_at_once(list(drafts.values())):
        try:
            at_once = drafts_write_at_once(list(drafts.values()), now)
        except StockShortError as short:
            raise _Rollback(_owners(drafts, short.drafts), sold_out=short.sold_out) from short
        except InsufficientFundsManyError as short:
            raise _Rollback(checkout for checkout in todo if checkout.wallet_id in short.account_ids) from short
        except CommitUnknownError as failure:
            raise _CommitFailed(failure.error) from failure
        if at_once is not None:
            _settle(todo, drafts, *at_once)
            return
        # An order was not written (a replay): the usual transaction below writes the others.
    committing = False
    try:
        with transaction.atomic():
            try:
                written, claimed = drafts_write(list(drafts.values()), now)
            except StockShortError as short:
                # Stock is short for a SKU: the single path serves its checkouts one by one, "sold out" exactly —
                # unless the batch proved it would answer each of them "sold out" (kameng.orders.checkout).
                raise _Rollback(_owners(drafts, short.drafts), sold_out=short.sold_out) from short
            except SoldOutError as sold_out:
                # A batch of one card-key checkout found no key (the last keys of a flash sale): an answer, not a
                # failure — the single path says "sold out" (or finds the keys another batch gave back).
                raise _Rollback(todo) from sold_out
            except InsufficientFundsManyError as short:
                raise _Rollback(checkout for checkout in todo if checkout.wallet_id in short.account_ids) from short
            committing = True
    except IntegrityError:
        raise  # a constraint checked at COMMIT (deferred foreign keys) rolls the whole transaction back, surely
    except Exception as error:
        if committing:
            raise _CommitFailed(error) from error
        raise
    _settle(todo, drafts, written, claimed)


def _settle(todo: list[_Checkout], drafts: dict[_Checkout, CheckoutDraft], written: list[CheckoutDraft],
            claimed: dict[int, list[tuple[int, bytes]]]) -> None:
    """Answer the checkouts whose orders the committed batch wrote; the others go to the single path."""
    done = set()
    for draft in written:
        checkout = _owners(drafts, [draft])[0]
        checkout.order = draft.order
        checkout.ciphertexts = [secret for _, secret in claimed[draft.order.pk]]
        checkout.done.set()
        done.add(checkout)
    # After COMMIT: the single path finds the first order of a replayed request id and answers with it.
    _run_singly(checkout for checkout in todo if checkout not in done)


def _drafts(todo: list[_Checkout], skus: dict[int, SkuForSale], now: datetime) -> dict[_Checkout, CheckoutDraft]:
    drafts: dict[_Checkout, CheckoutDraft] = {}
    numbers: set[str] = set()
    for checkout in todo:
        sku = skus[checkout.sku_id]
        draft = _draft(checkout, sku, now)
        while draft.order.number in numbers:  # same millisecond, same 6 random digits: rare, but one batch shares it
            draft = _draft(checkout, sku, now)
        numbers.add(draft.order.number)
        drafts[checkout] = draft
    return drafts


def _draft(checkout: _Checkout, sku: SkuForSale, now: datetime) -> CheckoutDraft:
    assert checkout.quote is not None  # priced by `_drop_invalid`
    return checkout_draft(sku=sku, quote=checkout.quote, buyer_id=checkout.buyer_id,
                          request_id=checkout.request_id, wallet_id=checkout.wallet_id, client_ip=checkout.client_ip,
                          now=now, sales_channel=checkout.sales_channel)


def _owners(drafts: dict[_Checkout, CheckoutDraft], wanted: list[CheckoutDraft]) -> list[_Checkout]:
    ids = {id(draft) for draft in wanted}
    return [checkout for checkout, draft in drafts.items() if id(draft) in ids]
