"""The dispatcher's batches (kameng.suppliers.dispatch, kameng.suppliers.topup.attempt_outcomes_apply): many attempts
claimed by one conditional UPDATE, many answers written in one transaction exactly as one at a time would write
them, a crash between the claim and the answer leaving attempts to be queried (never submitted again), and a weakly
signed callback that only makes its attempt due."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pytest_django.fixtures import Settings

from kameng.ledger.models import Journal, JournalKind
from kameng.orders import fulfilment
from kameng.orders.fulfilment import orders_fulfil
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.suppliers import dispatch, topup
from kameng.suppliers.callbacks import topup_callback_process
from kameng.suppliers.connectors.base import CallbackResult, Outcome, TopupAnswer, TopupKind
from kameng.suppliers.models import AttemptStatus, TopupAttempt
from kameng.suppliers.topup import OutcomeToWrite, Via, attempt_outcomes_apply
from tests.suppliers.topup_support import (
    LOST_BEFORE_ACCEPT,
    PROCESSING,
    Upstreams,
    topup_order_paid,
    topup_sku,
    upstreams,
)

__all__ = ["upstreams"]

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]


def _routed(count: int, upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch, *, second_offer: bool = False
            ) -> list[Order]:
    """`count` paid orders fulfilled in one batch (routed, attempts RECORDED, nothing submitted yet)."""
    sku = topup_sku()
    upstreams.offer("甲", sku, "48.00")
    if second_offer:
        upstreams.offer("乙", sku, "49.00")
    monkeypatch.setattr(fulfilment, "order_fulfilment_enqueue", lambda *, order_id: None)
    monkeypatch.setattr(topup, "_dispatch", lambda attempt_ids: None)
    orders = [topup_order_paid(sku) for _ in range(count)]
    assert orders_fulfil(order_ids=[order.pk for order in orders]) == count
    return orders


def _ids() -> list[int]:
    return list(TopupAttempt.objects.order_by("pk").values_list("pk", flat=True))


def test_a_fulfilment_batch_routes_every_order_once(upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch) -> None:
    orders = _routed(5, upstreams, monkeypatch)
    assert TopupAttempt.objects.count() == 5
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.FULFILLING}
    assert OrderEvent.objects.filter(kind=OrderEventKind.ROUTED).count() == 5
    # a second batch over the same orders changes nothing
    assert orders_fulfil(order_ids=[order.pk for order in orders]) == 0
    assert TopupAttempt.objects.count() == 5


def test_a_daily_cap_is_counted_inside_a_batch(upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch) -> None:
    sku = topup_sku()
    upstreams.offer("甲", sku, "48.00", max_per_day=2)
    upstreams.offer("乙", sku, "49.00")
    monkeypatch.setattr(fulfilment, "order_fulfilment_enqueue", lambda *, order_id: None)
    monkeypatch.setattr(topup, "_dispatch", lambda attempt_ids: None)
    orders = [topup_order_paid(sku) for _ in range(4)]
    orders_fulfil(order_ids=[order.pk for order in orders])
    by_supplier = sorted(TopupAttempt.objects.values_list("supplier__name", flat=True))
    assert by_supplier == ["乙", "乙", "甲", "甲"]  # the capped route is not memoised for the batch


@pytest.mark.postgres
def test_a_fulfilment_batch_writes_set_based_and_hands_its_attempts_over_together(
        upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Capture) -> None:
    """On PostgreSQL a batch's attempts are one INSERT, its orders one UPDATE, its events one INSERT: the statements
    do not grow with the batch, and the attempts go to the dispatcher in one hand-over after commit."""
    sku = topup_sku()
    offer, _ = upstreams.offer("甲", sku, "48.00")
    monkeypatch.setattr(fulfilment, "order_fulfilment_enqueue", lambda *, order_id: None)
    handed: list[list[int]] = []
    monkeypatch.setattr(topup, "_dispatch", handed.append)
    statements = {}
    for count in (2, 8):
        orders = [topup_order_paid(sku) for _ in range(count)]
        with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
            assert orders_fulfil(order_ids=[order.pk for order in orders]) == count
        statements[count] = len(queries)
        attempts = list(TopupAttempt.objects.filter(order__in=orders).order_by("pk"))
        assert handed[-1] == [attempt.pk for attempt in attempts]
        assert [(attempt.order_id, attempt.customer_order_no, attempt.sequence, attempt.cost, attempt.status)
                for attempt in attempts] == [(order.pk, f"{order.number}-1", 1, Decimal("48.00"),
                                              AttemptStatus.RECORDED) for order in orders]
        assert all(attempt.offer_id == offer.pk and attempt.supplier_id == offer.supplier_id
                   and attempt.next_check_at is not None and attempt.next_check_at > timezone.now()
                   and attempt.created_at is not None for attempt in attempts)
        assert set(Order.objects.filter(pk__in=[order.pk for order in orders])
                   .values_list("status", flat=True)) == {OrderStatus.FULFILLING}
        routed = OrderEvent.objects.filter(order__in=orders, kind=OrderEventKind.ROUTED)
        assert [event.params["supplier"] for event in routed] == ["甲"] * count
        assert OrderEvent.objects.filter(order__in=orders, to_status=OrderStatus.FULFILLING).count() == count
    assert len(handed) == 2
    assert statements[2] == statements[8]


def test_a_batch_that_fails_writes_no_attempt_and_leaves_nothing_for_the_next(
        upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch) -> None:
    sku = topup_sku()
    upstreams.offer("甲", sku, "48.00")
    monkeypatch.setattr(fulfilment, "order_fulfilment_enqueue", lambda *, order_id: None)
    monkeypatch.setattr(topup, "_dispatch", lambda attempt_ids: None)
    orders = [topup_order_paid(sku) for _ in range(3)]
    routed = topup.order_fulfil_direct_topup
    seen: list[int] = []

    def failing_on_the_third(order: Order) -> list[OrderEvent]:
        seen.append(order.pk)
        if len(seen) == 3:
            raise RuntimeError("fulfiller crashed")
        return routed(order)

    monkeypatch.setattr(fulfilment, "fulfillers", lambda: {"direct_topup": failing_on_the_third})
    with pytest.raises(RuntimeError, match="fulfiller crashed"):
        orders_fulfil(order_ids=[order.pk for order in orders])
    assert not TopupAttempt.objects.exists()
    assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.PAID}
    monkeypatch.setattr(fulfilment, "fulfillers", lambda: {"direct_topup": routed})
    assert orders_fulfil(order_ids=[orders[0].pk]) == 1
    assert list(TopupAttempt.objects.values_list("order_id", flat=True)) == [orders[0].pk]


@pytest.mark.parametrize("form", [None, [{"name": "account", "label": "账号"},
                                          {"name": "server", "label": "区服", "options": ["一区"]}]])
def test_a_claimed_submit_carries_the_request_read_from_rows(upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch,
                                                             form: list[dict[str, Any]] | None) -> None:
    sku = topup_sku(form=form)
    offer, upstream = upstreams.offer("甲", sku, "48.00", upstream_product_id="P-9")
    monkeypatch.setattr(fulfilment, "order_fulfilment_enqueue", lambda *, order_id: None)
    monkeypatch.setattr(topup, "_dispatch", lambda attempt_ids: None)
    order = topup_order_paid(sku, quantity=2)
    orders_fulfil(order_ids=[order.pk])
    (call,) = dispatch._claims_submit(_ids())
    dispatch._call(call)
    (request,) = upstream.requests
    assert (request.customer_order_no, request.upstream_product_id, request.quantity, request.max_price) == (
        f"{order.number}-1", "P-9", 2, Decimal("48.00"))
    assert request.notify_url.endswith(f"/suppliers/callback/{offer.supplier_id}/")
    if form is None:
        assert (request.kind, request.charge_account, request.face_value, dict(request.extra)) == (
            TopupKind.MOBILE, "13800138000", Decimal("50.00"), {})
    else:
        assert (request.kind, request.charge_account, dict(request.extra)) == (
            TopupKind.DIRECT, "player-1", {"server": "一区"})


def test_one_claim_takes_many_attempts_and_a_second_takes_none(upstreams: Upstreams,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _routed(4, upstreams, monkeypatch)
    ids = _ids()
    calls = dispatch._claims_submit(ids)
    assert sorted(call.attempt_id for call in calls) == ids
    assert dispatch._claims_submit(ids) == []  # another worker's claim matches none of them
    claimed = TopupAttempt.objects.filter(pk__in=ids)
    assert set(claimed.values_list("status", flat=True)) == {AttemptStatus.UNKNOWN}
    assert set(claimed.values_list("submit_count", "is_submit_outstanding")) == {(1, True)}


def test_a_batch_of_answers_is_written_as_one_at_a_time_would(upstreams: Upstreams,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    orders = _routed(4, upstreams, monkeypatch)
    ids = _ids()
    dispatch._claims_submit(ids)
    ok, processing, unknown, failed = ids
    attempt_outcomes_apply(outcomes=[
        OutcomeToWrite(ok, TopupAnswer(Outcome.SUCCEEDED, supplier_order_id="U1", operator_serial="SN1"), Via.SUBMIT),
        OutcomeToWrite(processing, TopupAnswer(Outcome.PROCESSING, supplier_order_id="U2"), Via.SUBMIT),
        OutcomeToWrite(unknown, TopupAnswer(Outcome.UNKNOWN, message="timeout"), Via.SUBMIT),
        OutcomeToWrite(failed, TopupAnswer(Outcome.FAILED, code="order_failed"), Via.SUBMIT),
        # a duplicate success in the same batch changes nothing more
        OutcomeToWrite(ok, TopupAnswer(Outcome.SUCCEEDED, supplier_order_id="U1", operator_serial="SN1"), Via.QUERY),
    ])
    status = dict(TopupAttempt.objects.values_list("pk", "status"))
    assert status[ok] == AttemptStatus.SUCCEEDED
    assert status[processing] == AttemptStatus.PROCESSING
    assert status[unknown] == AttemptStatus.UNKNOWN
    assert status[failed] == AttemptStatus.FAILED
    assert not TopupAttempt.objects.filter(pk__in=ids, is_submit_outstanding=True).exists()
    order_status = dict(Order.objects.values_list("pk", "status"))
    assert order_status[orders[0].pk] == OrderStatus.DELIVERED
    assert order_status[orders[1].pk] == OrderStatus.FULFILLING
    assert order_status[orders[3].pk] == OrderStatus.REFUNDED  # one offer only: refunded
    assert Journal.objects.filter(kind=JournalKind.ORDER_SALE, reference=orders[0].number).count() == 1
    assert Journal.objects.filter(kind=JournalKind.ORDER_REFUND, reference=orders[3].number).count() == 1
    assert TopupAttempt.objects.get(pk=ok).updated_at > timezone.now() - timedelta(minutes=1)


def test_a_failure_repeated_in_one_batch_refunds_once(upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch) -> None:
    orders = _routed(1, upstreams, monkeypatch)
    (attempt_id,) = _ids()
    dispatch._claims_submit([attempt_id])
    failure = TopupAnswer(Outcome.FAILED, code="order_failed")
    attempt_outcomes_apply(outcomes=[OutcomeToWrite(attempt_id, failure, Via.SUBMIT),
                                     OutcomeToWrite(attempt_id, failure, Via.CALLBACK)])
    assert Journal.objects.filter(kind=JournalKind.ORDER_REFUND, reference=orders[0].number).count() == 1
    orders[0].refresh_from_db()
    assert orders[0].status == OrderStatus.REFUNDED


def test_a_failure_in_a_batch_fails_over_to_the_next_offer(upstreams: Upstreams,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    orders = _routed(2, upstreams, monkeypatch, second_offer=True)
    first, second = _ids()
    dispatch._claims_submit([first, second])
    attempt_outcomes_apply(outcomes=[
        OutcomeToWrite(first, TopupAnswer(Outcome.FAILED, code="order_failed"), Via.SUBMIT),
        OutcomeToWrite(second, TopupAnswer(Outcome.PROCESSING), Via.SUBMIT),
    ])
    next_attempt = TopupAttempt.objects.get(order=orders[0], sequence=2)
    assert next_attempt.status == AttemptStatus.RECORDED
    assert next_attempt.supplier.name == "乙"
    assert Order.objects.get(pk=orders[0].pk).status == OrderStatus.FULFILLING


@pytest.mark.parametrize("upstream_has_it", [True, False])
def test_a_crash_between_the_claim_and_the_answer_is_queried_never_resubmitted(
        upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch, upstream_has_it: bool) -> None:
    """Claimed (and maybe sent), then the worker died before writing any answer: the sweeper queries them; a "no
    such order" does not send them again while their submit is outstanding."""
    _routed(3, upstreams, monkeypatch)
    ids = _ids()
    upstream = upstreams.by_name["甲"]
    upstream.script(*([PROCESSING] * 3 if upstream_has_it else [LOST_BEFORE_ACCEPT] * 3))
    for call in dispatch._claims_submit(ids):
        if upstream_has_it:
            dispatch._call(call)  # sent, then the process died: no answer written
    TopupAttempt.objects.update(next_check_at=timezone.now() - timedelta(seconds=1),
                                submitted_at=timezone.now() - timedelta(hours=1))
    dispatch.attempts_query_inline(attempt_ids=ids)
    attempts = TopupAttempt.objects.filter(pk__in=ids)
    assert all(count <= 1 for count in upstream.submits.values())
    assert set(attempts.values_list("submit_count", flat=True)) == {1}
    if upstream_has_it:
        assert set(attempts.values_list("status", flat=True)) == {AttemptStatus.SUCCEEDED}
        assert set(Order.objects.values_list("status", flat=True)) == {OrderStatus.DELIVERED}
    else:
        assert set(attempts.values_list("status", flat=True)) == {AttemptStatus.UNKNOWN}
        assert not attempts.filter(status=AttemptStatus.RECORDED).exists()


