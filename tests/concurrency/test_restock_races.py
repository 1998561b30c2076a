"""Restock requests under concurrent checks and deliveries (several workers at once): one open request per offer,
one webhook POST per due attempt."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
from django.utils import timezone

from kameng.suppliers import restock_notify
from kameng.suppliers.models import RestockRequest, RestockWebhookAttempt, WebhookStatus
from kameng.suppliers.restock import restock_check
from kameng.suppliers.restock_notify import restock_webhook_deliver
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.factories import SkuFactory, SupplierFactory, SupplierOfferFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_eight_concurrent_checks_raise_one_request() -> None:
    requires_postgresql()
    offer = SupplierOfferFactory.create(sku=SkuFactory.create(product__low_stock_threshold=5), upstream_stock=2)

    outcomes = run_in_threads(8, lambda _index: restock_check())

    assert unexpected(outcomes) == []
    assert RestockRequest.objects.filter(offer=offer).count() == 1
    assert sorted(len(outcome.value or []) for outcome in outcomes) == [0] * 7 + [1]


def test_eight_concurrent_deliveries_post_the_webhook_once(monkeypatch: pytest.MonkeyPatch) -> None:
    requires_postgresql()
    supplier = SupplierFactory.create(connector_config=json.dumps(
        {"webhook_url": "https://supplier.example/hook", "webhook_secret": "s"}))
    offer = SupplierOfferFactory.create(supplier=supplier, upstream_stock=0)
    request = RestockRequest.objects.create(offer=offer, supplier=supplier, stock_at_raise=0, threshold=10,
                                            webhook_status=WebhookStatus.PENDING, webhook_next_at=timezone.now())
    posts: list[httpx.Request] = []
    lock = threading.Lock()

    def receive(sent: httpx.Request) -> httpx.Response:
        with lock:
            posts.append(sent)
        return httpx.Response(200)

    monkeypatch.setattr(restock_notify, "webhook_transport", httpx.MockTransport(receive))

    outcomes = run_in_threads(8, lambda _index: restock_webhook_deliver(request_id=request.pk))

    assert unexpected(outcomes) == []
    assert len(posts) == 1
    assert sorted(outcome.value or "" for outcome in outcomes) == [""] * 7 + ["delivered"]
    assert RestockWebhookAttempt.objects.filter(request=request).count() == 1
