"""The direct top-up dispatcher: submitting attempts to suppliers and querying them, many at once per worker process,
never inside a database transaction, never two workers on the same attempt.

Each submit or query is three steps: claim (a conditional UPDATE: RECORDED → in flight for a submit, `submit_count`
+1 and `submitted_at`; a due `next_check_at` pushed out for a query, `query_count` +1 — a second worker's UPDATE
matches no row and it stops), the call to the upstream, and the outcome written by `topup.attempt_outcome_apply`.
An attempt claimed for submit is UNKNOWN until its answer is written: a worker dying in the call leaves it to be
queried (never resubmitted blind) once `KAMENG_TOPUP_SUBMIT_TIMEOUT_SECONDS` have passed.

Why threads, and two pools: a call spends its time waiting on the upstream (hundreds of milliseconds), the database
steps take a few milliseconds of CPU. The calls run in a pool of `KAMENG_TOPUP_DISPATCH_THREADS` I/O threads (the
connectors are synchronous httpx clients, so asyncio would only wrap them in threads again); the claims and outcomes
run in a small pool of database threads, so a worker holds a handful of database connections however many calls
are in flight (PostgreSQL's default allows 100 connections for everything). The steps are chained by the futures'
callbacks: nothing waits idle. Throughput measured: bench/README.md (`bench/topup.py`).

The `submit_topups` task hands its attempts to the pools and returns (bounded: it waits while too many are in
flight in this process), so one worker process keeps its I/O threads busy from a stream of one-attempt tasks; an
attempt lost with its process stays RECORDED (re-driven) or UNKNOWN (queried) for the sweeper. With eager tasks
(tests, demo without a worker) everything runs inline in the caller's thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from django.conf import settings
from django.db import close_old_connections
from django.db.models import F
from django.utils import timezone

from kameng.core.errors import ApplicationError
from kameng.core.urls import reverse_at_root
from kameng.suppliers.connectors.base import Outcome, SupplierConnector, TopupAnswer
from kameng.suppliers.connectors.registry import connector_for
from kameng.suppliers.models import AttemptStatus, TopupAttempt
from kameng.suppliers.topup import Via, attempt_outcome_apply, topup_request_for

logger = logging.getLogger(__name__)

T = TypeVar("T")

DATABASE_THREADS = 6
IN_FLIGHT_PER_THREAD = 4  # a process takes at most threads × this many attempts before the task waits


def topup_notify_url(*, supplier_id: int) -> str:
    """Where the supplier sends its callback (the path never changes: upstreams are configured with it)."""
    return settings.SITE_URL + reverse_at_root("suppliers:callback", args=[supplier_id])


@dataclass
class Call:
    """A claimed attempt and what its call needs: the connector and, for a submit, the request."""

    attempt_id: int
    order_id: int
    via: Via
    connector: SupplierConnector | None
    work: Callable[[], TopupAnswer]
    answer: TopupAnswer | None = None


# --- the steps ---------------------------------------------------------------------------------------------

def _claim_submit(attempt_id: int) -> Call | None:
    attempt = (TopupAttempt.objects.select_related("order__sku__product", "offer", "supplier")
               .filter(pk=attempt_id, status=AttemptStatus.RECORDED).first())
    if attempt is None:
        return None
    now = timezone.now()
    claimed = TopupAttempt.objects.filter(pk=attempt_id, status=AttemptStatus.RECORDED,
                                          submit_count=attempt.submit_count).update(
        status=AttemptStatus.UNKNOWN, submit_count=F("submit_count") + 1, submitted_at=now, updated_at=now,
        is_submit_outstanding=True,
        next_check_at=now + timedelta(seconds=settings.KAMENG_TOPUP_SUBMIT_TIMEOUT_SECONDS))
    if not claimed:  # another worker has it
        return None
    try:
        connector = connector_for(attempt.supplier)
    except ApplicationError as error:  # nothing was sent: certainly not taken upstream
        refused = TopupAnswer(outcome=Outcome.FAILED, code=error.code, message=error.message, may_try_next=True)
        return Call(attempt_id, attempt.order_id, Via.SUBMIT, None, lambda: refused)
    request = topup_request_for(attempt, notify_url=topup_notify_url(supplier_id=attempt.supplier_id))
    return Call(attempt_id, attempt.order_id, Via.SUBMIT, connector, lambda: connector.topup_submit(request))


def _claim_query(attempt_id: int) -> Call | None:
    now = timezone.now()
    claimed = TopupAttempt.objects.filter(
        pk=attempt_id, status__in=[AttemptStatus.PROCESSING, AttemptStatus.UNKNOWN], next_check_at__lte=now,
    ).update(query_count=F("query_count") + 1, updated_at=now,
             next_check_at=now + timedelta(seconds=settings.KAMENG_TOPUP_SUBMIT_TIMEOUT_SECONDS))
    if not claimed:
        return None
    attempt = TopupAttempt.objects.select_related("supplier").get(pk=attempt_id)
    try:
        connector = connector_for(attempt.supplier)
    except ApplicationError as error:
        # Querying again would not help: staff must fix the supplier's config (then clear the flag) or settle it.
        logger.exception("cannot query top-up %s: its supplier has no connector", attempt.customer_order_no)
        TopupAttempt.objects.filter(pk=attempt_id).update(
            needs_review=True, next_check_at=None, updated_at=timezone.now(),
            review_note=f"供货商对接配置无效，无法查询（{error.message}）：请修正配置或与供货商核对"[:200])
        return None
    number = attempt.customer_order_no
    return Call(attempt_id, attempt.order_id, Via.QUERY, connector, lambda: connector.topup_query(number))


def _call(call: Call) -> Call:
    """The upstream call (no database): whatever goes wrong in it is an unknown result, queried later."""
    try:
        call.answer = call.work()
    except Exception:
        logger.exception("top-up %s call (%s) failed unexpectedly: result unknown", call.attempt_id, call.via)
        call.answer = TopupAnswer(outcome=Outcome.UNKNOWN, message="connector error")
    return call


def _record(call: Call) -> None:
    assert call.answer is not None
    has_callbacks = call.connector.has_callbacks if call.connector is not None else True
    attempt_outcome_apply(attempt_id=call.attempt_id, answer=call.answer, via=call.via, has_callbacks=has_callbacks,
                          order_id=call.order_id)


def attempt_submit(*, attempt_id: int) -> None:
    """Submit one RECORDED attempt, inline (call outside any transaction); a no-op if it is not RECORDED."""
    call = _claim_submit(attempt_id)
    if call is not None:
        _record(_call(call))


def attempt_query(*, attempt_id: int) -> None:
    """Query one attempt due for it, inline; a no-op if it is not due (or another worker took it)."""
    call = _claim_query(attempt_id)
    if call is not None:
        _record(_call(call))


# --- many at once ------------------------------------------------------------------------------------------

class _Pools:
    def __init__(self, io_threads: int) -> None:
        self.database = ThreadPoolExecutor(DATABASE_THREADS, thread_name_prefix="topup-db")
        self.io = ThreadPoolExecutor(io_threads, thread_name_prefix="topup-io")
        self.room = threading.BoundedSemaphore(io_threads * IN_FLIGHT_PER_THREAD)
        self.pending: set[Future[None]] = set()

    def release(self, future: Future[None]) -> None:
        self.pending.discard(future)
        self.room.release()


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
    with _pools_lock:
        pools = _pools.pop("pools", None)
    if pools is not None:
        wait(list(pools.pending))
        pools.io.shutdown(wait=True)
        pools.database.shutdown(wait=True)


def _in_database_thread(step: Callable[[], T]) -> T:
    close_old_connections()
    try:
        return step()
    finally:
        close_old_connections()


def attempts_run(*, attempt_ids: Iterable[int], via: Via) -> list[Future[None]]:
    """Submit (`via` SUBMIT) or query (QUERY) the attempts concurrently in this process's pools; one future per
    attempt, done when its outcome is written (or it was not ours to take). Waits while the process is full."""
    pools = _get_pools()
    claim = _claim_submit if via == Via.SUBMIT else _claim_query
    done: list[Future[None]] = []
    for attempt_id in attempt_ids:
        pools.room.acquire()
        finished: Future[None] = Future()
        pools.pending.add(finished)
        finished.add_done_callback(pools.release)
        done.append(finished)
        _chain(pools, finished, attempt_id, claim)
    return done


def _chain(pools: _Pools, finished: Future[None], attempt_id: int, claim: Callable[[int], Call | None]) -> None:
    def fail(error: BaseException) -> None:
        logger.error("top-up attempt %s: dispatch step failed", attempt_id, exc_info=error)
        finished.set_exception(error)

    def claimed(future: Future[Call | None]) -> None:
        error = future.exception()
        if error is not None:
            fail(error)
            return
        call = future.result()
        if call is None:
            finished.set_result(None)
            return
        pools.io.submit(_call, call).add_done_callback(called)

    def called(future: Future[Call]) -> None:
        call = future.result()
        pools.database.submit(_in_database_thread, lambda: _record(call)).add_done_callback(recorded)

    def recorded(future: Future[None]) -> None:
        error = future.exception()
        if error is not None:
            fail(error)
        else:
            finished.set_result(None)

    pools.database.submit(_in_database_thread, lambda: claim(attempt_id)).add_done_callback(claimed)


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
    """After commit: hand the attempts to a worker (eager tasks: submit them here). A broker that is down loses
    nothing: the attempts stay RECORDED and the sweeper re-drives them."""
    from kameng.suppliers.tasks import submit_topups

    if settings.CELERY_TASK_ALWAYS_EAGER:
        attempts_submit(attempt_ids=attempt_ids)
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
