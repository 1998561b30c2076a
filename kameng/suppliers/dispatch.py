"""The direct top-up dispatcher: submitting attempts to suppliers and querying them, many at once per worker process,
never inside a database transaction, never two workers on the same attempt.

Each submit or query is three steps: claim (a conditional UPDATE: RECORDED → in flight for a submit, `submit_count`
+1 and `submitted_at`; a due `next_check_at` pushed out for a query, `query_count` +1 — a second worker's UPDATE
matches no row and it stops), the call to the upstream, and the outcome written by `topup.attempt_outcome_apply`.
An attempt claimed for submit is UNKNOWN until its answer is written: a worker dying in the call leaves it to be
queried (never resubmitted blind) once `KAMENG_TOPUP_SUBMIT_TIMEOUT_SECONDS` have passed.

Many at once: one database thread claims whatever attempts are queued in one conditional UPDATE (`_claims_submit`,
`_claims_query`), another writes whatever answers are queued in one transaction (`topup.attempt_outcomes_apply`),
so a worker holds two database connections however many calls are in flight and one statement serves a batch when
busy. The calls wait on one event loop (a connector with coroutines: Fulu) or in the I/O threads (the others):
`KAMENG_TOPUP_DISPATCH_THREADS` calls in flight at most. The steps are chained by futures: nothing waits idle.
Throughput and CPU measured: bench/README.md (`bench/topup.py`).

The `submit_topups` task hands its attempts to the pools and returns (bounded: it waits while too many are in
flight in this process), so one worker process keeps its I/O threads busy from a stream of one-attempt tasks; an
attempt lost with its process stays RECORDED (re-driven) or UNKNOWN (queried) for the sweeper. With eager tasks
(tests, demo without a worker) everything runs inline in the caller's thread.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import queue
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, connections, transaction
from django.utils import timezone

from kameng.core.errors import ApplicationError
from kameng.core.urls import reverse_at_root
from kameng.suppliers.connectors.base import Outcome, SupplierConnector, TopupAnswer
from kameng.suppliers.connectors.registry import connector_for
from kameng.suppliers.models import AttemptStatus, Supplier, TopupAttempt
from kameng.suppliers.topup import OutcomeToWrite, Via, attempt_outcomes_apply, attempts_to_send, topup_request_of

logger = logging.getLogger(__name__)

BATCH_MAX = 200  # attempts per claim or per outcome transaction
IN_FLIGHT_PER_THREAD = 4  # a process takes at most threads × this many attempts before the task waits


def topup_notify_url(*, supplier_id: int) -> str:
    """Where the supplier sends its callback (the path never changes: upstreams are configured with it)."""
    return _notify_url(settings.SITE_URL, supplier_id)


@functools.lru_cache(maxsize=1024)
def _notify_url(site_url: str, supplier_id: int) -> str:
    return site_url + reverse_at_root("suppliers:callback", args=[supplier_id])


@dataclass
class Call:
    """A claimed attempt and what its call needs: the connector and, for a submit, the request."""

    attempt_id: int
    order_id: int
    via: Via
    connector: SupplierConnector | None
    work: Callable[[], TopupAnswer]
    answer: TopupAnswer | None = None
    # The same call as a coroutine, for a connector that has one (Fulu): awaited on the dispatcher's event loop.
    work_async: Callable[[], Awaitable[TopupAnswer]] | None = None


# --- the steps, for many attempts at once -------------------------------------------------------------------

def _table() -> str:
    return connection.ops.quote_name(TopupAttempt._meta.db_table)


def _placeholders(values: Sequence[object]) -> str:
    return ", ".join(["%s"] * len(values))


def _update_returning(*, set_sql: str, set_params: list[Any], where_sql: str, where_params: list[Any],
                      columns: str) -> list[tuple[Any, ...]]:
    """The conditional UPDATE of a claim, answering `columns` (starting with id) of the rows it changed: one
    statement with RETURNING where UPDATE has it (PostgreSQL, SQLite); on MariaDB, whose UPDATE has none, the rows
    are locked with SELECT … FOR UPDATE (a locking read sees the latest rows, so a second claimer matches none of
    them) and updated by id in the same transaction. Table and clauses are ours; values are placeholders only."""
    table = _table()
    with connection.cursor() as cursor:
        if connection.vendor != "mysql":
            cursor.execute(f"UPDATE {table} SET {set_sql} WHERE {where_sql} RETURNING {columns}",  # noqa: S608
                           [*set_params, *where_params])
            return list(cursor.fetchall())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {table} WHERE {where_sql} FOR UPDATE", where_params)  # noqa: S608
        rows = list(cursor.fetchall())
        if rows:
            ids = [row[0] for row in rows]
            cursor.execute(f"UPDATE {table} SET {set_sql} WHERE id IN ({_placeholders(ids)})",  # noqa: S608
                           [*set_params, *ids])
        return rows


def _claims_submit(attempt_ids: Sequence[int]) -> list[Call]:
    """Claim the RECORDED ones among these attempts for submit, in one conditional UPDATE (a second worker's
    matches none of them), and build their calls from one row each (`attempts_to_send`, no model). Each claimed
    attempt is UNKNOWN with its submit outstanding until its answer is written: lost with this process, it is
    queried, never submitted blind."""
    ids = sorted(set(attempt_ids))
    if not ids:
        return []
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    rows = _update_returning(
        set_sql="status = %s, submit_count = submit_count + 1, submitted_at = %s, updated_at = %s, "
                "is_submit_outstanding = %s, next_check_at = %s",
        set_params=[AttemptStatus.UNKNOWN, adapt(now), adapt(now), True,
                    adapt(now + timedelta(seconds=settings.KAMENG_TOPUP_SUBMIT_TIMEOUT_SECONDS))],
        where_sql=f"id IN ({_placeholders(ids)}) AND status = %s", where_params=[*ids, AttemptStatus.RECORDED],
        columns="id")
    claimed = sorted(row[0] for row in rows)
    if not claimed:
        return []
    attempts = attempts_to_send(attempt_ids=claimed)
    connectors = _connectors({attempt.supplier_id for attempt in attempts})
    calls = []
    for attempt in attempts:
        connector = connectors[attempt.supplier_id]
        if isinstance(connector, ApplicationError):  # nothing was sent: certainly not taken upstream
            refused = TopupAnswer(outcome=Outcome.FAILED, code=connector.code, message=connector.message,
                                  may_try_next=True)
            calls.append(Call(attempt.attempt_id, attempt.order_id, Via.SUBMIT, None,
                              functools.partial(_same, refused)))
            continue
        request = topup_request_of(attempt, notify_url=topup_notify_url(supplier_id=attempt.supplier_id))
        calls.append(Call(attempt.attempt_id, attempt.order_id, Via.SUBMIT, connector,
                          functools.partial(connector.topup_submit, request),
                          work_async=_coroutine(connector, "topup_submit_prepared", request)))
    return calls


def _coroutine(connector: SupplierConnector, method: str,
               argument: object) -> Callable[[], Awaitable[TopupAnswer]] | None:
    """The connector's coroutine for this call when it has them (`is_async`: Fulu), else None (a thread calls).
    Its request is built and signed here, in the claim thread (`topup_…_prepared`): the event loop only sends."""
    if not getattr(connector, "is_async", False):
        return None
    prepared: Callable[[], Awaitable[TopupAnswer]] = getattr(connector, method)(argument)
    return prepared


def _same(answer: TopupAnswer) -> TopupAnswer:
    return answer


def _connectors(supplier_ids: set[int]) -> dict[int, SupplierConnector | ApplicationError]:
    """Each supplier's connector, built once for the batch (or why it cannot be)."""
    connectors: dict[int, SupplierConnector | ApplicationError] = {}
    for supplier in Supplier.objects.filter(pk__in=sorted(supplier_ids)):
        try:
            connectors[supplier.pk] = connector_for(supplier)
        except ApplicationError as error:
            connectors[supplier.pk] = error
    return connectors


