"""Restock requests: raised once at the threshold (not one above), closed when the stock is back, told to the
supplier by a signed webhook (every attempt stored, retried with backoff, not on 4xx) and by e-mail."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.core import mail
from django.utils import timezone

from kameng.accounts.models import User
from kameng.inventory.models import CardKey
from kameng.orders.services import order_checkout
from kameng.suppliers import restock_notify
from kameng.suppliers.models import (
    OfferStockSource,
    RestockRequest,
    RestockStatus,
    RestockWebhookAttempt,
    SupplierOffer,
    WebhookStatus,
)
from kameng.suppliers.restock import restock_check, restock_orders_delivered
from kameng.suppliers.restock_notify import restock_email_send, restock_webhook_deliver, restock_webhooks_due
from tests.factories import SkuFactory, SupplierFactory, SupplierOfferFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db

HOOK = {"webhook_url": "https://supplier.example/hooks/restock", "webhook_secret": "hook-secret"}


def upstream_offer(stock: int | None, *, threshold: int = 5, config: dict[str, str] | None = None) -> SupplierOffer:
    supplier = SupplierFactory.create(connector_config=json.dumps(config) if config else None)
    sku = SkuFactory.create(product__low_stock_threshold=threshold)
    return SupplierOfferFactory.create(supplier=supplier, sku=sku, upstream_stock=stock)


def card_key_offer(keys: int, *, threshold: int = 3) -> SupplierOffer:
    sku = SkuFactory.create(product__low_stock_threshold=threshold)
    offer = SupplierOfferFactory.create(sku=sku, stock_source=OfferStockSource.CARD_KEYS, upstream_product_id="")
    stock_sku(sku, keys + 2)
    # The platform's own keys (no supplier) and one voided key of the supplier do not count.
    mine = list(CardKey.objects.filter(sku=sku).order_by("pk").values_list("pk", flat=True)[:keys + 1])
    CardKey.objects.filter(pk__in=mine).update(supplier=offer.supplier)
    CardKey.objects.filter(pk=mine[-1]).update(status="void")
    return offer


@pytest.mark.parametrize(("stock", "raised"), [(5, 1), (6, 0), (0, 1)])
def test_an_upstream_offer_is_asked_to_restock_at_the_threshold(stock: int, raised: int) -> None:
    offer = upstream_offer(stock, threshold=5)

    restock_check()

    assert RestockRequest.objects.filter(offer=offer).count() == raised


@pytest.mark.parametrize(("keys", "raised"), [(3, 1), (4, 0)])
def test_a_card_key_offer_counts_only_the_suppliers_available_keys(keys: int, raised: int) -> None:
    offer = card_key_offer(keys, threshold=3)

    restock_check()

    requests = list(RestockRequest.objects.filter(offer=offer))
    assert len(requests) == raised
    if raised:
        assert (requests[0].stock_at_raise, requests[0].threshold, requests[0].supplier_id) == (
            3, 3, offer.supplier_id)


def test_an_open_request_is_not_raised_twice() -> None:
    offer = upstream_offer(2)

    assert len(restock_check()) == 1
    assert restock_check() == []
    RestockRequest.objects.filter(offer=offer).update(status=RestockStatus.ACKNOWLEDGED)
    assert restock_check() == []

    assert RestockRequest.objects.filter(offer=offer).count() == 1


def test_a_request_closes_when_the_stock_is_back_and_a_new_one_comes_with_the_next_shortage() -> None:
    offer = upstream_offer(2)
    restock_check()
    SupplierOffer.objects.filter(pk=offer.pk).update(upstream_stock=50)

    restock_check()

    first = RestockRequest.objects.get(offer=offer)
    assert first.status == RestockStatus.RESTOCKED
    assert first.restocked_at is not None
    SupplierOffer.objects.filter(pk=offer.pk).update(upstream_stock=1)
    restock_check()
    assert RestockRequest.objects.filter(offer=offer, status=RestockStatus.OPEN).count() == 1


def test_offers_of_unknown_stock_inactive_or_unapproved_are_left_alone() -> None:
    upstream_offer(None)
    SupplierOfferFactory.create(upstream_stock=0, is_active=False)
    SupplierOfferFactory.create(upstream_stock=0, supplier__status="suspended")

    assert restock_check() == []
    assert RestockRequest.objects.count() == 0


def test_a_sale_checks_the_sold_skus_in_a_task() -> None:
    offer = card_key_offer(4, threshold=3)
    buyer = UserFactory.create()
    fund_wallet(buyer, "100")
    mine = CardKey.objects.filter(supplier=offer.supplier, status="available").order_by("pk")
    CardKey.objects.filter(sku=offer.sku).exclude(pk__in=mine.values("pk")).update(status="void")
    order = order_checkout(buyer_id=buyer.pk, sku_id=offer.sku_id, quantity=1).order
    assert RestockRequest.objects.count() == 0

    restock_orders_delivered(order_ids=[order.pk], event="delivered")

    assert RestockRequest.objects.get(offer=offer).stock_at_raise == 3


Handler = Callable[[httpx.Request], httpx.Response]


def hook(monkeypatch: pytest.MonkeyPatch, handler: Handler) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    monkeypatch.setattr(restock_notify, "webhook_transport", httpx.MockTransport(receive))
    return seen


def raised_with_webhook(django_capture_on_commit_callbacks: Any) -> RestockRequest:
    upstream_offer(1, config=HOOK)
    with django_capture_on_commit_callbacks(execute=False):
        restock_check()
    return RestockRequest.objects.get()


def test_the_webhook_is_signed_and_stored(monkeypatch: pytest.MonkeyPatch,
                                          django_capture_on_commit_callbacks: Any) -> None:
    request = raised_with_webhook(django_capture_on_commit_callbacks)
    seen = hook(monkeypatch, lambda r: httpx.Response(204))

    assert restock_webhook_deliver(request_id=request.pk) == WebhookStatus.DELIVERED

    sent = seen[0]
    stamp = sent.headers["X-Kameng-Timestamp"]
    expected = hmac.new(b"hook-secret", stamp.encode() + b"." + sent.content, hashlib.sha256).hexdigest()
    assert sent.headers["X-Kameng-Signature"] == expected
    assert str(sent.url) == HOOK["webhook_url"]
    payload = json.loads(sent.content)
    assert (payload["event"], payload["request_id"], payload["stock"], payload["threshold"]) == (
        "restock.requested", request.pk, 1, 5)
    attempts = list(RestockWebhookAttempt.objects.filter(request=request).values_list("number", "status_code"))
    assert attempts == [(1, 204)]
    request.refresh_from_db()
    assert (request.webhook_status, request.webhook_attempt_count, request.webhook_next_at) == (
        WebhookStatus.DELIVERED, 1, None)
    assert restock_webhook_deliver(request_id=request.pk) == ""
    assert len(seen) == 1


def test_a_failing_webhook_is_retried_with_backoff_then_given_up(monkeypatch: pytest.MonkeyPatch,
                                                                 django_capture_on_commit_callbacks: Any) -> None:
    request = raised_with_webhook(django_capture_on_commit_callbacks)

    def down(r: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=r)

    seen = hook(monkeypatch, lambda r: httpx.Response(503))
    before = timezone.now()
    assert restock_webhook_deliver(request_id=request.pk) == WebhookStatus.PENDING
    request.refresh_from_db()
    assert request.webhook_next_at is not None
    assert timedelta(seconds=29) < request.webhook_next_at - before < timedelta(seconds=31)
    # Not due yet: nothing is sent, whoever asks.
    assert restock_webhook_deliver(request_id=request.pk) == ""
    assert restock_webhooks_due() == []

    seen_down = hook(monkeypatch, down)
    for attempt in range(2, 7):
        RestockRequest.objects.filter(pk=request.pk).update(webhook_next_at=timezone.now())
        assert restock_webhooks_due() == [request.pk]
        status = restock_webhook_deliver(request_id=request.pk)
        assert status == (WebhookStatus.GIVEN_UP if attempt == 6 else WebhookStatus.PENDING)

    assert len(seen) == 1
    assert len(seen_down) == 5
    attempts = list(RestockWebhookAttempt.objects.filter(request=request)
                    .values_list("number", "status_code", "error"))
    assert attempts == [(1, 503, ""), *[(n, None, "ConnectError") for n in range(2, 7)]]
    request.refresh_from_db()
    assert (request.webhook_status, request.webhook_attempt_count, request.webhook_next_at) == (
        WebhookStatus.GIVEN_UP, 6, None)


def test_a_webhook_refused_with_4xx_is_not_retried(monkeypatch: pytest.MonkeyPatch,
                                                   django_capture_on_commit_callbacks: Any) -> None:
    request = raised_with_webhook(django_capture_on_commit_callbacks)
    seen = hook(monkeypatch, lambda r: httpx.Response(410))

    assert restock_webhook_deliver(request_id=request.pk) == WebhookStatus.FAILED
    RestockRequest.objects.filter(pk=request.pk).update(webhook_next_at=timezone.now())

    assert restock_webhook_deliver(request_id=request.pk) == ""
    assert len(seen) == 1
    assert restock_webhooks_due() == []
    assert RestockWebhookAttempt.objects.filter(request=request).count() == 1


def test_a_supplier_without_a_webhook_gets_none(monkeypatch: pytest.MonkeyPatch) -> None:
    upstream_offer(1)
    seen = hook(monkeypatch, lambda r: httpx.Response(200))

    restock_check()

    request = RestockRequest.objects.get()
    assert (request.webhook_status, request.webhook_next_at) == (WebhookStatus.NONE, None)
    assert restock_webhook_deliver(request_id=request.pk) == ""
    assert seen == []


def test_raising_notifies_after_commit_by_webhook_and_email(monkeypatch: pytest.MonkeyPatch,
                                                            django_capture_on_commit_callbacks: Any) -> None:
    offer = upstream_offer(1, config={**HOOK, "notify_email": "stock@supplier.example"})
    seen = hook(monkeypatch, lambda r: httpx.Response(200))

    with django_capture_on_commit_callbacks(execute=True):
        restock_check()

    assert len(seen) == 1
    assert [message.to for message in mail.outbox] == [["stock@supplier.example"]]
    assert offer.sku.product.name in mail.outbox[0].subject
    request = RestockRequest.objects.get()
    assert request.email_sent_at is not None
    assert restock_email_send(request_id=request.pk) is False
    assert len(mail.outbox) == 1


def test_the_email_falls_back_to_the_suppliers_login_address() -> None:
    offer = upstream_offer(1)
    User.objects.filter(pk=offer.supplier.owner_id).update(email="owner@supplier.example")
    restock_check()

    assert restock_email_send(request_id=RestockRequest.objects.get().pk) is True
    assert [message.to for message in mail.outbox] == [["owner@supplier.example"]]



def test_a_sale_of_the_platforms_own_stock_sends_no_task(monkeypatch: pytest.MonkeyPatch) -> None:
    from kameng.suppliers import tasks
    from tests.factories import SkuFactory, stock_sku

    sent: list[list[int]] = []
    monkeypatch.setattr(tasks.check_restock_skus, "delay", sent.append)
    sku = SkuFactory.create()
    stock_sku(sku, 2)
    buyer = UserFactory.create()
    fund_wallet(buyer, "100")
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order

    restock_orders_delivered(order_ids=[order.pk], event="delivered")

    assert sent == []
