"""The site-to-site docking connector (kind "kameng") against a fake upstream kameng site written to the Open API v1
contract (issue 11): signed calls, goods sync, submit with our number as request_no, a timeout queried (never
resubmitted), a refusal failed over, card keys from the answer, callbacks verified (forged, replayed, stale,
signed for another URL: refused)."""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.test import Client
from django.urls import reverse

from kameng.core.openapi_signing import openapi_signature_matches, openapi_signed_headers
from kameng.orders.models import OrderStatus
from kameng.suppliers.connectors import kameng as kameng_connector
from kameng.suppliers.connectors.base import Outcome, TopupKind, TopupRequest
from kameng.suppliers.connectors.kameng import KamengConnector
from kameng.suppliers.connectors.registry import connector_for
from kameng.suppliers.dispatch import topup_attempts_sweep
from kameng.suppliers.models import AttemptStatus, ConnectorKind, Supplier, SupplierOffer, TopupAttempt
from kameng.suppliers.sync import supplier_sync_pull
from tests.factories import SupplierFactory, SupplierOfferFactory
from tests.suppliers.topup_support import fulfil, topup_order_paid, topup_sku

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]
KEY_ID, SECRET = "kmk_downstream", "downstream-secret-abcdef0123456789"

# What the fake site does with a new order (script steps):
DELIVER = "deliver"  # delivered at once (keys for a card-key SKU, an operator serial for a top-up)
PROCESS = "process"  # accepted, fulfilling; a later query finds it delivered
SOLD_OUT = "sold_out"  # 409 sold_out: nothing created
TIMEOUT_AFTER_ACCEPT = "timeout_after_accept"  # created (and delivered), the answer lost
SERVER_ERROR = "server_error"  # 500, nothing created
REFUND = "refund"  # accepted, then failed and refunded there