def _claims_query(attempt_ids: Sequence[int]) -> list[Call]:
    """Claim the attempts among these that are due for a query, in one conditional UPDATE (the due time pushed out,
    `query_count` + 1: a second worker's matches none of them), and build their calls."""
    ids = sorted(set(attempt_ids))
    if not ids:
        return []
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    rows = _update_returning(
        set_sql="query_count = query_count + 1, updated_at = %s, next_check_at = %s",
        set_params=[adapt(now), adapt(now + timedelta(seconds=settings.KAMENG_TOPUP_SUBMIT_TIMEOUT_SECONDS))],
        where_sql=f"id IN ({_placeholders(ids)}) AND status IN (%s, %s) AND next_check_at <= %s",
        where_params=[*ids, AttemptStatus.PROCESSING, AttemptStatus.UNKNOWN, adapt(now)],
        columns="id, order_id, supplier_id, customer_order_no")
    claimed = sorted(rows)
    connectors = _connectors({row[2] for row in claimed})
    calls = []
    for attempt_id, order_id, supplier_id, number in claimed:
        connector = connectors[supplier_id]
        if isinstance(connector, ApplicationError):
            # Querying again would not help: staff must fix the supplier's config (then clear the flag) or settle it.
            logger.error("cannot query top-up %s: its supplier has no connector (%s)", number, connector.message)
            TopupAttempt.objects.filter(pk=attempt_id).update(
                needs_review=True, next_check_at=None, updated_at=timezone.now(),
                review_note=f"供货商对接配置无效，无法查询（{connector.message}）：请修正配置或与供货商核对"[:200])
            continue
        calls.append(Call(attempt_id, order_id, Via.QUERY, connector, functools.partial(connector.topup_query, number),
                          work_async=_coroutine(connector, "topup_query_prepared", number)))
    return calls


