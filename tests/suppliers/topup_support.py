"""An in-memory upstream speaking the connector Protocol, scriptable per submit, and helpers that make direct top-up
orders. The upstream keeps the orders it accepted, so a query answers what it really holds, and it counts every
submit per `customer_order_no`: `duplicates` counts submits of a number it already held (a double top-up risk)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction

from kameng.catalog.models import DeliveryKind, Sku
from kameng.orders.fulfilment import order_fulfil
from kameng.orders.models import Order
from kameng.orders.services import order_checkout
from kameng.suppliers.connectors.base import (
    CallbackRejectedError,
    CallbackResult,
    Outcome,
    TopupAnswer,
    TopupRequest,
    UpstreamGoods,
)
from kameng.suppliers.connectors.registry import CONNECTOR_FACTORIES
from kameng.suppliers.models import ConnectorKind, Supplier, SupplierOffer
from tests.factories import SkuFactory, SupplierFactory, SupplierOfferFactory, UserFactory, fund_wallet

PHONE_FORM = [{"name": "phone", "label": "手机号", "kind": "phone", "required": True}]
GAME_FORM = [{"name": "account", "label": "游戏账号", "kind": "text", "required": True},
             {"name": "region", "label": "大区", "kind": "select", "required": True, "options": ["一区", "二区"]}]

# What the upstream does with one submit (a script step):
PROCESSING = "processing"  # accepts it, answers processing (the result comes by callback or query)
SUCCEEDED = "succeeded"  # accepts it and tops up at once
REFUSED = "refused"  # refuses before accepting (FAILED, may_try_next)
FAILED = "failed"  # accepts it, the top-up fails (FAILED, confirmed)
LOST_AFTER_ACCEPT = "lost_after_accept"  # accepts it (it will succeed), the answer is lost: UNKNOWN
LOST_BEFORE_ACCEPT = "lost_before_accept"  # the request never arrives: UNKNOWN, the upstream has nothing


@dataclass
class FakeUpstream:
    name: str
    has_callbacks: bool = True
    kind: str = ConnectorKind.HTTP
    secret: bytes = b"fake-upstream-secret"
    default_step: str = PROCESSING
    # Where an accepted order ends when a query asks (LOST_AFTER_ACCEPT and PROCESSING orders): succeeded or failed.
    settles_as: str = SUCCEEDED
    steps: deque[str] = field(default_factory=deque)
    query_answers: deque[TopupAnswer] = field(default_factory=deque)  # answered before looking at `orders`
    orders: dict[str, str] = field(default_factory=dict)  # customer_order_no → processing | succeeded | failed
    submits: Counter[str] = field(default_factory=Counter)
    queries: Counter[str] = field(default_factory=Counter)
    requests: list[TopupRequest] = field(default_factory=list)
    duplicates: int = 0
    on_submit: Callable[[TopupRequest], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)  # the concurrency tests call it from threads

    def script(self, *steps: str) -> FakeUpstream:
        self.steps.extend(steps)
        return self

    def serial(self, number: str) -> str:
        return f"SN-{number}"

    def _answer(self, number: str) -> TopupAnswer:
        state = self.orders[number]
        if state == SUCCEEDED:
            return TopupAnswer(outcome=Outcome.SUCCEEDED, supplier_order_id=f"U-{number}",
                               operator_serial=self.serial(number))
        if state == FAILED:
            return TopupAnswer(outcome=Outcome.FAILED, supplier_order_id=f"U-{number}", code="4001",
                               message="运营商充值失败")
        return TopupAnswer(outcome=Outcome.PROCESSING, supplier_order_id=f"U-{number}")

    def topup_submit(self, request: TopupRequest) -> TopupAnswer:
        with self.lock:
            return self._submit(request)

    def _submit(self, request: TopupRequest) -> TopupAnswer:
        number = request.customer_order_no
        self.submits[number] += 1
        self.requests.append(request)
        if self.on_submit is not None:
            self.on_submit(request)
        if number in self.orders:  # an idempotent upstream answers what it has; we count the risk
            self.duplicates += 1
            return self._answer(number)
        step = self.steps.popleft() if self.steps else self.default_step
        if step == REFUSED:
            return TopupAnswer(outcome=Outcome.FAILED, code="3001", message="商品库存不足", may_try_next=True)
        if step == LOST_BEFORE_ACCEPT:
            return TopupAnswer(outcome=Outcome.UNKNOWN, message="timeout")
        if step == LOST_AFTER_ACCEPT:
            self.orders[number] = self.settles_as
            return TopupAnswer(outcome=Outcome.UNKNOWN, message="timeout")
        self.orders[number] = step
        return self._answer(number)

    def topup_query(self, customer_order_no: str) -> TopupAnswer:
        with self.lock:
            return self._query(customer_order_no)

    def _query(self, customer_order_no: str) -> TopupAnswer:
        self.queries[customer_order_no] += 1
        if self.query_answers:
            return self.query_answers.popleft()
        if customer_order_no not in self.orders:
            return TopupAnswer(outcome=Outcome.NOT_FOUND)
        if self.orders[customer_order_no] == PROCESSING:
            self.orders[customer_order_no] = self.settles_as
        return self._answer(customer_order_no)

    def settle(self, number: str, state: str = SUCCEEDED) -> None:
        self.orders[number] = state

    def sign(self, fields: Mapping[str, str]) -> str:
        message = "&".join(f"{key}={fields[key]}" for key in sorted(fields))
        return hmac.new(self.secret, message.encode(), hashlib.sha256).hexdigest()

    def callback_body(self, number: str, status: str = SUCCEEDED, *, serial: str | None = None) -> bytes:
        fields = {"customer_order_no": number, "order_status": status,
                  "operator_serial_number": self.serial(number) if serial is None else serial}
        return json.dumps({**fields, "sign": self.sign(fields)}).encode()

    def callback_verify(self, *, body: bytes, headers: Mapping[str, str]) -> CallbackResult:
        try:
            data = json.loads(body)
            fields = {key: str(data[key]) for key in ("customer_order_no", "order_status", "operator_serial_number")}
            signature = str(data["sign"])
        except (ValueError, KeyError, TypeError) as error:
            raise CallbackRejectedError("unreadable callback") from error
        if not hmac.compare_digest(signature, self.sign(fields)):
            raise CallbackRejectedError("bad signature")
        if fields["order_status"] == SUCCEEDED:
            answer = TopupAnswer(outcome=Outcome.SUCCEEDED, operator_serial=fields["operator_serial_number"])
        else:
            answer = TopupAnswer(outcome=Outcome.FAILED, code="4001", message="运营商充值失败")
        return CallbackResult(customer_order_no=fields["customer_order_no"], answer=answer, reply="success")

    def goods_list(self) -> list[UpstreamGoods]:
        return []


class Upstreams:
    """The fake upstreams of a test, by name; the connector registry hands out the one a supplier's config names."""

    def __init__(self) -> None:
        self.by_name: dict[str, FakeUpstream] = {}

    def connector(self, config: dict[str, Any]) -> FakeUpstream:
        return self.by_name[str(config["upstream"])]

    def supplier(self, name: str, *, rating: str = "3.00", has_callbacks: bool = True,
                 **supplier_fields: Any) -> tuple[Supplier, FakeUpstream]:
        upstream = self.by_name.setdefault(name, FakeUpstream(name=name, has_callbacks=has_callbacks))
        supplier = SupplierFactory.create(name=name, rating=Decimal(rating), connector_kind=ConnectorKind.HTTP,
                                          connector_config=json.dumps({"upstream": name}), **supplier_fields)
        return supplier, upstream

    def offer(self, name: str, sku: Sku, price: str, *, rating: str = "3.00", has_callbacks: bool = True,
              **offer_fields: Any) -> tuple[SupplierOffer, FakeUpstream]:
        supplier, upstream = self.supplier(name, rating=rating, has_callbacks=has_callbacks)
        offer = SupplierOfferFactory.create(supplier=supplier, sku=sku, price=Decimal(price), **offer_fields)
        return offer, upstream


