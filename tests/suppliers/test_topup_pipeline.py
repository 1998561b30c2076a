"""The direct top-up pipeline: submit after commit, the outcome written, failover on a confirmed failure, a refund
when every offer failed (once, exact), and an unknown result queried before anything else — never a double top-up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum
from django.utils import timezone

from kameng.ledger.models import AccountKind, Entry, Journal, JournalKind, Side
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.suppliers.connectors.base import Outcome, TopupAnswer, TopupKind, TopupRequest
from kameng.suppliers.dispatch import attempt_query, attempt_submit, topup_attempts_sweep
from kameng.suppliers.models import AttemptStatus, TopupAttempt
from tests.suppliers.topup_support import (
    FAILED,
    GAME_FORM,
    LOST_AFTER_ACCEPT,
    LOST_BEFORE_ACCEPT,
    PROCESSING,
    REFUSED,
    SUCCEEDED,
    Upstreams,
    fulfil,
    topup_order_paid,
    topup_sku,
    upstreams,
)

__all__ = ["upstreams"]

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]


def _balance(kind: str) -> Decimal:
    entries = Entry.objects.filter(account__kind=kind)
    credits = entries.filter(side=Side.CREDIT).aggregate(total=Sum("amount"))["total"] or Decimal("0.00")
    debits = entries.filter(side=Side.DEBIT).aggregate(total=Sum("amount"))["total"] or Decimal("0.00")
    return credits - debits


def _kinds(order: Order) -> list[str]:
    return list(OrderEvent.objects.filter(order=order).order_by("pk").values_list("kind", flat=True))


def _due(*, after_grace: bool = False) -> None:
    """Time passes: every scheduled check is due (and, with `after_grace`, every submit is old enough that the
    upstream's "no such order" is believed)."""
    past = timezone.now() - timedelta(seconds=1)
    TopupAttempt.objects.exclude(next_check_at=None).update(next_check_at=past)
    if after_grace:
        TopupAttempt.objects.exclude(submitted_at=None).update(submitted_at=past - timedelta(hours=1))


def test_a_paid_order_is_submitted_after_commit_and_waits_for_the_upstream(upstreams: Upstreams,
                                                                           django_capture_on_commit_callbacks: Capture
                                                                           ) -> None:
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("甲", sku, "48.50")
    order = topup_order_paid(sku)

    order = fulfil(order, django_capture_on_commit_callbacks)

    attempt = TopupAttempt.objects.get(order=order)
    assert order.status == OrderStatus.FULFILLING
    assert (attempt.status, attempt.submit_count, attempt.query_count) == (AttemptStatus.PROCESSING, 1, 0)
    assert attempt.supplier_order_id == f"U-{attempt.customer_order_no}"
    assert attempt.next_check_at is not None
    assert attempt.next_check_at > timezone.now() + timedelta(seconds=100)
    assert upstream.submits == {attempt.customer_order_no: 1}
    assert _kinds(order)[-3:] == [OrderEventKind.TOPUP_SUBMITTING, OrderEventKind.ROUTED,
                                  OrderEventKind.TOPUP_PROCESSING]
    assert _balance(AccountKind.ORDERS_IN_PROGRESS) == Decimal("50.00")
    assert wallet_balance(user_id=order.buyer_id) == Decimal("450.00")


def test_a_mobile_product_sends_the_phone_and_face_value(upstreams: Upstreams,
                                                        django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku("50.00", face_value="50.00")
    offer, upstream = upstreams.offer("甲", sku, "48.50")

    order = fulfil(topup_order_paid(sku, target={"phone": "13912345678"}), django_capture_on_commit_callbacks)

    assert upstream.requests == [TopupRequest(
        customer_order_no=f"{order.number}-1", kind=TopupKind.MOBILE, upstream_product_id=offer.upstream_product_id,
        quantity=1, charge_account="13912345678", face_value=Decimal("50.00"), extra={},
        max_price=Decimal("48.50"), notify_url=f"http://127.0.0.1:8000/suppliers/callback/{offer.supplier_id}/")]


def test_a_game_product_sends_the_account_and_the_rest_of_the_form(upstreams: Upstreams,
                                                                  django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku("30.00", face_value="30.00", form=GAME_FORM)
    _, upstream = upstreams.offer("甲", sku, "29.00")

    fulfil(topup_order_paid(sku, target={"account": "player-1", "region": "二区"}), django_capture_on_commit_callbacks)

    request = upstream.requests[0]
    assert (request.kind, request.charge_account, dict(request.extra)) == (TopupKind.DIRECT, "player-1",
                                                                          {"region": "二区"})


def test_an_immediate_success_delivers_and_releases_the_hold_to_revenue(upstreams: Upstreams,
                                                                        django_capture_on_commit_callbacks: Capture
                                                                        ) -> None:
    sku = topup_sku("50.00")
    upstreams.offer("甲", sku, "48.50")[1].script(SUCCEEDED)

    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)

    attempt = TopupAttempt.objects.get(order=order)
    assert order.status == OrderStatus.DELIVERED
    assert order.delivered_at is not None
    assert (attempt.status, attempt.operator_serial) == (AttemptStatus.SUCCEEDED, f"SN-{attempt.customer_order_no}")
    assert attempt.next_check_at is None
    succeeded = OrderEvent.objects.get(order=order, kind=OrderEventKind.TOPUP_SUCCEEDED)
    assert (succeeded.from_status, succeeded.to_status) == (OrderStatus.FULFILLING, OrderStatus.DELIVERED)
    assert succeeded.params == {"operator_serial": attempt.operator_serial}
    assert _balance(AccountKind.ORDERS_IN_PROGRESS) == Decimal("0.00")
    assert _balance(AccountKind.PLATFORM_REVENUE) == Decimal("50.00")
    assert wallet_balance(user_id=order.buyer_id) == Decimal("450.00")
    assert Journal.objects.filter(kind=JournalKind.ORDER_SALE, reference=order.number).count() == 1


def test_a_refusal_fails_over_to_the_next_offer(upstreams: Upstreams,
                                               django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku("50.00")
    cheap, first = upstreams.offer("便宜", sku, "47.00")
    dearer, second = upstreams.offer("次之", sku, "48.00")
    first.script(REFUSED)
    second.script(SUCCEEDED)

    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)

    attempts = list(TopupAttempt.objects.filter(order=order).order_by("sequence"))
    assert [(a.offer_id, a.sequence, a.status) for a in attempts] == [
        (cheap.pk, 1, AttemptStatus.FAILED), (dearer.pk, 2, AttemptStatus.SUCCEEDED)]
    assert (attempts[0].failure_code, attempts[0].failure_message) == ("3001", "商品库存不足")
    assert attempts[1].customer_order_no == f"{order.number}-2"
    assert order.status == OrderStatus.DELIVERED
    assert _kinds(order)[-5:] == [OrderEventKind.TOPUP_SUBMITTING, OrderEventKind.ROUTED,
                                  OrderEventKind.TOPUP_FAILED_OVER, OrderEventKind.ROUTED,
                                  OrderEventKind.TOPUP_SUCCEEDED]
    assert (sum(first.submits.values()), sum(second.submits.values())) == (1, 1)
    assert _balance(AccountKind.PLATFORM_REVENUE) == Decimal("50.00")


def test_every_offer_failing_refunds_the_whole_total_once(upstreams: Upstreams,
                                                          django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku("50.00")
    upstreams.offer("甲", sku, "47.00")[1].script(REFUSED)
    upstreams.offer("乙", sku, "48.00")[1].script(FAILED)

    order = fulfil(topup_order_paid(sku, quantity=2), django_capture_on_commit_callbacks)

    assert order.status == OrderStatus.REFUNDED
    assert order.refunded_amount == Decimal("100.00")
    assert wallet_balance(user_id=order.buyer_id) == Decimal("500.00")
    assert _balance(AccountKind.ORDERS_IN_PROGRESS) == Decimal("0.00")
    assert _balance(AccountKind.PLATFORM_REVENUE) == Decimal("0.00")
    assert Journal.objects.filter(kind=JournalKind.ORDER_REFUND, reference=order.number).count() == 1
    assert list(TopupAttempt.objects.filter(order=order).values_list("status", flat=True)) == [
        AttemptStatus.FAILED, AttemptStatus.FAILED]
    assert _kinds(order)[-4:] == [OrderEventKind.TOPUP_FAILED_OVER, OrderEventKind.ROUTED,
                                  OrderEventKind.DELIVERY_FAILED, OrderEventKind.DELIVERY_FAILED_REFUNDED]
    # The order is settled: the sweeper and a second fulfilment find nothing to do.
    _due(after_grace=True)
    assert topup_attempts_sweep() == 0
    fulfil(order, django_capture_on_commit_callbacks)
    assert Journal.objects.filter(kind=JournalKind.ORDER_REFUND, reference=order.number).count() == 1


def test_no_offer_at_all_refunds_at_once(upstreams: Upstreams, django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku("50.00")

    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)

    assert order.status == OrderStatus.REFUNDED
    assert wallet_balance(user_id=order.buyer_id) == Decimal("500.00")
    assert TopupAttempt.objects.count() == 0
    failed = OrderEvent.objects.get(order=order, kind=OrderEventKind.DELIVERY_FAILED)
    assert failed.params == {"reason": "暂无可用的供货商"}


def test_an_order_without_a_target_is_refunded_and_never_submitted(upstreams: Upstreams,
                                                                  django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("甲", sku, "48.00")
    order = topup_order_paid(sku, target={"phone": ""})

    order = fulfil(order, django_capture_on_commit_callbacks)

    assert order.status == OrderStatus.REFUNDED
    assert wallet_balance(user_id=order.buyer_id) == Decimal("500.00")
    assert upstream.submits == {}


def test_an_unknown_result_is_queried_and_succeeds_without_a_second_submit(
        upstreams: Upstreams, django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("甲", sku, "48.00")
    upstream.script(LOST_AFTER_ACCEPT)

    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)
    attempt = TopupAttempt.objects.get(order=order)
    assert (order.status, attempt.status) == (OrderStatus.FULFILLING, AttemptStatus.UNKNOWN)

    # Not due yet: nothing is asked.
    assert topup_attempts_sweep() == 0
    _due(after_grace=True)
    with django_capture_on_commit_callbacks(execute=True):
        assert topup_attempts_sweep() == 1

    order.refresh_from_db()
    attempt.refresh_from_db()
    assert (order.status, attempt.status) == (OrderStatus.DELIVERED, AttemptStatus.SUCCEEDED)
    assert (attempt.submit_count, attempt.query_count) == (1, 1)
    assert upstream.submits == {attempt.customer_order_no: 1}
    assert upstream.duplicates == 0


def test_not_found_soon_after_the_submit_is_asked_again_later(upstreams: Upstreams,
                                                              django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("甲", sku, "48.00")
    upstream.script(LOST_BEFORE_ACCEPT)
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)

    _due()  # due, but within the grace after the submit: the upstream may not have registered it yet
    topup_attempts_sweep()

    attempt = TopupAttempt.objects.get(order=order)
    assert (attempt.status, attempt.submit_count, attempt.query_count) == (AttemptStatus.UNKNOWN, 1, 1)
    assert sum(upstream.submits.values()) == 1


def test_not_found_after_the_grace_resubmits_the_same_number_to_the_same_supplier(
        upstreams: Upstreams, django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku("50.00")
    offer, upstream = upstreams.offer("甲", sku, "48.00")
    upstreams.offer("乙", sku, "49.00")
    upstream.script(LOST_BEFORE_ACCEPT, SUCCEEDED)
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)

    _due(after_grace=True)
    with django_capture_on_commit_callbacks(execute=True):
        topup_attempts_sweep()

    order.refresh_from_db()
    attempt = TopupAttempt.objects.get(order=order)
    assert order.status == OrderStatus.DELIVERED
    assert (attempt.offer_id, attempt.status, attempt.submit_count) == (offer.pk, AttemptStatus.SUCCEEDED, 2)
    assert upstream.submits == {f"{order.number}-1": 2}
    assert upstream.duplicates == 0
    assert TopupAttempt.objects.filter(order=order).count() == 1


def test_a_submit_that_raises_is_unknown_not_failed(upstreams: Upstreams,
                                                    django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("甲", sku, "48.00")
    upstreams.offer("乙", sku, "49.00")

    def explode(_request: TopupRequest) -> None:
        raise ConnectionResetError("peer reset")

    upstream.on_submit = explode
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)

    assert order.status == OrderStatus.FULFILLING
    assert list(TopupAttempt.objects.filter(order=order).values_list("status", flat=True)) == [AttemptStatus.UNKNOWN]


def test_two_submits_of_one_attempt_send_it_once(upstreams: Upstreams) -> None:
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("甲", sku, "48.00")
    order = topup_order_paid(sku)
    from kameng.orders.fulfilment import order_fulfil

    order_fulfil(order_id=order.pk)  # its after-commit dispatch is lost (never run here)
    attempt = TopupAttempt.objects.get(order=order)
    assert attempt.status == AttemptStatus.RECORDED

    attempt_submit(attempt_id=attempt.pk)
    attempt_submit(attempt_id=attempt.pk)

    assert upstream.submits == {attempt.customer_order_no: 1}


def test_the_sweeper_redrives_a_lost_dispatch_once(upstreams: Upstreams,
                                                  django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("甲", sku, "48.00")
    upstream.script(SUCCEEDED)
    order = topup_order_paid(sku)
    from kameng.orders.fulfilment import order_fulfil

    order_fulfil(order_id=order.pk)  # the after-commit dispatch is lost
    assert topup_attempts_sweep() == 0  # not overdue yet

    _due()
    with django_capture_on_commit_callbacks(execute=True):
        assert topup_attempts_sweep() == 1
    assert topup_attempts_sweep() == 0

    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert sum(upstream.submits.values()) == 1


def test_an_upstream_without_callbacks_is_polled(upstreams: Upstreams,
                                                 django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("轮询", sku, "48.00", has_callbacks=False)
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)
    attempt = TopupAttempt.objects.get(order=order)
    assert attempt.next_check_at is not None
    assert attempt.next_check_at <= timezone.now() + timedelta(seconds=6)

    _due()
    with django_capture_on_commit_callbacks(execute=True):
        topup_attempts_sweep()

    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert upstream.queries == {attempt.customer_order_no: 1}


def test_a_confirmed_failure_found_by_query_fails_over(upstreams: Upstreams,
                                                       django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku("50.00")
    _, first = upstreams.offer("甲", sku, "47.00")
    first.settles_as = FAILED
    upstreams.offer("乙", sku, "48.00")[1].script(SUCCEEDED)
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)

    _due()
    with django_capture_on_commit_callbacks(execute=True):
        topup_attempts_sweep()

    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert list(TopupAttempt.objects.filter(order=order).order_by("sequence").values_list("status", flat=True)) == [
        AttemptStatus.FAILED, AttemptStatus.SUCCEEDED]


def test_a_result_still_unknown_after_the_last_query_goes_to_staff(upstreams: Upstreams,
                                                                   django_capture_on_commit_callbacks: Capture,
                                                                   settings: Any) -> None:
    settings.KAMENG_TOPUP_QUERY_MAX = 3
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("甲", sku, "48.00")
    upstream.script(LOST_AFTER_ACCEPT)
    upstream.query_answers.extend([TopupAnswer(outcome=Outcome.UNKNOWN)] * 5)
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)

    for _ in range(5):
        _due()
        topup_attempts_sweep()

    attempt = TopupAttempt.objects.get(order=order)
    assert (attempt.status, attempt.query_count, attempt.next_check_at) == (AttemptStatus.UNKNOWN, 3, None)
    assert attempt.needs_review
    assert "查询 3 次" in attempt.review_note
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLING  # nothing refunded on an unknown result
    assert wallet_balance(user_id=order.buyer_id) == Decimal("450.00")


def test_many_orders_with_lost_answers_are_each_topped_up_at_most_once_and_all_settle(
        upstreams: Upstreams, django_capture_on_commit_callbacks: Capture) -> None:
    """The 'never a double top-up' test: a third of the answers lost after the upstream accepted, a third lost before
    it got the request, some refused, with two suppliers; the sweeper runs until everything settles."""
    sku = topup_sku("50.00")
    _, first = upstreams.offer("甲", sku, "47.00")
    _, second = upstreams.offer("乙", sku, "48.00")
    pattern = [LOST_AFTER_ACCEPT, LOST_BEFORE_ACCEPT, PROCESSING, REFUSED, LOST_AFTER_ACCEPT, SUCCEEDED]
    first.script(*(pattern * 10))
    second.script(*([LOST_BEFORE_ACCEPT, LOST_AFTER_ACCEPT, SUCCEEDED] * 10))
    orders = [topup_order_paid(sku, funds="50.00") for _ in range(30)]
    for order in orders:
        fulfil(order, django_capture_on_commit_callbacks)

    for _ in range(6):
        _due(after_grace=True)
        with django_capture_on_commit_callbacks(execute=True):
            topup_attempts_sweep()

    statuses = {order.pk: Order.objects.get(pk=order.pk).status for order in orders}
    assert set(statuses.values()) <= {OrderStatus.DELIVERED, OrderStatus.REFUNDED}
    assert first.duplicates == second.duplicates == 0
    held = {number for upstream in (first, second) for number, state in upstream.orders.items()
            if state == SUCCEEDED}
    for order in orders:
        numbers = {number for number in held if number.startswith(f"{order.number}-")}
        expected = 1 if statuses[order.pk] == OrderStatus.DELIVERED else 0
        assert len(numbers) == expected, (order.number, numbers, statuses[order.pk])
    delivered = sum(1 for status in statuses.values() if status == OrderStatus.DELIVERED)
    assert delivered == 30  # every refusal had a second supplier to go to
    assert _balance(AccountKind.PLATFORM_REVENUE) == Decimal("1500.00")
    assert _balance(AccountKind.ORDERS_IN_PROGRESS) == Decimal("0.00")
    assert not TopupAttempt.objects.filter(needs_review=True).exists()


def test_attempt_query_of_an_attempt_not_due_does_nothing(upstreams: Upstreams,
                                                          django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("甲", sku, "48.00")
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)
    attempt = TopupAttempt.objects.get(order=order)

    attempt_query(attempt_id=attempt.pk)

    assert upstream.queries == {}
    attempt.refresh_from_db()
    assert attempt.query_count == 0


def test_not_found_while_the_submit_is_still_in_flight_never_resubmits(
        upstreams: Upstreams, django_capture_on_commit_callbacks: Capture) -> None:
    """A submit claimed but not answered yet (waiting in the pool, or lost with its worker): the upstream's "no such
    order" proves nothing, the number is not sent a second time."""
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("甲", sku, "48.00")
    upstream.script(LOST_BEFORE_ACCEPT, SUCCEEDED)
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)
    TopupAttempt.objects.filter(order=order).update(is_submit_outstanding=True)  # as if its answer were not in

    _due(after_grace=True)
    with django_capture_on_commit_callbacks(execute=True):
        topup_attempts_sweep()

    attempt = TopupAttempt.objects.get(order=order)
    assert (attempt.status, attempt.submit_count) == (AttemptStatus.UNKNOWN, 1)
    assert sum(upstream.submits.values()) == 1


def test_not_found_for_an_acknowledged_order_never_resubmits(upstreams: Upstreams,
                                                             django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("甲", sku, "48.00")
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)  # processing, with its upstream id
    attempt = TopupAttempt.objects.get(order=order)
    upstream.query_answers.append(TopupAnswer(outcome=Outcome.NOT_FOUND))

    _due(after_grace=True)
    with django_capture_on_commit_callbacks(execute=True):
        topup_attempts_sweep()

    attempt.refresh_from_db()
    assert (attempt.status, attempt.submit_count) == (AttemptStatus.PROCESSING, 1)
    assert sum(upstream.submits.values()) == 1


def test_the_submits_of_one_number_are_capped_then_staff_look(upstreams: Upstreams, settings: Any,
                                                              django_capture_on_commit_callbacks: Capture) -> None:
    settings.KAMENG_TOPUP_SUBMIT_MAX = 2
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("甲", sku, "48.00")
    upstream.script(LOST_BEFORE_ACCEPT, LOST_BEFORE_ACCEPT, SUCCEEDED)
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)

    for _ in range(3):
        _due(after_grace=True)
        with django_capture_on_commit_callbacks(execute=True):
            topup_attempts_sweep()

    attempt = TopupAttempt.objects.get(order=order)
    assert (attempt.status, attempt.submit_count, attempt.needs_review) == (AttemptStatus.UNKNOWN, 2, True)
    assert sum(upstream.submits.values()) == 2


def test_an_attempt_whose_connector_cannot_be_built_goes_to_staff(upstreams: Upstreams,
                                                                  django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku("50.00")
    offer, _ = upstreams.offer("甲", sku, "48.00")
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)
    type(offer.supplier).objects.filter(pk=offer.supplier_id).update(connector_kind="manual")

    _due(after_grace=True)
    topup_attempts_sweep()

    attempt = TopupAttempt.objects.get(order=order)
    assert (attempt.needs_review, attempt.next_check_at) == (True, None)
    assert "对接配置" in attempt.review_note