def _call(call: Call) -> Call:
    """The upstream call (no database): whatever goes wrong in it is an unknown result, queried later."""
    try:
        call.answer = call.work()
    except Exception:
        logger.exception("top-up %s call (%s) failed unexpectedly: result unknown", call.attempt_id, call.via)
        call.answer = TopupAnswer(outcome=Outcome.UNKNOWN, message="connector error")
    return call


async def _call_async(call: Call, room: asyncio.Semaphore, threads: ThreadPoolExecutor) -> Call:
    """`_call` on the event loop: awaited when the connector has a coroutine, else in an I/O thread."""
    async with room:
        if call.work_async is None:
            return await asyncio.get_running_loop().run_in_executor(threads, _call, call)
        try:
            call.answer = await call.work_async()
        except Exception:
            logger.exception("top-up %s call (%s) failed unexpectedly: result unknown", call.attempt_id, call.via)
            call.answer = TopupAnswer(outcome=Outcome.UNKNOWN, message="connector error")
        return call


class _EventLoop:
    """The dispatcher's event loop, in a thread of its own: thousands of calls wait on it at the cost of a
    coroutine each, where a thread per call costs the whole process CPU in switching (measured: bench/README.md).
    At most `concurrency` calls in flight; a connector without coroutines runs in the I/O threads."""

    def __init__(self, concurrency: int, threads: ThreadPoolExecutor) -> None:
        self.threads = threads
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="topup-loop", daemon=True)
        self.thread.start()
        self.room = asyncio.run_coroutine_threadsafe(self._room(concurrency), self.loop).result()

    @staticmethod
    async def _room(concurrency: int) -> asyncio.Semaphore:
        return asyncio.Semaphore(concurrency)

    def submit_many(self, calls: list[tuple[Call, Future[None]]],
                    called: Callable[[Call, Future[None]], None]) -> None:
        """Start the calls of a claimed batch with one wake-up of the loop (not one thread-safe future and one
        self-pipe write per call: measured, the loop then waited behind the claim thread's per-call hand-overs);
        `called(call, finished)` runs on the loop as each call ends."""
        self.loop.call_soon_threadsafe(self._start, calls, called)

    def _start(self, calls: list[tuple[Call, Future[None]]], called: Callable[[Call, Future[None]], None]) -> None:
        for call, finished in calls:
            task = self.loop.create_task(_call_async(call, self.room, self.threads))
            task.add_done_callback(functools.partial(_task_done, call, finished, called))

    def stop(self) -> None:
        from kameng.suppliers.connectors.fulu import async_clients_close

        asyncio.run_coroutine_threadsafe(async_clients_close(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


def _task_done(call: Call, finished: Future[None], called: Callable[[Call, Future[None]], None],
               task: asyncio.Task[Call]) -> None:
    if task.cancelled():  # the loop stopping under it: nothing written, the sweeper queries it
        finished.set_exception(RuntimeError("call cancelled"))
        return
    called(call, finished)


def _to_write(call: Call) -> OutcomeToWrite:
    assert call.answer is not None
    has_callbacks = call.connector.has_callbacks if call.connector is not None else True
    return OutcomeToWrite(attempt_id=call.attempt_id, answer=call.answer, via=call.via, has_callbacks=has_callbacks,
                          order_id=call.order_id)


def _record(calls: Sequence[Call]) -> None:
    attempt_outcomes_apply(outcomes=[_to_write(call) for call in calls])


def attempt_submit(*, attempt_id: int) -> None:
    """Submit one RECORDED attempt, inline (call outside any transaction); a no-op if it is not RECORDED."""
    attempts_submit_inline(attempt_ids=[attempt_id])


def attempt_query(*, attempt_id: int) -> None:
    """Query one attempt due for it, inline; a no-op if it is not due (or another worker took it)."""
    attempts_query_inline(attempt_ids=[attempt_id])


def attempts_submit_inline(*, attempt_ids: Sequence[int]) -> None:
    """Claim the attempts, call one after another, write the answers (one transaction): tests, eager tasks."""
    calls = _claims_submit(attempt_ids)
    _record([_call(call) for call in calls])


def attempts_query_inline(*, attempt_ids: Sequence[int]) -> None:
    calls = _claims_query(attempt_ids)
    _record([_call(call) for call in calls])


# --- many at once, concurrently --------------------------------------------------------------------------------

_STOP = object()


class _Batcher:
    """A database thread draining its queue in batches: whatever queued while it wrote the last batch is the next
    one (at most BATCH_MAX), so one statement serves many attempts when busy and one attempt waits for nothing when
    idle (a group commit)."""

    def __init__(self, name: str, handle: Callable[[list[Any]], None]) -> None:
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.handle = handle
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def put(self, item: object) -> None:
        self.queue.put(item)

    def stop(self) -> None:
        self.queue.put(_STOP)
        self.thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self.queue.get()
            if item is _STOP:
                break
            batch = [item]
            while len(batch) < BATCH_MAX:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            close_old_connections()
            try:
                self.handle(batch)
            except Exception:  # the handler settles its items' futures; this is the last resort
                logger.exception("top-up dispatcher batch of %d failed", len(batch))
        connections.close_all()


class _Pools:
    def __init__(self, io_threads: int) -> None:
        self.io = ThreadPoolExecutor(io_threads, thread_name_prefix="topup-io")
        self.loop = _EventLoop(io_threads, self.io)
        self.room = threading.BoundedSemaphore(io_threads * IN_FLIGHT_PER_THREAD)
        self.pending: set[Future[None]] = set()
        self.claimer = _Batcher("topup-db-claim", self._claim)
        self.writer = _Batcher("topup-db-write", self._write)

    def release(self, future: Future[None]) -> None:
        self.pending.discard(future)
        self.room.release()

    def _claim(self, batch: list[tuple[int, Via, Future[None]]]) -> None:
        for via in (Via.SUBMIT, Via.QUERY):
            items = [(attempt_id, finished) for attempt_id, item_via, finished in batch if item_via == via]
            if not items:
                continue
            waiting: dict[int, list[Future[None]]] = {}
            for attempt_id, finished in items:
                waiting.setdefault(attempt_id, []).append(finished)
            try:
                calls = (_claims_submit if via == Via.SUBMIT else _claims_query)(list(waiting))
            except Exception as error:
                logger.exception("top-up claims (%s) of %d attempts failed; the sweeper takes them", via, len(items))
                for _, finished in items:
                    finished.set_exception(error)
                continue
            starting = []
            for call in calls:
                first, *others = waiting.pop(call.attempt_id)
                for finished in others:  # the same attempt handed twice: one call
                    finished.set_result(None)
                starting.append((call, first))
            self.loop.submit_many(starting, self._called)
            for futures in waiting.values():  # not ours to take (another worker, not due, not RECORDED)
                for finished in futures:
                    finished.set_result(None)

    def _called(self, call: Call, finished: Future[None]) -> None:
        self.writer.put((call, finished))

    def _write(self, batch: list[tuple[Call, Future[None]]]) -> None:
        try:
            _record([call for call, _ in batch])
        except Exception:
            if len(batch) == 1:
                logger.exception("top-up %s: writing its answer failed; it is queried again later",
                                 batch[0][0].attempt_id)
                batch[0][1].set_exception(RuntimeError("answer not written"))
                return
            logger.exception("a batch of %d top-up answers failed; writing them one by one", len(batch))
            for item in batch:
                self._write([item])
            return
        for _, finished in batch:
            finished.set_result(None)

    def shutdown(self) -> None:
        wait(list(self.pending))
        self.loop.stop()
        self.io.shutdown(wait=True)
        self.claimer.stop()
        self.writer.stop()


_pools: dict[str, _Pools] = {}  # this process's, made on first use (after a prefork worker forked)
_pools_lock = threading.Lock()


def _get_pools() -> _Pools:
    with _pools_lock:
        if "pools" not in _pools:
            _pools["pools"] = _Pools(settings.KAMENG_TOPUP_DISPATCH_THREADS)
        return _pools["pools"]


def dispatcher_stop() -> None:
    """Wait for this process's attempts in flight and end its threads (their database connections close with them):
    tests, and a worker shutting down."""
    due_poller_stop()
    with _pools_lock:
        pools = _pools.pop("pools", None)
    if pools is not None:
        pools.shutdown()


def attempts_run(*, attempt_ids: Iterable[int], via: Via) -> list[Future[None]]:
    """Submit (`via` SUBMIT) or query (QUERY) the attempts concurrently in this process's pools; one future per
    attempt, done when its outcome is written (or it was not ours to take). Waits while the process is full."""
    pools = _get_pools()
    done: list[Future[None]] = []
    for attempt_id in attempt_ids:
        pools.room.acquire()
        finished: Future[None] = Future()
        pools.pending.add(finished)
        finished.add_done_callback(pools.release)
        done.append(finished)
        pools.claimer.put((attempt_id, via, finished))
    return done


def attempts_submit(*, attempt_ids: list[int], wait: bool = False) -> None:
    """Submit the attempts: inline with eager tasks, else concurrently (`wait`: until every outcome is written)."""
    _run(attempt_ids, Via.SUBMIT, wait=wait)


def attempts_query(*, attempt_ids: list[int], wait: bool = False) -> None:
    _run(attempt_ids, Via.QUERY, wait=wait)


def _run(attempt_ids: list[int], via: Via, *, wait: bool) -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        step = attempt_submit if via == Via.SUBMIT else attempt_query
        for attempt_id in attempt_ids:
            step(attempt_id=attempt_id)
        return
    futures = attempts_run(attempt_ids=attempt_ids, via=via)
    if wait:
        for future in futures:
            future.exception()  # waits; a failed step was logged, the sweeper takes the attempt again


def topup_dispatch(*, attempt_ids: list[int]) -> None:
    """After commit: hand the attempts to a dispatcher — this process's when it is a worker process hosting one
    (`dispatcher_host_start`: the `fulfil_orders` task routed them here, no broker hop), else a worker's through
    the `submit_topups` task (eager tasks: submitted here). A broker that is down loses nothing: the attempts stay
    RECORDED and the sweeper re-drives them."""
    from kameng.suppliers.tasks import submit_topups

    if settings.CELERY_TASK_ALWAYS_EAGER:
        attempts_submit(attempt_ids=attempt_ids)
        return
    if _host.is_set():
        attempts_run(attempt_ids=attempt_ids, via=Via.SUBMIT)
        return
    try:
        submit_topups.delay(attempt_ids)
    except Exception:
        logger.exception("could not enqueue top-up attempts %s; the sweeper will", attempt_ids)


def topup_attempts_sweep(*, limit: int = 500) -> int:
    """Re-drive RECORDED attempts whose dispatch was lost, and query the PROCESSING and UNKNOWN ones that are due;
    waits for them. Returns how many it took."""
    now = timezone.now()
    recorded = list(TopupAttempt.objects.filter(status=AttemptStatus.RECORDED, next_check_at__lte=now)
                    .order_by("next_check_at").values_list("pk", flat=True)[:limit])
    due = list(TopupAttempt.objects.filter(status__in=[AttemptStatus.PROCESSING, AttemptStatus.UNKNOWN],
                                           next_check_at__lte=now)
               .order_by("next_check_at").values_list("pk", flat=True)[:limit])
    attempts_submit(attempt_ids=recorded, wait=True)
    attempts_query(attempt_ids=due, wait=True)
    return len(recorded) + len(due)


def topup_query_prompt(*, attempt_id: int) -> None:
    """A callback said this attempt has a result: it is made due now and queried soon, the query's answer deciding
    (call outside any transaction). Eager tasks: queried here. Otherwise `KAMENG_TOPUP_CALLBACK_PROMPT` says how the
    worker hears of it: "task" (a `query_topups` task) or "poll" (the worker's due poller, which takes every due
    attempt in one claim every `KAMENG_TOPUP_DUE_POLL_SECONDS`: many callbacks, one statement). Either way the
    attempt is due in the database, so a lost task or a stopped poller leaves it to the sweeper."""
    updated = TopupAttempt.objects.filter(
        pk=attempt_id, status__in=[AttemptStatus.PROCESSING, AttemptStatus.UNKNOWN],
    ).update(next_check_at=timezone.now())
    if not updated:  # settled already (or never live): nothing to ask
        return
    if settings.CELERY_TASK_ALWAYS_EAGER or settings.KAMENG_TOPUP_CALLBACK_PROMPT != "poll":
        _query_prompted(attempt_id)


def topup_query_prompt_by_number(*, supplier_id: int, customer_order_no: str, supplier_order_id: str) -> bool:
    """`topup_query_prompt` for a callback, in one conditional UPDATE: the supplier's live (PROCESSING or UNKNOWN)
    attempt with this number — and, when both sides know one, the same supplier order id — is made due now. Returns
    whether one was (False: no such attempt, settled already, or another supplier order: the caller looks)."""
    # Plain SQL: the ORM's compiling of this UPDATE was most of the callback's own CPU (bench/README.md).
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_table()} SET next_check_at = %s WHERE customer_order_no = %s AND supplier_id = %s "  # noqa: S608
            "AND status IN (%s, %s) AND (%s = '' OR supplier_order_id IN ('', %s))",
            [connection.ops.adapt_datetimefield_value(timezone.now()), customer_order_no, supplier_id,
             AttemptStatus.PROCESSING, AttemptStatus.UNKNOWN, supplier_order_id, supplier_order_id])
        if not cursor.rowcount:
            return False
    if settings.CELERY_TASK_ALWAYS_EAGER or settings.KAMENG_TOPUP_CALLBACK_PROMPT != "poll":
        attempt_id = (TopupAttempt.objects.filter(supplier_id=supplier_id, customer_order_no=customer_order_no)
                      .values_list("pk", flat=True).first())
        if attempt_id is not None:
            _query_prompted(attempt_id)
    return True


