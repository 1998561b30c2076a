"""Open API order notifications: one per (order, status), signed with the key's secret, keys only at send time,
retried with backoff on 5xx/429/timeouts, given up on other 4xx and after the window, claimed once, resent on
request; the aftercare listener costs one query for orders that are not Open API orders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from kameng.core.errors import ConflictError, NotFoundError
from kameng.core.openapi_signing import openapi_signature_matches
from kameng.orders.models import OrderStatus
from kameng.resellers.models import NotifyAttempt, NotifyDelivery, NotifyState
from kameng.resellers.notify import (
    backoff_seconds,
    notify_aftercare,
    notify_deliver,
    notify_resend,
    order_notify_schedule,
)
from kameng.resellers.tasks import sweep_notifications
from tests.resellers.notify_support import (
    PUBLIC_ADDRESS,
    SECRET,
    Receiver,
    card_order,
    openapi_order,
    receiver,
    reseller_with_key,
)

__all__ = ["receiver"]

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]


def _scheduled(capture: Capture, **order_kwargs: Any) -> NotifyDelivery:
    reseller, key = reseller_with_key()
    order = card_order(reseller)
    openapi_order(order, reseller, key, **order_kwargs)
    with capture(execute=True):
        order_notify_schedule(order_id=order.pk)
    return NotifyDelivery.objects.get()


def _make_due() -> None:
    NotifyDelivery.objects.exclude(next_attempt_at=None).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_delivered_card_order_is_posted_signed_with_its_keys(receiver: Receiver,
                                                             django_capture_on_commit_callbacks: Capture) -> None:
    delivery = _scheduled(django_capture_on_commit_callbacks)

    assert delivery.state == NotifyState.DELIVERED
    assert delivery.finished_at is not None
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    # Connected to the address checked, named by its host for the receiver (and TLS).
    assert request.url.host == PUBLIC_ADDRESS
    assert request.headers["Host"] == "hooks.example.com"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    body = receiver.bodies()[0]
    order = delivery.openapi_order.order
    assert body["order_no"] == order.number
    assert body["request_no"] == "R-1"
    assert body["status"] == "delivered"
    assert len(body["keys"]) == 2
    assert all(key.startswith("KEY-") for key in body["keys"])
    assert "operator_serial" not in body
    assert request.headers["X-Kameng-Key"] == "kmk_test_1"
    assert openapi_signature_matches(secret=SECRET, method="POST", path_with_query="/kameng/notify?shop=7",
                                     headers=dict(request.headers), body=request.content)
    assert not openapi_signature_matches(secret=SECRET, method="POST", path_with_query="/kameng/notify",
                                         headers=dict(request.headers), body=request.content)
    # The keys never rest in the delivery row.
    assert "keys" not in delivery.payload
    assert not any(key in str(delivery.payload) for key in body["keys"])
    attempt = NotifyAttempt.objects.get()
    assert (attempt.attempt_no, attempt.status_code, attempt.response_excerpt, attempt.error) == (1, 200, "ok", "")


def test_scheduling_is_idempotent(receiver: Receiver, django_capture_on_commit_callbacks: Capture) -> None:
    reseller, key = reseller_with_key()
    order = card_order(reseller)
    openapi_order(order, reseller, key)
    with django_capture_on_commit_callbacks(execute=True):
        order_notify_schedule(order_id=order.pk)
    with django_capture_on_commit_callbacks(execute=True):
        order_notify_schedule(order_id=order.pk)
        notify_aftercare(order_ids=[order.pk], event="delivered")

    assert NotifyDelivery.objects.count() == 1
    assert len(receiver.requests) == 1


def test_orders_without_notify_url_or_not_final_are_not_notified(receiver: Receiver) -> None:
    reseller, key = reseller_with_key()
    silent = card_order(reseller)
    openapi_order(silent, reseller, key, notify_url="")
    waiting = card_order(reseller)
    openapi_order(waiting, reseller, key, request_no="R-2")
    waiting.status = OrderStatus.FULFILLING
    waiting.save(update_fields=["status"])

    order_notify_schedule(order_id=silent.pk)
    notify_aftercare(order_ids=[silent.pk, waiting.pk], event="delivered")

    assert NotifyDelivery.objects.count() == 0


def test_aftercare_costs_one_query_for_orders_not_from_the_open_api(receiver: Receiver) -> None:
    reseller, _key = reseller_with_key()
    orders = [card_order(reseller, quantity=1) for _ in range(3)]

    with CaptureQueriesContext(connection) as queries:
        notify_aftercare(order_ids=[order.pk for order in orders], event="delivered")

    assert len(queries) == 1
    assert NotifyDelivery.objects.count() == 0


def test_server_error_is_retried_with_backoff_then_delivered(receiver: Receiver,
                                                             django_capture_on_commit_callbacks: Capture) -> None:
    receiver.answer(503, "busy").answer(429, "slow down")
    delivery = _scheduled(django_capture_on_commit_callbacks)

    assert delivery.state == NotifyState.RETRYING
    assert delivery.attempts == 1
    assert delivery.next_attempt_at is not None
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert backoff_seconds(attempt=1) - 5 < wait <= backoff_seconds(attempt=1)

    assert sweep_notifications() == 0  # not due yet
    _make_due()
    assert sweep_notifications() == 1  # 429: retried again
    delivery.refresh_from_db()
    assert delivery.state == NotifyState.RETRYING
    assert (delivery.next_attempt_at - timezone.now()).total_seconds() > backoff_seconds(attempt=1)

    _make_due()
    sweep_notifications()
    delivery.refresh_from_db()
    assert delivery.state == NotifyState.DELIVERED
    log = list(NotifyAttempt.objects.order_by("attempt_no").values_list("attempt_no", "status_code",
                                                                          "response_excerpt"))
    assert log == [(1, 503, "busy"), (2, 429, "slow down"), (3, 200, "ok")]
    assert len(receiver.requests) == 3


def test_client_error_gives_up_at_once(receiver: Receiver, django_capture_on_commit_callbacks: Capture) -> None:
    receiver.answer(404, "x" * 2000)
    delivery = _scheduled(django_capture_on_commit_callbacks)

    assert delivery.state == NotifyState.GAVE_UP
    assert delivery.next_attempt_at is None
    attempt = NotifyAttempt.objects.get()
    assert attempt.status_code == 404
    assert len(attempt.response_excerpt) == 500
    _make_due()
    assert sweep_notifications() == 0
    assert len(receiver.requests) == 1


def test_timeout_is_retried_and_logged(receiver: Receiver, django_capture_on_commit_callbacks: Capture) -> None:
    receiver.fail(httpx.ReadTimeout("slow"))
    delivery = _scheduled(django_capture_on_commit_callbacks)

    assert delivery.state == NotifyState.RETRYING
    attempt = NotifyAttempt.objects.get()
    assert attempt.status_code is None
    assert attempt.error.startswith("超时")


def test_retries_stop_after_the_window(receiver: Receiver, django_capture_on_commit_callbacks: Capture,
                                       settings: Any) -> None:
    settings.KAMENG_NOTIFY_BACKOFF_FIRST_SECONDS = 10
    settings.KAMENG_NOTIFY_BACKOFF_MAX_SECONDS = 40
    settings.KAMENG_NOTIFY_RETRY_WINDOW_SECONDS = 100  # waits 10, 20, 40 (70) then 40 more would pass it
    for _ in range(10):
        receiver.answer(500)
    delivery = _scheduled(django_capture_on_commit_callbacks)
    for _ in range(6):
        _make_due()
        sweep_notifications()

    delivery.refresh_from_db()
    assert delivery.state == NotifyState.GAVE_UP
    assert NotifyAttempt.objects.count() == 4
    assert len(receiver.requests) == 4


def test_the_default_window_is_a_day() -> None:
    waits = [backoff_seconds(attempt=number) for number in range(1, 40)]
    total = 0
    for wait in waits:
        if total + wait > 24 * 3600:
            break
        total += wait
    assert 23 * 3600 < total <= 24 * 3600
    assert waits[0] == 15
    assert max(waits) == 3600


def test_a_claimed_attempt_is_not_sent_twice(receiver: Receiver) -> None:
    reseller, key = reseller_with_key()
    order = card_order(reseller)
    openapi_order(order, reseller, key)
    order_notify_schedule(order_id=order.pk)  # no commit in this test: nothing sent yet
    delivery = NotifyDelivery.objects.get()
    receiver.answer(500)

    assert notify_deliver(delivery_id=delivery.pk) == NotifyState.RETRYING
    # A second worker holding the same due id: the claim (due time, attempts seen) no longer matches.
    assert notify_deliver(delivery_id=delivery.pk) == ""
    NotifyDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    # The claim compares the attempts count seen, so a stale reader loses even when the row is due again.
    stale = NotifyDelivery.objects.filter(pk=delivery.pk, attempts=0).update(attempts=1)
    assert stale == 0
    assert len(receiver.requests) == 1


def test_gave_up_delivery_can_be_resent_by_its_reseller_only(receiver: Receiver,
                                                             django_capture_on_commit_callbacks: Capture) -> None:
    receiver.answer(410, "gone")
    delivery = _scheduled(django_capture_on_commit_callbacks)
    assert delivery.state == NotifyState.GAVE_UP
    other, _ = reseller_with_key(key_id="kmk_other")

    with pytest.raises(NotFoundError):
        notify_resend(delivery_id=delivery.pk, reseller_id=other.pk)
    with django_capture_on_commit_callbacks(execute=True):
        notify_resend(delivery_id=delivery.pk, reseller_id=delivery.openapi_order.reseller_id)

    delivery.refresh_from_db()
    assert delivery.state == NotifyState.DELIVERED
    assert list(NotifyAttempt.objects.order_by("attempt_no").values_list("attempt_no", "status_code")) == [
        (1, 410), (2, 200)]
    with pytest.raises(ConflictError):
        notify_resend(delivery_id=delivery.pk)


def test_private_target_is_refused_and_given_up(receiver: Receiver,
                                                django_capture_on_commit_callbacks: Capture) -> None:
    receiver.addresses["hooks.example.com"] = ["10.1.2.3"]
    delivery = _scheduled(django_capture_on_commit_callbacks)

    assert delivery.state == NotifyState.GAVE_UP
    assert receiver.requests == []
    assert "内网" in NotifyAttempt.objects.get().error


def test_unresolvable_target_is_retried(receiver: Receiver, django_capture_on_commit_callbacks: Capture) -> None:
    delivery = _scheduled(django_capture_on_commit_callbacks, notify_url="https://nowhere.example.net/cb")

    assert delivery.state == NotifyState.RETRYING
    assert "无法解析" in NotifyAttempt.objects.get().error


def test_deleted_key_gives_up(receiver: Receiver, django_capture_on_commit_callbacks: Capture) -> None:
    reseller, _key = reseller_with_key()
    order = card_order(reseller)
    openapi_order(order, reseller, None)
    with django_capture_on_commit_callbacks(execute=True):
        order_notify_schedule(order_id=order.pk)

    assert NotifyDelivery.objects.get().state == NotifyState.GAVE_UP
    assert receiver.requests == []


def test_refund_after_delivery_is_notified_too(receiver: Receiver,
                                               django_capture_on_commit_callbacks: Capture) -> None:
    delivery = _scheduled(django_capture_on_commit_callbacks)
    order = delivery.openapi_order.order
    order.status = OrderStatus.REFUNDED
    order.save(update_fields=["status"])
    with django_capture_on_commit_callbacks(execute=True):
        notify_aftercare(order_ids=[order.pk], event="refunded")

    assert sorted(NotifyDelivery.objects.values_list("status", flat=True)) == ["delivered", "refunded"]
    refunded = receiver.bodies()[-1]
    assert refunded["status"] == "refunded"
    assert "keys" not in refunded


def test_an_unknown_order_schedules_nothing() -> None:
    order_notify_schedule(order_id=987654)
    assert NotifyDelivery.objects.count() == 0
