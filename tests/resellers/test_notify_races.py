"""Notifications under concurrent workers (PostgreSQL): eight workers on the same due delivery post it once;
eight concurrent schedulings of the same order write one delivery."""

from __future__ import annotations

import threading

import httpx
import pytest
from django.utils import timezone

from kameng.core import ssrf
from kameng.resellers.models import NotifyAttempt, NotifyDelivery, NotifyState
from kameng.resellers.notify import notify_deliver, order_notify_schedule
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.resellers.notify_support import PUBLIC_ADDRESS, card_order, openapi_order, reseller_with_key

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_eight_workers_post_a_due_delivery_once(monkeypatch: pytest.MonkeyPatch) -> None:
    requires_postgresql()
    reseller, key = reseller_with_key()
    link = openapi_order(card_order(reseller), reseller, key)
    delivery = NotifyDelivery.objects.create(openapi_order=link, status="delivered", url=link.notify_url,
                                             payload={"order_no": link.order.number, "request_no": "R-1",
                                                      "status": "delivered"}, next_attempt_at=timezone.now())
    posts: list[httpx.Request] = []
    lock = threading.Lock()

    def receive(sent: httpx.Request) -> httpx.Response:
        with lock:
            posts.append(sent)
        return httpx.Response(200, text="ok")

    monkeypatch.setattr(ssrf, "resolve", lambda host, port, *a, **k: [(2, 1, 6, "", (PUBLIC_ADDRESS, port))])
    monkeypatch.setattr(ssrf, "outbound_transport", httpx.MockTransport(receive))

    outcomes = run_in_threads(8, lambda _index: notify_deliver(delivery_id=delivery.pk))

    assert unexpected(outcomes) == []
    assert len(posts) == 1
    assert sorted(outcome.value or "" for outcome in outcomes) == [""] * 7 + [NotifyState.DELIVERED]
    assert NotifyAttempt.objects.filter(delivery=delivery).count() == 1


def test_eight_concurrent_schedulings_write_one_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    requires_postgresql()
    from kameng.resellers import notify

    monkeypatch.setattr(notify, "_enqueue", lambda _ids: None)
    reseller, key = reseller_with_key()
    order = card_order(reseller)
    openapi_order(order, reseller, key)

    outcomes = run_in_threads(8, lambda _index: order_notify_schedule(order_id=order.pk))

    assert unexpected(outcomes) == []
    assert NotifyDelivery.objects.filter(openapi_order__order=order).count() == 1