def test_a_crash_after_the_answer_of_a_batch_leaves_nothing_to_redo(upstreams: Upstreams,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _routed(3, upstreams, monkeypatch)
    ids = _ids()
    dispatch.attempts_submit_inline(attempt_ids=ids)
    upstream = upstreams.by_name["甲"]
    assert sorted(upstream.submits.values()) == [1, 1, 1]
    assert dispatch._claims_submit(ids) == []  # the sweeper's re-drive finds nothing RECORDED
    assert set(TopupAttempt.objects.values_list("status", flat=True)) == {AttemptStatus.PROCESSING}


def _prompting(upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch) -> tuple[Order, TopupAttempt, Any]:
    orders = _routed(1, upstreams, monkeypatch)
    upstream = upstreams.by_name["甲"]
    upstream.callbacks_prompt_query = True  # type: ignore[attr-defined]  # as Fulu's weak signature needs
    dispatch.attempts_submit_inline(attempt_ids=_ids())
    attempt = TopupAttempt.objects.get(order=orders[0])
    assert attempt.status == AttemptStatus.PROCESSING
    return orders[0], attempt, upstream


def test_a_prompting_callback_polled_only_makes_the_attempt_due(upstreams: Upstreams,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                settings: Settings) -> None:
    order, attempt, upstream = _prompting(upstreams, monkeypatch)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.KAMENG_TOPUP_CALLBACK_PROMPT = "poll"
    upstream.settle(attempt.customer_order_no)
    reply = topup_callback_process(supplier_id=attempt.supplier_id, body=upstream.callback_body(
        attempt.customer_order_no), headers={})
    assert reply.status == 200
    assert upstream.queries[attempt.customer_order_no] == 0  # nothing asked inside the callback's request
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.PROCESSING  # the callback's word is not taken
    assert dispatch.attempts_due() == [attempt.pk]
    dispatch.attempts_query_inline(attempt_ids=dispatch.attempts_due())  # the worker's due poll
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.SUCCEEDED
    assert upstream.queries[attempt.customer_order_no] == 1
    assert Order.objects.get(pk=order.pk).status == OrderStatus.DELIVERED
    # a duplicate callback after that: acknowledged, nothing due, nothing asked
    again = topup_callback_process(supplier_id=attempt.supplier_id, body=upstream.callback_body(
        attempt.customer_order_no), headers={})
    assert again.status == 200
    assert dispatch.attempts_due() == []


def test_a_prompting_callback_enqueues_a_query_task(upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch,
                                                    settings: Settings) -> None:
    from kameng.suppliers import tasks

    _, attempt, upstream = _prompting(upstreams, monkeypatch)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.KAMENG_TOPUP_CALLBACK_PROMPT = "task"
    queued: list[list[int]] = []
    monkeypatch.setattr(tasks.query_topups, "delay", queued.append)
    topup_callback_process(supplier_id=attempt.supplier_id, body=upstream.callback_body(attempt.customer_order_no),
                           headers={})
    assert queued == [[attempt.pk]]
    assert upstream.queries[attempt.customer_order_no] == 0


def test_a_prompting_callback_costs_one_statement_with_its_connector_held(
        upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch, settings: Settings,
        django_assert_num_queries: Any) -> None:
    from kameng.suppliers import callbacks

    _, attempt, upstream = _prompting(upstreams, monkeypatch)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.KAMENG_TOPUP_CALLBACK_PROMPT = "poll"
    settings.KAMENG_TOPUP_CALLBACK_CONNECTOR_SECONDS = 60
    monkeypatch.setattr(callbacks, "_connectors", {})
    body = upstream.callback_body(attempt.customer_order_no)
    with django_assert_num_queries(2):  # the supplier's row, once; the conditional UPDATE
        assert topup_callback_process(supplier_id=attempt.supplier_id, body=body, headers={}).status == 200
    with django_assert_num_queries(1):  # the connector held: the UPDATE alone
        assert topup_callback_process(supplier_id=attempt.supplier_id, body=body, headers={}).status == 200
    assert dispatch.attempts_due() == [attempt.pk]
    # an unknown number is still 404, a forged body still refused, an unknown supplier id still the same 400
    assert topup_callback_process(supplier_id=attempt.supplier_id, headers={},
                                  body=upstream.callback_body("K-nobody")).status == 404
    forged = json.dumps({**json.loads(body), "sign": "0" * 32}).encode()
    assert topup_callback_process(supplier_id=attempt.supplier_id, body=forged, headers={}).status == 400
    assert topup_callback_process(supplier_id=attempt.supplier_id + 999, body=body, headers={}).status == 400


def test_a_prompting_callback_naming_another_supplier_order_is_refused_and_makes_nothing_due(
        upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    _, attempt, upstream = _prompting(upstreams, monkeypatch)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    TopupAttempt.objects.filter(pk=attempt.pk).update(supplier_order_id="UP-1")
    verify = upstream.callback_verify

    def naming_another(*, body: bytes, headers: Any) -> CallbackResult:
        result = verify(body=body, headers=headers)
        return dataclasses.replace(result, answer=dataclasses.replace(result.answer, supplier_order_id="UP-2"))

    monkeypatch.setattr(upstream, "callback_verify", naming_another)

    reply = topup_callback_process(supplier_id=attempt.supplier_id, headers={},
                                   body=upstream.callback_body(attempt.customer_order_no))

    assert (reply.status, reply.body) == (400, "rejected")
    assert dispatch.attempts_due() == []


def test_a_callback_before_the_submit_answer_is_written_keeps_the_attempt_due(
        upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """The upstream calls back (300 ms after accepting, in Fulu's case) while the submit's answer is still on its
    way to the database: writing that answer ("processing") must not push the prompted query out to the callback
    wait, or the order waits KAMENG_TOPUP_CALLBACK_WAIT_SECONDS for nothing (seen in bench/topup.py)."""
    orders = _routed(2, upstreams, monkeypatch)
    upstream = upstreams.by_name["甲"]
    upstream.callbacks_prompt_query = True  # type: ignore[attr-defined]
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.KAMENG_TOPUP_CALLBACK_PROMPT = "poll"
    calls = [dispatch._call(call) for call in dispatch._claims_submit(_ids())]  # sent, answers not yet written
    prompted, quiet = sorted(TopupAttempt.objects.all(), key=lambda attempt: attempt.order_id != orders[0].pk)
    upstream.settle(prompted.customer_order_no)
    reply = topup_callback_process(supplier_id=prompted.supplier_id, headers={},
                                   body=upstream.callback_body(prompted.customer_order_no))
    assert reply.status == 200
    assert dispatch.attempts_due() == [prompted.pk]  # due while its submit is still out

    dispatch._record(calls)  # the submit answers: "processing" for both

    prompted.refresh_from_db()
    quiet.refresh_from_db()
    assert prompted.status == quiet.status == AttemptStatus.PROCESSING
    assert prompted.next_check_at is not None
    assert prompted.next_check_at <= timezone.now()
    assert quiet.next_check_at is not None  # the one without a callback waits for it
    assert quiet.next_check_at > timezone.now() + timedelta(seconds=settings.KAMENG_TOPUP_CALLBACK_WAIT_SECONDS - 5)
    assert dispatch.attempts_due() == [prompted.pk]
    dispatch.attempts_query_inline(attempt_ids=dispatch.attempts_due())  # the worker's due poll
    assert Order.objects.get(pk=orders[0].pk).status == OrderStatus.DELIVERED
    assert Order.objects.get(pk=orders[1].pk).status == OrderStatus.FULFILLING
    assert sorted(upstream.submits.values()) == [1, 1]
    assert upstream.queries[prompted.customer_order_no] == 1
    assert upstream.queries.get(quiet.customer_order_no, 0) == 0
