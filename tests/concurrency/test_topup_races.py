"""Direct top-up races on real PostgreSQL row locks with real threads: a callback and a poll settling the same
attempt, many workers submitting the same attempt, a failure reported twice at once. Each settles once: one
delivery and one journal, one submit, one failover (kameng.suppliers.topup, dispatch)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import wallet_balance
from kameng.orders.fulfilment import order_fulfil
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.suppliers import topup
from kameng.suppliers.callbacks import topup_callback_process
from kameng.suppliers.dispatch import attempt_query, attempt_submit
from kameng.suppliers.models import AttemptStatus, TopupAttempt
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.suppliers.topup_support import FAILED, Upstreams, topup_order_paid, topup_sku, upstreams

__all__ = ["upstreams"]

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 12


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    requires_postgresql()


def _make_due() -> None:
    TopupAttempt.objects.update(next_check_at=timezone.now() - timedelta(seconds=1))


def test_a_callback_and_a_poll_settle_the_attempt_once(upstreams: Upstreams) -> None:
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("甲", sku, "48.00")
    order = topup_order_paid(sku)
    order_fulfil(order_id=order.pk)
    attempt = TopupAttempt.objects.get(order=order)
    assert attempt.status == AttemptStatus.PROCESSING
    _make_due()
    body = upstream.callback_body(attempt.customer_order_no)

    def race(index: int) -> None:
        if index % 2:
            attempt_query(attempt_id=attempt.pk)
        else:
            assert topup_callback_process(supplier_id=attempt.supplier_id, body=body, headers={}).status == 200

    outcomes = run_in_threads(THREADS, race)

    assert unexpected(outcomes) == []
    order = Order.objects.get(pk=order.pk)
    attempt.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert attempt.status == AttemptStatus.SUCCEEDED
    assert not attempt.needs_review
    assert OrderEvent.objects.filter(order=order, kind=OrderEventKind.TOPUP_SUCCEEDED).count() == 1
    assert Journal.objects.filter(kind=JournalKind.ORDER_SALE, reference=order.number).count() == 1
    assert upstream.submits == {attempt.customer_order_no: 1}


def test_many_workers_submit_one_attempt_once(upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch) -> None:
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("甲", sku, "48.00")
    # The dispatch after commit is what the threads race on: it is lost here.
    with monkeypatch.context() as patch:
        patch.setattr(topup, "_dispatch", lambda attempt_id: None)
        order = topup_order_paid(sku)
    attempt = TopupAttempt.objects.get(order=order)
    assert attempt.status == AttemptStatus.RECORDED

    outcomes = run_in_threads(THREADS, lambda _index: attempt_submit(attempt_id=attempt.pk))

    assert unexpected(outcomes) == []
    assert upstream.submits == {attempt.customer_order_no: 1}
    attempt.refresh_from_db()
    assert (attempt.status, attempt.submit_count) == (AttemptStatus.PROCESSING, 1)


def test_a_failure_reported_by_callback_and_query_at_once_fails_over_once(upstreams: Upstreams) -> None:
    sku = topup_sku("50.00")
    _, first = upstreams.offer("甲", sku, "47.00")
    first.settles_as = FAILED
    _, second = upstreams.offer("乙", sku, "48.00")
    order = topup_order_paid(sku)
    order_fulfil(order_id=order.pk)
    attempt = TopupAttempt.objects.get(order=order)
    _make_due()
    body = first.callback_body(attempt.customer_order_no, FAILED)

    def race(index: int) -> None:
        if index % 2:
            attempt_query(attempt_id=attempt.pk)
        else:
            topup_callback_process(supplier_id=attempt.supplier_id, body=body, headers={})

    outcomes = run_in_threads(THREADS, race)

    assert unexpected(outcomes) == []
    attempts = list(TopupAttempt.objects.filter(order=order).order_by("sequence"))
    assert [(a.sequence, a.status) for a in attempts] == [(1, AttemptStatus.FAILED), (2, AttemptStatus.PROCESSING)]
    assert OrderEvent.objects.filter(order=order, kind=OrderEventKind.TOPUP_FAILED_OVER).count() == 1
    assert sum(second.submits.values()) == 1
    assert wallet_balance(user_id=order.buyer_id) == Decimal("450.00")
