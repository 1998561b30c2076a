"""Helpers of the notification tests: a reseller with an API key, Open API orders, a fake receiver behind the
SSRF guard (names resolved by a table, posts answered by a script)."""

from __future__ import annotations

import json
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from kameng.catalog.models import DeliveryKind
from kameng.core import ssrf
from kameng.orders.models import Order
from kameng.orders.services import order_checkout
from kameng.resellers.models import ApiKey, OpenApiOrder, Reseller, ResellerStatus
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

SECRET = "reseller-secret-0123456789abcdef"
NOTIFY_URL = "https://hooks.example.com/kameng/notify?shop=7"
PUBLIC_ADDRESS = "93.184.216.34"


def reseller_with_key(*, key_id: str = "kmk_test_1", secret: str = SECRET) -> tuple[Reseller, ApiKey]:
    reseller = Reseller.objects.create(user=UserFactory.create(), status=ResellerStatus.ACTIVE)
    key = ApiKey.objects.create(reseller=reseller, key_id=key_id, secret=secret, name="测试密钥")
    return reseller, key


def card_order(reseller: Reseller, *, quantity: int = 2) -> Order:
    sku = SkuFactory.create(product__delivery_kind=DeliveryKind.CARD_KEY)
    stock_sku(sku, quantity + 1)
    fund_wallet(reseller.user, "1000.00", reference=f"fund-{reseller.pk}-{sku.pk}")
    return order_checkout(buyer_id=reseller.user_id, sku_id=sku.pk, quantity=quantity).order


def openapi_order(order: Order, reseller: Reseller, key: ApiKey | None, *, request_no: str = "R-1",
                  notify_url: str = NOTIFY_URL) -> OpenApiOrder:
    return OpenApiOrder.objects.create(order=order, reseller=reseller, api_key=key, request_no=request_no,
                                       body_digest="0" * 64, notify_url=notify_url)


@dataclass
class Receiver:
    """Answers posts with the scripted responses (default 200 "ok"); remembers every request."""

    addresses: dict[str, list[str]] = field(default_factory=dict)
    script: deque[Callable[[httpx.Request], httpx.Response]] = field(default_factory=deque)
    requests: list[httpx.Request] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)

    def answer(self, status: int, text: str = "") -> Receiver:
        self.script.append(lambda _request: httpx.Response(status, text=text))
        return self

    def fail(self, error: Exception) -> Receiver:
        def raise_it(_request: httpx.Request) -> httpx.Response:
            raise error

        self.script.append(raise_it)
        return self

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.script:
            return self.script.popleft()(request)
        return httpx.Response(200, text="ok")

    def resolve(self, host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        self.resolved.append(host)
        if host not in self.addresses:
            raise socket.gaierror("unknown host")
        return [(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
                for address in self.addresses[host]]

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests]


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Receiver:
    fake = Receiver(addresses={"hooks.example.com": [PUBLIC_ADDRESS]})
    monkeypatch.setattr(ssrf, "resolve", fake.resolve)
    monkeypatch.setattr(ssrf, "outbound_transport", httpx.MockTransport(fake.handle))
    return fake