def _query_prompted(attempt_id: int) -> None:
    """The query owed to a prompt, where the worker does not poll for it: inline (eager tasks) or a task."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        attempt_query(attempt_id=attempt_id)
        return
    from kameng.suppliers.tasks import query_topups

    try:
        query_topups.delay([attempt_id])
    except Exception:
        logger.exception("could not enqueue the query of top-up attempt %s; the sweeper will", attempt_id)


def attempts_due(*, limit: int = BATCH_MAX) -> list[int]:
    """The PROCESSING and UNKNOWN attempts due for a query, the longest waiting first."""
    return list(TopupAttempt.objects.filter(status__in=[AttemptStatus.PROCESSING, AttemptStatus.UNKNOWN],
                                            next_check_at__lte=timezone.now())
                .order_by("next_check_at").values_list("pk", flat=True)[:limit])


class _DuePoller:
    """A worker process's thread that hands the attempts due for a query to its dispatcher every `interval`
    seconds (a callback made them due): the claim is conditional, so two pollers (two processes) never query one
    attempt twice at once, and an attempt handed twice is claimed once."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="topup-due-poller", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            close_old_connections()
            try:
                due = attempts_due()
                if due:
                    attempts_run(attempt_ids=due, via=Via.QUERY)
            except Exception:
                logger.exception("top-up due poll failed; polling again")
        connections.close_all()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()