def topup_sku(price: str = "50.00", *, face_value: str = "50.00", form: list[dict[str, Any]] | None = None) -> Sku:
    return SkuFactory.create(product__delivery_kind=DeliveryKind.DIRECT_TOPUP, product__name="中国移动话费",
                             product__topup_form=PHONE_FORM if form is None else form, name=f"{face_value} 元",
                             face_value=Decimal(face_value), price=Decimal(price))


def _valid_target(sku: Sku) -> dict[str, str]:
    """Input the product's form accepts: a China Mobile number for a phone field, some text for the others."""
    form = sku.product.topup_form or [{"name": "account"}]
    values = {"phone": "13800138000"}
    for form_field in form:
        if form_field["name"] not in values:
            values[form_field["name"]] = form_field.get("options", ["player-1"])[0]
    return {name: value for name, value in values.items() if name in {form_field["name"] for form_field in form}}


def topup_order_paid(sku: Sku, *, quantity: int = 1, target: dict[str, str] | None = None,
                     funds: str = "500.00") -> Order:
    """A paid direct top-up order (its money in the orders-in-progress hold), fulfilled after commit: not yet in a
    test's transaction, at once in a `transaction=True` test."""
    buyer = UserFactory.create()
    fund_wallet(buyer, funds)
    with transaction.atomic():  # the target is on the order before its fulfilment runs after commit
        order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=quantity,
                               topup_target=_valid_target(sku)).order
        if target is not None:  # what the test wants on the order, even what a checkout would refuse
            order.topup_target = json.dumps(target)
            order.save(update_fields=["topup_target"])
    return order


def fulfil(order: Order, capture: Callable[..., Any]) -> Order:
    """Run the fulfilment task's work and everything it hands on after commit (eager: the submit, inline)."""
    with capture(execute=True):
        order_fulfil(order_id=order.pk)
    order.refresh_from_db()
    return order


@pytest.fixture
def upstreams(monkeypatch: pytest.MonkeyPatch) -> Upstreams:
    """Fake upstreams behind every supplier of the "http" connector kind, for this test."""
    registry = Upstreams()
    monkeypatch.setitem(CONNECTOR_FACTORIES, str(ConnectorKind.HTTP), registry.connector)
    return registry
