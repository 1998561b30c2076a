"""The dispatcher's pools on real PostgreSQL: many attempts in flight at once in one process, each submitted once
and its outcome written, the database touched by a few threads only (kameng.suppliers.dispatch)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from pytest_django.fixtures import Settings

from kameng.simulators.supplier.app import SupplierSimulatorApp
from kameng.simulators.supplier.core import Knobs, Merchant, SupplierSimulator
from kameng.simulators.supplier.server import serve
from kameng.suppliers import topup
from kameng.suppliers.connectors.base import TopupRequest
from kameng.suppliers.dispatch import attempts_submit, dispatcher_stop
from kameng.suppliers.models import AttemptStatus, ConnectorKind, TopupAttempt
from tests.concurrency.threads import requires_postgresql
from tests.factories import SupplierFactory, SupplierOfferFactory
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


def _simulator_started(simulator: SupplierSimulator) -> tuple[int, asyncio.AbstractEventLoop, asyncio.Event,
                                                              threading.Thread]:
    """The supplier simulator's HTTP server on a free port, on an event loop of its own thread."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve(SupplierSimulatorApp(simulator), host="127.0.0.1", port=port,
                                      ready=ready.set, stop=stop))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    return port, loop, stop, thread


def test_fulu_attempts_are_sent_from_the_event_loop_once_each(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                                             upstreams: Upstreams) -> None:
    """The path bench/topup.py runs: a Fulu connector (coroutines), requests signed in the claim thread, a claimed
    batch started on the dispatcher's event loop at once; against the simulator at 200 ms, every number is sent
    exactly once, its answer written, the calls overlapping."""
    simulator = SupplierSimulator(merchants=[Merchant(app_key="k", app_secret="s")],
                                  knobs=Knobs(latency_ms=LATENCY_SECONDS * 1000, process_ms=60_000), seed=1)
    port, loop, stop, thread = _simulator_started(simulator)
    try:
        sku = topup_sku("50.00")
        supplier = SupplierFactory.create(name="福禄", connector_kind=ConnectorKind.FULU, connector_config=json.dumps(
            {"gateway_url": f"http://127.0.0.1:{port}/api/getway", "app_key": "k", "app_secret": "s"}))
        SupplierOfferFactory.create(supplier=supplier, sku=sku, price=Decimal("49.00"), upstream_product_id="10050")
        with monkeypatch.context() as patch:
            patch.setattr(topup, "_dispatch", lambda attempt_id: None)
            orders = [topup_order_paid(sku) for _ in range(ORDERS)]
        ids = list(TopupAttempt.objects.filter(order__in=orders).values_list("pk", flat=True))
        settings.CELERY_TASK_ALWAYS_EAGER = False

        started = time.monotonic()
        attempts_submit(attempt_ids=ids, wait=True)
        elapsed = time.monotonic() - started
    finally:
        dispatcher_stop()
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)

    numbers = set(TopupAttempt.objects.filter(pk__in=ids).values_list("customer_order_no", flat=True))
    assert set(simulator.submissions) == numbers
    assert set(simulator.submissions.values()) == {1}
    assert set(TopupAttempt.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        AttemptStatus.PROCESSING}
    assert set(TopupAttempt.objects.filter(pk__in=ids).values_list("submit_count", flat=True)) == {1}
    assert elapsed < ORDERS * LATENCY_SECONDS / 4  # one after another: 8 s; overlapping: about one latency