_pollers: dict[str, _DuePoller] = {}
_host = threading.Event()  # set in a worker process that hosts a dispatcher (kameng.suppliers.worker)


def dispatcher_host_start() -> None:
    """Make this (worker) process a dispatcher host: attempts routed here are submitted here, and with
    `KAMENG_TOPUP_CALLBACK_PROMPT` "poll" its due poller queries what the callbacks made due. Called by the
    Celery worker's start-up signals (kameng.suppliers.worker), once per process that runs tasks."""
    _host.set()
    if settings.KAMENG_TOPUP_CALLBACK_PROMPT == "poll":
        due_poller_start()


def dispatcher_host_stop() -> None:
    """The worker process is stopping: its poller and dispatcher end once the attempts in flight are written."""
    _host.clear()
    dispatcher_stop()


def due_poller_start(*, interval: float | None = None) -> None:
    """Start this process's due poller (once); `interval` defaults to `KAMENG_TOPUP_DUE_POLL_SECONDS`."""
    seconds = interval if interval is not None else settings.KAMENG_TOPUP_DUE_POLL_SECONDS
    with _pools_lock:
        if "poller" not in _pollers:
            _pollers["poller"] = _DuePoller(seconds)


def due_poller_stop() -> None:
    with _pools_lock:
        poller = _pollers.pop("poller", None)
    if poller is not None:
        poller.stop()
