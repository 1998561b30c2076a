"""The dispatcher's pools on real PostgreSQL: many attempts in flight at once in one process, each submitted once
and its outcome written, the database touched by a few threads only (kameng.suppliers.dispatch)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from pytest_django.fixtures import Settings

from kameng.suppliers import topup
from kameng.suppliers.connectors.base import TopupRequest
from kameng.suppliers.dispatch import attempts_submit, dispatcher_stop
from kameng.suppliers.models import AttemptStatus, TopupAttempt
from tests.concurrency.threads import requires_postgresql
from tests.suppliers.topup_support import Upstreams, topup_order_paid, topup_sku, upstreams

__all__ = ["upstreams"]

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ORDERS = 40
LATENCY_SECONDS = 0.2


@pytest.fixture(autouse=True)
def _postgresql_only() -> Iterator[None]:
    requires_postgresql()
    yield
    dispatcher_stop()


def test_attempts_are_submitted_concurrently_once_each(upstreams: Upstreams, monkeypatch: pytest.MonkeyPatch,
                                                      settings: Settings) -> None:
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("甲", sku, "48.00")
    with monkeypatch.context() as patch:
        patch.setattr(topup, "_dispatch", lambda attempt_id: None)
        orders = [topup_order_paid(sku) for _ in range(ORDERS)]
    ids = list(TopupAttempt.objects.filter(order__in=orders).values_list("pk", flat=True))
    in_flight = {"now": 0, "most": 0}
    guard = threading.Lock()

    def slow(_request: TopupRequest) -> None:
        # Runs inside the upstream's own lock: release it while "on the wire" so calls overlap.
        upstream.lock.release()
        try:
            with guard:
                in_flight["now"] += 1
                in_flight["most"] = max(in_flight["most"], in_flight["now"])
            time.sleep(LATENCY_SECONDS)
            with guard:
                in_flight["now"] -= 1
        finally:
            upstream.lock.acquire()

    upstream.on_submit = slow
    settings.CELERY_TASK_ALWAYS_EAGER = False

    started = time.monotonic()
    attempts_submit(attempt_ids=ids, wait=True)
    elapsed = time.monotonic() - started

    assert sorted(upstream.submits.values()) == [1] * ORDERS
    assert set(TopupAttempt.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        AttemptStatus.PROCESSING}
    assert in_flight["most"] >= 10
    assert elapsed < ORDERS * LATENCY_SECONDS  # one after another it would take this long at least