@dataclass
class FakeSite:
    """Another kameng site's Open API v1, as the contract describes it, behind an httpx transport."""

    host: str
    base_path: str = "/openapi/v1"
    products: list[dict[str, Any]] = field(default_factory=list)
    script: deque[str] = field(default_factory=deque)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    posts: list[dict[str, Any]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    nonces: set[str] = field(default_factory=set)
    unauthorized: int = 0

    @property
    def base_url(self) -> str:
        return f"https://{self.host}{self.base_path}"

    def _error(self, status: int, code: str, message: str) -> httpx.Response:
        return httpx.Response(status, json={"code": code, "message": message})

    def handle(self, request: httpx.Request) -> httpx.Response:
        path_with_query = request.url.raw_path.decode()
        headers = dict(request.headers)
        nonce = request.headers.get("X-Kameng-Nonce", "")
        if (request.headers.get("X-Kameng-Key") != KEY_ID or nonce in self.nonces
                or not openapi_signature_matches(secret=SECRET, method=request.method,
                                                 path_with_query=path_with_query, headers=headers,
                                                 body=request.content)):
            self.unauthorized += 1
            return self._error(401, "unauthorized", "签名无效")
        self.nonces.add(nonce)
        path = urlsplit(path_with_query).path.removeprefix(self.base_path)
        if request.method == "GET" and path == "/products":
            return httpx.Response(200, json=self.products)
        if request.method == "POST" and path == "/orders":
            return self._create(json.loads(request.content))
        if request.method == "GET" and path == "/orders":
            request_no = parse_qs(urlsplit(path_with_query).query)["request_no"][0]
            self.queries.append(request_no)
            if request_no not in self.orders:
                return self._error(404, "not_found", "订单不存在")
            return httpx.Response(200, json=self.orders[request_no])
        return self._error(404, "not_found", "没有这个接口")

    def _create(self, body: dict[str, Any]) -> httpx.Response:
        self.posts.append(body)
        request_no = body["request_no"]
        if request_no in self.orders:  # the contract: the same request again returns the same order
            return httpx.Response(200, json=self.orders[request_no])
        step = self.script.popleft() if self.script else DELIVER
        if step == SOLD_OUT:
            return self._error(409, "sold_out", "已售罄")
        if step == SERVER_ERROR:
            return self._error(500, "server_error", "服务器错误")
        card = str(body["sku_id"]) == "900"
        order = {"order_no": f"UP{len(self.orders) + 1:06d}", "request_no": request_no, "sku_id": body["sku_id"],
                 "quantity": body["quantity"], "amount": "45.00", "status": "delivered", "keys": []}
        if step in (DELIVER, TIMEOUT_AFTER_ACCEPT):
            if card:
                order["keys"] = [f"UPKEY-{request_no}-{index}" for index in range(body["quantity"])]
        else:
            order["status"] = "fulfilling"
        self.orders[request_no] = order
        if step == TIMEOUT_AFTER_ACCEPT:
            raise httpx.ReadTimeout("the answer was lost")
        answer = dict(order)
        if step == PROCESS:
            order["status"] = "delivered"  # what a later query finds
        if step == REFUND:
            order["status"] = "refunded"
        return httpx.Response(201, json=answer)


@dataclass
class Sites:
    by_host: dict[str, FakeSite] = field(default_factory=dict)

    def handle(self, request: httpx.Request) -> httpx.Response:
        return self.by_host[request.url.host].handle(request)

    def supplier(self, host: str) -> tuple[Supplier, FakeSite]:
        site = self.by_host.setdefault(host, FakeSite(host=host))
        supplier = SupplierFactory.create(name=host, connector_kind=ConnectorKind.KAMENG, connector_config=json.dumps(
            {"base_url": site.base_url, "key_id": KEY_ID, "secret": SECRET}))
        return supplier, site


@pytest.fixture
def sites(monkeypatch: pytest.MonkeyPatch) -> Sites:
    fake = Sites()
    monkeypatch.setattr(kameng_connector, "transport", httpx.MockTransport(fake.handle))
    return fake


def _offer(sites: Sites, host: str, sku: Any, price: str, product_id: str = "501") -> tuple[SupplierOffer, FakeSite]:
    supplier, site = sites.supplier(host)
    return SupplierOfferFactory.create(supplier=supplier, sku=sku, price=Decimal(price),
                                       upstream_product_id=product_id), site


def _due() -> None:
    from datetime import timedelta

    from django.utils import timezone

    past = timezone.now() - timedelta(seconds=1)
    TopupAttempt.objects.exclude(next_check_at=None).update(next_check_at=past,
                                                          submitted_at=past - timedelta(hours=1))


def test_goods_sync_from_the_products_list(sites: Sites) -> None:
    sku = topup_sku()
    offer, site = _offer(sites, "up.example.com", sku, "49.00")
    site.products = [
        {"sku_id": 501, "product_name": "中国移动话费", "sku_name": "50 元", "price": "46.50", "stock": None,
         "delivery_kind": "direct_topup"},
        {"sku_id": 900, "product_name": "点卡", "sku_name": "10 元", "price": "9.10", "stock": 0,
         "delivery_kind": "card_key"},
        {"sku_id": 901, "product_name": "坏数据", "price": "abc"},
    ]

    result = supplier_sync_pull(supplier_id=offer.supplier_id)

    assert result is not None
    assert (result.updated, result.unknown_products) == (1, ["900"])
    offer.refresh_from_db()
    assert (offer.price, offer.upstream_stock) == (Decimal("46.50"), None)
    goods = connector_for(offer.supplier).goods_list()
    assert [(item.product_id, item.name, item.stock, item.is_available) for item in goods] == [
        ("501", "中国移动话费 50 元", None, True), ("900", "点卡 10 元", 0, False)]


def test_order_is_submitted_signed_with_our_number_and_delivered(
        sites: Sites, django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku()
    offer, site = _offer(sites, "up.example.com", sku, "45.00")
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)

    assert order.status == OrderStatus.DELIVERED
    attempt = TopupAttempt.objects.get(order=order)
    assert (attempt.status, attempt.supplier_order_id) == (AttemptStatus.SUCCEEDED, "UP000001")
    post = site.posts[0]
    assert post["request_no"] == attempt.customer_order_no == f"{order.number}-1"
    assert (post["sku_id"], post["quantity"], post["recharge_account"]) == (501, 1, "13800138000")
    assert post["notify_url"].endswith(reverse("suppliers:callback", args=[offer.supplier_id]))
    assert site.unauthorized == 0


def test_timeout_is_queried_never_resubmitted(sites: Sites, django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku()
    _offer(sites, "up.example.com", sku, "45.00")[1].script.append(TIMEOUT_AFTER_ACCEPT)
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)
    attempt = TopupAttempt.objects.get(order=order)
    assert (order.status, attempt.status) == (OrderStatus.FULFILLING, AttemptStatus.UNKNOWN)

    _due()
    topup_attempts_sweep()

    order.refresh_from_db()
    attempt.refresh_from_db()
    site = sites.by_host["up.example.com"]
    assert (order.status, attempt.status) == (OrderStatus.DELIVERED, AttemptStatus.SUCCEEDED)
    assert len(site.posts) == 1
    assert site.queries == [attempt.customer_order_no]


def test_server_error_is_unknown_then_not_found_resubmits_the_same_number(
        sites: Sites, django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku()
    _offer(sites, "up.example.com", sku, "45.00")[1].script.append(SERVER_ERROR)
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)
    attempt = TopupAttempt.objects.get(order=order)
    assert attempt.status == AttemptStatus.UNKNOWN

    _due()
    with django_capture_on_commit_callbacks(execute=True):
        topup_attempts_sweep()  # the query: 404 not_found → submitted again (after commit), the same request_no

    order.refresh_from_db()
    site = sites.by_host["up.example.com"]
    assert order.status == OrderStatus.DELIVERED
    assert [post["request_no"] for post in site.posts] == [attempt.customer_order_no] * 2
    assert len(site.orders) == 1


def test_refusal_fails_over_to_the_next_supplier(sites: Sites, django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku()
    _offer(sites, "cheap.example.com", sku, "44.00")[1].script.append(SOLD_OUT)
    _offer(sites, "second.example.com", sku, "46.00")
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)

    assert order.status == OrderStatus.DELIVERED
    attempts = list(TopupAttempt.objects.filter(order=order).order_by("sequence").values_list(
        "supplier__name", "status", "failure_code"))
    assert attempts == [("cheap.example.com", AttemptStatus.FAILED, "sold_out"),
                        ("second.example.com", AttemptStatus.SUCCEEDED, "")]
    assert sites.by_host["cheap.example.com"].orders == {}


def test_upstream_refund_is_a_confirmed_failure(sites: Sites, django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku()
    _offer(sites, "up.example.com", sku, "45.00")[1].script.append(REFUND)
    order = fulfil(topup_order_paid(sku), django_capture_on_commit_callbacks)
    assert TopupAttempt.objects.get(order=order).status == AttemptStatus.PROCESSING

    _due()
    topup_attempts_sweep()

    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED  # no other offer: the buyer's money back, once
    assert TopupAttempt.objects.get(order=order).status == AttemptStatus.FAILED


def test_card_order_answer_carries_the_keys(sites: Sites) -> None:
    supplier, _site = sites.supplier("up.example.com")
    connector = connector_for(supplier)

    answer = connector.topup_submit(TopupRequest(customer_order_no="K-1", kind=TopupKind.CARD,
                                                 upstream_product_id="900", quantity=2))

    assert answer.outcome == Outcome.SUCCEEDED
    assert answer.cards == ("UPKEY-K-1-0", "UPKEY-K-1-1")
    assert connector.topup_query("K-1").cards == answer.cards
    assert connector.topup_query("K-2").outcome == Outcome.NOT_FOUND


def test_wrong_secret_is_refused_and_never_unknown_order(sites: Sites) -> None:
    site = FakeSite(host="up.example.com")
    sites.by_host[site.host] = site
    connector = KamengConnector({"base_url": site.base_url, "key_id": KEY_ID, "secret": "wrong"})

    answer = connector.topup_submit(TopupRequest(customer_order_no="X-1", kind=TopupKind.DIRECT,
                                                 upstream_product_id="501", quantity=1, charge_account="a"))

    assert (answer.outcome, answer.may_try_next, answer.code) == (Outcome.FAILED, True, "unauthorized")
    assert site.orders == {}


def test_missing_config_refuses_before_sending() -> None:
    answer = KamengConnector({}).topup_submit(TopupRequest(customer_order_no="X-1", kind=TopupKind.DIRECT,
                                                           upstream_product_id="501", quantity=1))
    assert (answer.outcome, answer.may_try_next) == (Outcome.FAILED, True)


# --- callbacks -------------------------------------------------------------------------------------------------

def _processing_order(sites: Sites, capture: Capture) -> tuple[TopupAttempt, Supplier]:
    sku = topup_sku()
    offer, site = _offer(sites, "up.example.com", sku, "45.00")
    site.script.append(PROCESS)
    order = fulfil(topup_order_paid(sku), capture)
    attempt = TopupAttempt.objects.get(order=order)
    assert attempt.status == AttemptStatus.PROCESSING
    return attempt, offer.supplier


def _callback(client: Client, supplier_id: int, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(reverse("suppliers:callback", args=[supplier_id]), data=body,
                       content_type="application/json", headers=headers)


def _signed(body: bytes, *, supplier_id: int, secret: str = SECRET, key_id: str = KEY_ID,
            now: float | None = None) -> dict[str, str]:
    return openapi_signed_headers(key_id=key_id, secret=secret, method="POST",
                                  path_with_query=reverse("suppliers:callback", args=[supplier_id]), body=body,
                                  now=now)


def test_signed_callback_delivers(sites: Sites, client: Client, django_capture_on_commit_callbacks: Capture) -> None:
    attempt, supplier = _processing_order(sites, django_capture_on_commit_callbacks)
    body = json.dumps({"order_no": "UP000001", "request_no": attempt.customer_order_no, "status": "delivered",
                       "operator_serial": "OP-778"}).encode()

    response = _callback(client, supplier.pk, body, _signed(body, supplier_id=supplier.pk))

    assert (response.status_code, response.content) == (200, b"success")
    attempt.refresh_from_db()
    assert (attempt.status, attempt.operator_serial) == (AttemptStatus.SUCCEEDED, "OP-778")
    assert attempt.order.status == OrderStatus.DELIVERED
    # The same callback again (same nonce): refused, nothing changes.
    assert _callback(client, supplier.pk, body, _signed(body, supplier_id=supplier.pk)).status_code == 200
    headers = _signed(body, supplier_id=supplier.pk)
    assert _callback(client, supplier.pk, body, headers).status_code == 200
    assert _callback(client, supplier.pk, body, headers).status_code == 400


@pytest.mark.parametrize("forgery", ["secret", "key_id", "body", "other_url", "stale"])
def test_forged_callbacks_are_refused(forgery: str, sites: Sites, client: Client,
                                      django_capture_on_commit_callbacks: Capture) -> None:
    attempt, supplier = _processing_order(sites, django_capture_on_commit_callbacks)
    body = json.dumps({"order_no": "UP000001", "request_no": attempt.customer_order_no,
                       "status": "delivered"}).encode()
    headers = _signed(body, supplier_id=supplier.pk)
    if forgery == "secret":
        headers = _signed(body, supplier_id=supplier.pk, secret="guessed")
    elif forgery == "key_id":
        headers = _signed(body, supplier_id=supplier.pk, key_id="kmk_someone_else")
    elif forgery == "body":
        body = body.replace(b"delivered", b"refunded")
    elif forgery == "other_url":
        headers = _signed(body, supplier_id=supplier.pk + 1000)
    elif forgery == "stale":
        headers = _signed(body, supplier_id=supplier.pk, now=time.time() - 301)

    response = _callback(client, supplier.pk, body, headers)

    assert response.status_code == 400
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.PROCESSING
