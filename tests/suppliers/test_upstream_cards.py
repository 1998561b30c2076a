"""Card keys bought from an upstream supplier when the platform's stock cannot fill a card-key order
(kameng.orders.upstream, kameng.suppliers.upstream_cards, kameng.inventory.upstream_keys): stock first, then the
direct top-up pipeline with a CARD request — delivered with exactly the quantity of new keys (encrypted,
fingerprinted, the supplier's cost), timeout queried and delivered once, failure failed over or refunded exactly,
short or duplicate cards never delivered — against a fake upstream, the Fulu simulator and a fake kameng site."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.db.models import Sum
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from kameng.catalog.models import DeliveryKind, Sku
from kameng.core.crypto import keyring
from kameng.core.errors import ApplicationError
from kameng.inventory.import_pipeline import FINGERPRINT_CONTEXT
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.inventory.selectors import secrets_for_order
from kameng.inventory.services import SoldOutError
from kameng.ledger.models import AccountKind, Entry, Journal, JournalKind, Side
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.orders.services import order_checkout, order_pay_with_wallet
from kameng.simulators.supplier.core import Merchant, SupplierSimulator
from kameng.suppliers.callbacks import topup_callback_process
from kameng.suppliers.connectors.base import Outcome, TopupAnswer, TopupKind, TopupRequest
from kameng.suppliers.connectors.fulu import FuluConnector
from kameng.suppliers.connectors.registry import CONNECTOR_FACTORIES
from kameng.suppliers.dispatch import topup_attempts_sweep
from kameng.suppliers.models import (
    AttemptStatus,
    ConnectorKind,
    OfferStockSource,
    RoutingRuleKind,
    SkuRoutingRule,
    Supplier,
    SupplierSettlement,
    SupplierStatus,
    TopupAttempt,
)
from kameng.suppliers.settlement import settlement_aftercare
from kameng.suppliers.topup import Via, attempt_outcome_apply, attempt_review_settle
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.factories import SkuFactory, SupplierFactory, SupplierOfferFactory, UserFactory, fund_wallet, stock_sku
from tests.suppliers.test_kameng_connector import DELIVER, TIMEOUT_AFTER_ACCEPT, Sites, sites
from tests.suppliers.topup_support import (
    FAILED,
    LOST_AFTER_ACCEPT,
    REFUSED,
    SUCCEEDED,
    FakeUpstream,
    Upstreams,
    upstreams,
)

__all__ = ["sites", "upstreams"]

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]


@dataclass
class CardUpstream(FakeUpstream):
    """A fake upstream selling card keys: a success carries `quantity` cards, or the ones the test sets."""

    quantities: dict[str, int] = field(default_factory=dict)
    cards_for: dict[str, tuple[str, ...]] = field(default_factory=dict)
    next_cards: list[tuple[str, ...]] = field(default_factory=list)  # for the next orders submitted, in turn

    def cards(self, number: str) -> tuple[str, ...]:
        if number in self.cards_for:
            return self.cards_for[number]
        return tuple(f"{self.name}-{number}-{index}" for index in range(self.quantities.get(number, 1)))

    def _submit(self, request: TopupRequest) -> TopupAnswer:
        number = request.customer_order_no
        if number not in self.quantities:
            self.quantities[number] = request.quantity
            if self.next_cards:
                self.cards_for[number] = self.next_cards.pop(0)
        return super()._submit(request)

    def _answer(self, number: str) -> TopupAnswer:
        answer = super()._answer(number)
        return replace(answer, cards=self.cards(number)) if answer.outcome == Outcome.SUCCEEDED else answer


def _card_upstream(upstreams: Upstreams, name: str, sku: Sku, price: str, *steps: str,
                   cards: tuple[str, ...] | None = None, **offer_fields: Any) -> CardUpstream:
    """A card upstream offering the SKU at `price`, scripted with `steps`; `cards`: what its first order gets."""
    upstream = CardUpstream(name=name)
    upstream.script(*steps)
    if cards is not None:
        upstream.next_cards.append(cards)
    upstreams.by_name[name] = upstream
    upstreams.offer(name, sku, price, **offer_fields)
    return upstream


def card_sku(price: str = "20.00") -> Sku:
    return SkuFactory.create(product__delivery_kind=DeliveryKind.CARD_KEY, product__name="影音会员月卡",
                             name="月卡", face_value=Decimal(price), price=Decimal(price))


def buy(sku: Sku, capture: Capture, *, quantity: int = 1, funds: str = "500.00") -> Order:
    """A wallet checkout, with everything it hands on after commit run (the fulfilment task, the submit)."""
    buyer = UserFactory.create()
    fund_wallet(buyer, funds)
    with capture(execute=True):
        result = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=quantity)
    return Order.objects.get(pk=result.order.pk)


def _due(*, after_grace: bool = False) -> None:
    past = timezone.now() - timedelta(seconds=1)
    TopupAttempt.objects.exclude(next_check_at=None).update(next_check_at=past)
    if after_grace:
        TopupAttempt.objects.exclude(submitted_at=None).update(submitted_at=past - timedelta(hours=1))


def _balance(kind: str) -> Decimal:
    entries = Entry.objects.filter(account__kind=kind)
    credits = entries.filter(side=Side.CREDIT).aggregate(total=Sum("amount"))["total"] or Decimal("0.00")
    debits = entries.filter(side=Side.DEBIT).aggregate(total=Sum("amount"))["total"] or Decimal("0.00")
    return credits - debits


def _kinds(order: Order) -> list[str]:
    return list(OrderEvent.objects.filter(order=order).order_by("pk").values_list("kind", flat=True))


def _fingerprint(secret: str) -> bytes:
    return keyring().fingerprint(secret.encode(), context=FINGERPRINT_CONTEXT)


# --- delivered ------------------------------------------------------------------------------------------------------


def test_a_sold_out_sku_is_bought_upstream_and_the_keys_are_the_orders(
        upstreams: Upstreams, django_capture_on_commit_callbacks: Capture, client: Client) -> None:
    sku = card_sku("20.00")
    upstream = _card_upstream(upstreams, "甲", sku, "18.00", SUCCEEDED)

    order = buy(sku, django_capture_on_commit_callbacks, quantity=3)

    attempt = TopupAttempt.objects.get(order=order)
    cards = list(upstream.cards(attempt.customer_order_no))
    assert order.status == OrderStatus.DELIVERED
    assert order.delivered_at is not None
    assert attempt.status == AttemptStatus.SUCCEEDED
    request = upstream.requests[0]
    assert (request.kind, request.quantity, request.max_price, request.charge_account) == (
        TopupKind.CARD, 3, Decimal("18.00"), "")
    assert request.upstream_product_id == attempt.offer.upstream_product_id
    keys = list(CardKey.objects.filter(order=order).order_by("pk"))
    assert [(key.status, key.supplier_id, key.cost, key.sku_id) for key in keys] == [
        (CardKeyStatus.SOLD, attempt.supplier_id, Decimal("18.00"), sku.pk)] * 3
    assert all(key.sold_at is not None for key in keys)
    # Stored as an import stores them: encrypted, fingerprinted with the same key and context.
    assert sorted(bytes(key.fingerprint) for key in keys) == sorted(_fingerprint(card) for card in cards)
    assert not any(card.encode() in bytes(key.secret_ciphertext) for key in keys for card in cards)
    assert sorted(secrets_for_order(order_id=order.pk)) == sorted(cards)
    # The buyer's order page shows them like any delivered key.
    client.force_login(order.buyer)
    page = client.get(reverse("web:order_detail", args=[order.number])).content.decode()
    assert all(card in page for card in cards)
    # Money: paid into the hold, released to revenue on delivery; the supplier settled once, by its keys.
    assert wallet_balance(user_id=order.buyer_id) == Decimal("440.00")
    assert _balance(AccountKind.ORDERS_IN_PROGRESS) == Decimal("0.00")
    assert Journal.objects.filter(reference=order.number, kind=JournalKind.ORDER_SALE).count() == 1
    settlement_aftercare(order_ids=[order.pk], event="delivered")  # the aftercare listener (off in tests)
    settlement_aftercare(order_ids=[order.pk], event="delivered")  # heard twice: nothing more
    settlement = SupplierSettlement.objects.get(order=order)
    assert (settlement.supplier_id, settlement.delivered_cost) == (attempt.supplier_id, Decimal("54.00"))
    assert _kinds(order) == [OrderEventKind.CREATED, OrderEventKind.WALLET_PAID, OrderEventKind.FULFILLING,
                             OrderEventKind.ROUTED, OrderEventKind.DELIVERED]


def test_a_sku_an_upstream_stocks_is_not_remembered_as_sold_out(
        upstreams: Upstreams, django_capture_on_commit_callbacks: Capture) -> None:
    """The checkout's "sold out" memory (kameng.inventory.services.card_keys_known_sold_out) must not refuse the next
    buyer of a SKU whose empty stock an upstream fills: both orders go upstream."""
    sku = card_sku("20.00")
    _card_upstream(upstreams, "甲", sku, "18.00", SUCCEEDED, SUCCEEDED)

    first = buy(sku, django_capture_on_commit_callbacks)
    second = buy(sku, django_capture_on_commit_callbacks)

    assert (first.status, second.status) == (OrderStatus.DELIVERED, OrderStatus.DELIVERED)
    assert TopupAttempt.objects.filter(order__in=[first, second]).count() == 2


def test_stock_held_on_the_platform_goes_first(upstreams: Upstreams,
                                               django_capture_on_commit_callbacks: Capture) -> None:
    sku = card_sku("20.00")
    upstream = _card_upstream(upstreams, "甲", sku, "18.00")
    secrets = stock_sku(sku, 2)

    order = buy(sku, django_capture_on_commit_callbacks, quantity=2)

    assert order.status == OrderStatus.DELIVERED
    assert sorted(secrets_for_order(order_id=order.pk)) == sorted(secrets)
    assert not TopupAttempt.objects.exists()
    assert upstream.requests == []
    assert _balance(AccountKind.ORDERS_IN_PROGRESS) == Decimal("0.00")


def test_an_order_the_stock_cannot_fill_goes_wholly_upstream(upstreams: Upstreams,
                                                             django_capture_on_commit_callbacks: Capture) -> None:
    sku = card_sku("20.00")
    upstream = _card_upstream(upstreams, "甲", sku, "18.00", SUCCEEDED)
    stock_sku(sku, 1)

    order = buy(sku, django_capture_on_commit_callbacks, quantity=2)

    assert order.status == OrderStatus.DELIVERED
    assert upstream.requests[0].quantity == 2
    assert CardKey.objects.filter(order=order, supplier__isnull=False).count() == 2
    assert CardKey.objects.filter(sku=sku, status=CardKeyStatus.AVAILABLE).count() == 1  # the stock key is left


@pytest.mark.parametrize("why", ["loss", "inactive", "excluded", "uploaded_keys", "not_approved"])
def test_without_an_eligible_upstream_offer_the_sku_is_sold_out(why: str, upstreams: Upstreams,
                                                                django_capture_on_commit_callbacks: Capture) -> None:
    sku = card_sku("20.00")
    offers: dict[str, dict[str, Any]] = {"loss": {}, "inactive": {"is_active": False}, "excluded": {},
                                         "uploaded_keys": {"stock_source": OfferStockSource.CARD_KEYS},
                                         "not_approved": {}}
    fields = offers[why]
    upstream = _card_upstream(upstreams, "甲", sku, "25.00" if why == "loss" else "18.00", **fields)
    supplier = Supplier.objects.get(name="甲")
    if why == "excluded":
        SkuRoutingRule.objects.create(sku=sku, supplier=supplier, kind=RoutingRuleKind.EXCLUDE)
    if why == "not_approved":
        Supplier.objects.filter(pk=supplier.pk).update(status=SupplierStatus.SUSPENDED)
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")

    with pytest.raises(SoldOutError), django_capture_on_commit_callbacks(execute=True):
        order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1)

    assert not Order.objects.exists()
    assert upstream.requests == []
    assert wallet_balance(user_id=buyer.pk) == Decimal("100.00")


def test_the_storefront_sells_a_sku_that_only_an_upstream_stocks(upstreams: Upstreams, client: Client) -> None:
    sku = card_sku("20.00")
    sold_out = card_sku("20.00")
    _card_upstream(upstreams, "甲", sku, "18.00")
    _card_upstream(upstreams, "乙", sold_out, "25.00")  # at a loss: not sold

    page = client.get(reverse("web:product", args=[sku.product_id])).content.decode()
    refused = client.get(reverse("web:product", args=[sold_out.product_id])).content.decode()

    assert "上游供货" in page
    assert 'data-testid="sold-out-button"' not in page
    assert 'data-testid="sold-out-button"' in refused


# --- the pipeline: processing, timeout, failover, refund -------------------------------------------------------------


def test_processing_is_queried_and_delivered_once(upstreams: Upstreams,
                                                  django_capture_on_commit_callbacks: Capture) -> None:
    sku = card_sku()
    upstream = _card_upstream(upstreams, "甲", sku, "18.00")  # answers processing

    order = buy(sku, django_capture_on_commit_callbacks, quantity=2)
    attempt = TopupAttempt.objects.get(order=order)
    assert (order.status, attempt.status) == (OrderStatus.FULFILLING, AttemptStatus.PROCESSING)
    assert _balance(AccountKind.ORDERS_IN_PROGRESS) == Decimal("40.00")
    assert secrets_for_order(order_id=order.pk) == []

    _due()
    topup_attempts_sweep()
    _due()
    topup_attempts_sweep()  # settled: nothing is due any more
    attempt_outcome_apply(attempt_id=attempt.pk, answer=upstream._answer(attempt.customer_order_no), via=Via.QUERY)

    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert upstream.submits == {attempt.customer_order_no: 1}
    assert CardKey.objects.filter(order=order).count() == 2
    assert CardKey.objects.count() == 2
    assert _balance(AccountKind.ORDERS_IN_PROGRESS) == Decimal("0.00")
    assert OrderEventKind.TOPUP_PROCESSING not in _kinds(order)


def test_a_timeout_is_queried_never_resubmitted_and_delivered_once(
        upstreams: Upstreams, django_capture_on_commit_callbacks: Capture) -> None:
    sku = card_sku()
    upstream = _card_upstream(upstreams, "甲", sku, "18.00", LOST_AFTER_ACCEPT)

    order = buy(sku, django_capture_on_commit_callbacks, quantity=2)
    attempt = TopupAttempt.objects.get(order=order)
    assert (order.status, attempt.status) == (OrderStatus.FULFILLING, AttemptStatus.UNKNOWN)

    _due(after_grace=True)
    topup_attempts_sweep()

    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert upstream.submits == {attempt.customer_order_no: 1}
    assert upstream.queries == {attempt.customer_order_no: 1}
    assert sorted(secrets_for_order(order_id=order.pk)) == sorted(upstream.cards(attempt.customer_order_no))


def test_a_success_without_its_cards_is_queried_for_them(upstreams: Upstreams,
                                                         django_capture_on_commit_callbacks: Capture) -> None:
    sku = card_sku()
    upstream = _card_upstream(upstreams, "甲", sku, "18.00")
    order = buy(sku, django_capture_on_commit_callbacks, quantity=1)
    attempt = TopupAttempt.objects.get(order=order)

    # The fake's callback carries no cards (as Fulu's does not): the order waits for a query.
    body = upstream.callback_body(attempt.customer_order_no)
    assert topup_callback_process(supplier_id=attempt.supplier_id, body=body, headers={}).status == 200
    order.refresh_from_db()
    attempt.refresh_from_db()
    assert (order.status, attempt.status) == (OrderStatus.FULFILLING, AttemptStatus.PROCESSING)
    assert attempt.next_check_at is not None

    upstream.settle(attempt.customer_order_no)
    _due()
    topup_attempts_sweep()

    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert CardKey.objects.filter(order=order).count() == 1


def test_failure_fails_over_to_the_next_offer(upstreams: Upstreams,
                                              django_capture_on_commit_callbacks: Capture) -> None:
    sku = card_sku()
    first = _card_upstream(upstreams, "甲", sku, "17.00", FAILED)
    second = _card_upstream(upstreams, "乙", sku, "18.00", SUCCEEDED)

    order = buy(sku, django_capture_on_commit_callbacks, quantity=2)

    assert order.status == OrderStatus.DELIVERED
    attempts = list(TopupAttempt.objects.filter(order=order).order_by("sequence"))
    assert [attempt.status for attempt in attempts] == [AttemptStatus.FAILED, AttemptStatus.SUCCEEDED]
    assert (len(first.requests), len(second.requests)) == (1, 1)
    keys = CardKey.objects.filter(order=order)
    assert {(key.supplier_id, key.cost) for key in keys} == {(attempts[1].supplier_id, Decimal("18.00"))}
    settlement_aftercare(order_ids=[order.pk], event="delivered")
    assert list(SupplierSettlement.objects.filter(order=order).values_list("supplier_id", "delivered_cost")) == [
        (attempts[1].supplier_id, Decimal("36.00"))]


def test_every_offer_failing_refunds_the_whole_total_exactly_once(
        upstreams: Upstreams, django_capture_on_commit_callbacks: Capture) -> None:
    sku = card_sku("20.00")
    _card_upstream(upstreams, "甲", sku, "17.00", FAILED)
    _card_upstream(upstreams, "乙", sku, "18.00", REFUSED)

    order = buy(sku, django_capture_on_commit_callbacks, quantity=2)
    _due()
    topup_attempts_sweep()

    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert order.refunded_amount == Decimal("40.00")
    assert wallet_balance(user_id=order.buyer_id) == Decimal("500.00")
    assert _balance(AccountKind.ORDERS_IN_PROGRESS) == Decimal("0.00")
    assert Journal.objects.filter(reference=order.number, kind=JournalKind.ORDER_REFUND).count() == 1
    assert not CardKey.objects.exists()
    settlement_aftercare(order_ids=[order.pk], event="refunded")
    assert not SupplierSettlement.objects.exists()
    assert _kinds(order)[-2:] == [OrderEventKind.DELIVERY_FAILED, OrderEventKind.DELIVERY_FAILED_REFUNDED]


def test_an_unpaid_order_finds_no_stock_and_is_bought_upstream_when_paid(
        upstreams: Upstreams, django_capture_on_commit_callbacks: Capture) -> None:
    sku = card_sku("20.00")
    upstream = _card_upstream(upstreams, "甲", sku, "18.00", SUCCEEDED)
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    with django_capture_on_commit_callbacks(execute=True):
        order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order
    assert order.status == OrderStatus.PENDING_PAYMENT
    assert not CardKey.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        order_pay_with_wallet(order_id=order.pk, buyer_id=buyer.pk)

    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert len(upstream.requests) == 1
    assert CardKey.objects.filter(order=order, status=CardKeyStatus.SOLD).count() == 1
    assert wallet_balance(user_id=buyer.pk) == Decimal("80.00")
    assert _balance(AccountKind.ORDERS_IN_PROGRESS) == Decimal("0.00")


# --- cards that must not be delivered --------------------------------------------------------------------------------


def test_fewer_cards_than_the_quantity_fail_the_attempt_and_go_to_the_next_offer(
        upstreams: Upstreams, django_capture_on_commit_callbacks: Capture) -> None:
    sku = card_sku()
    _card_upstream(upstreams, "甲", sku, "17.00", SUCCEEDED, cards=("SHORT-ONLY-ONE",))
    _card_upstream(upstreams, "乙", sku, "18.00", SUCCEEDED)

    order = buy(sku, django_capture_on_commit_callbacks, quantity=2)

    first, second = TopupAttempt.objects.filter(order=order).order_by("sequence")
    assert (first.status, first.needs_review) == (AttemptStatus.FAILED, True)
    assert "上游返回 1 张卡密，订单需要 2 张" in first.review_note
    assert second.status == AttemptStatus.SUCCEEDED
    assert order.status == OrderStatus.DELIVERED
    assert "SHORT-ONLY-ONE" not in secrets_for_order(order_id=order.pk)
    assert CardKey.objects.filter(order=order, supplier_id=second.supplier_id).count() == 2
    kept = CardKey.objects.get(fingerprint=_fingerprint("SHORT-ONLY-ONE"))
    assert (kept.status, kept.order_id, kept.supplier_id) == (CardKeyStatus.VOID, None, first.supplier_id)


def test_fewer_cards_with_no_other_offer_refund_the_order(upstreams: Upstreams,
                                                          django_capture_on_commit_callbacks: Capture) -> None:
    sku = card_sku("20.00")
    _card_upstream(upstreams, "甲", sku, "18.00", SUCCEEDED, cards=("ONLY-ONE",))

    order = buy(sku, django_capture_on_commit_callbacks, quantity=3)

    assert order.status == OrderStatus.REFUNDED
    assert order.refunded_amount == Decimal("60.00")
    assert wallet_balance(user_id=order.buyer_id) == Decimal("500.00")
    assert not CardKey.objects.filter(order=order).exists()
    settlement_aftercare(order_ids=[order.pk], event="refunded")
    assert not SupplierSettlement.objects.exists()


def test_a_card_already_on_the_platform_is_never_delivered_again(
        upstreams: Upstreams, django_capture_on_commit_callbacks: Capture, caplog: pytest.LogCaptureFixture) -> None:
    other = card_sku("30.00")
    [taken] = stock_sku(other, 1, prefix="DUP")
    sku = card_sku("20.00")
    _card_upstream(upstreams, "甲", sku, "18.00", SUCCEEDED, cards=(taken, "FRESH-CARD-2"))
    caplog.set_level(logging.DEBUG)

    order = buy(sku, django_capture_on_commit_callbacks, quantity=2)

    attempt = TopupAttempt.objects.get(order=order)
    assert (attempt.status, attempt.needs_review) == (AttemptStatus.FAILED, True)
    assert "1 张与平台已有卡密重复" in attempt.review_note
    assert order.status == OrderStatus.REFUNDED
    assert secrets_for_order(order_id=order.pk) == []
    existing = CardKey.objects.get(fingerprint=_fingerprint(taken))
    assert (existing.sku_id, existing.status, existing.order_id) == (other.pk, CardKeyStatus.AVAILABLE, None)
    fresh = CardKey.objects.get(fingerprint=_fingerprint("FRESH-CARD-2"))
    assert (fresh.status, fresh.order_id) == (CardKeyStatus.VOID, None)
    assert taken not in caplog.text
    assert "FRESH-CARD-2" not in caplog.text


def test_cards_repeated_within_one_answer_are_not_delivered(upstreams: Upstreams,
                                                            django_capture_on_commit_callbacks: Capture) -> None:
    sku = card_sku()
    _card_upstream(upstreams, "甲", sku, "18.00", SUCCEEDED, cards=("SAME", "SAME"))

    order = buy(sku, django_capture_on_commit_callbacks, quantity=2)

    assert order.status == OrderStatus.REFUNDED
    assert TopupAttempt.objects.get(order=order).needs_review


def test_cards_arriving_after_the_order_was_refunded_are_kept_withdrawn_and_flagged(
        upstreams: Upstreams, django_capture_on_commit_callbacks: Capture) -> None:
    sku = card_sku()
    upstream = _card_upstream(upstreams, "甲", sku, "18.00", FAILED)
    order = buy(sku, django_capture_on_commit_callbacks, quantity=1)
    attempt = TopupAttempt.objects.get(order=order)
    assert order.status == OrderStatus.REFUNDED

    late = TopupAnswer(outcome=Outcome.SUCCEEDED, cards=("LATE-CARD",))
    attempt_outcome_apply(attempt_id=attempt.pk, answer=late, via=Via.CALLBACK)

    attempt.refresh_from_db()
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert attempt.needs_review
    kept = CardKey.objects.get(fingerprint=_fingerprint("LATE-CARD"))
    assert (kept.status, kept.order_id) == (CardKeyStatus.VOID, None)
    assert upstream.submits == {attempt.customer_order_no: 1}


def test_staff_cannot_confirm_a_card_attempt_without_its_cards(upstreams: Upstreams,
                                                               django_capture_on_commit_callbacks: Capture) -> None:
    sku = card_sku()
    _card_upstream(upstreams, "甲", sku, "18.00")
    order = buy(sku, django_capture_on_commit_callbacks)
    attempt = TopupAttempt.objects.get(order=order)
    TopupAttempt.objects.filter(pk=attempt.pk).update(needs_review=True, review_note="查询次数用完")

    with pytest.raises(ApplicationError) as refused:
        attempt_review_settle(attempt_id=attempt.pk, succeeded=True, reason="供货商说已发", staff_name="客服",
                              operator_serial="X1")
    assert refused.value.code == "card_review_needs_cards"

    attempt_review_settle(attempt_id=attempt.pk, succeeded=False, reason="供货商确认未发", staff_name="客服")
    order.refresh_from_db()
    assert order.status == OrderStatus.REFUNDED
    assert wallet_balance(user_id=order.buyer_id) == Decimal("500.00")


# --- real protocols: the Fulu simulator, another kameng site ---------------------------------------------------------


@pytest.fixture
def simulator(monkeypatch: pytest.MonkeyPatch) -> SupplierSimulator:
    """The bundled supplier simulator behind every Fulu supplier of this test, in-process (a lost reply: a timeout)."""
    simulated = SupplierSimulator(merchants=[Merchant("m1", "secret-1", notify_url="http://shop/cb/")], seed=7)

    def handler(request: httpx.Request) -> httpx.Response:
        answer = simulated.gateway(request.content)
        if answer.lost:
            raise httpx.ReadTimeout("the answer was lost")
        return httpx.Response(answer.status, json=answer.body)

    def factory(config: dict[str, Any]) -> FuluConnector:
        return FuluConnector(config, client=httpx.Client(transport=httpx.MockTransport(handler)))

    monkeypatch.setitem(CONNECTOR_FACTORIES, str(ConnectorKind.FULU), factory)
    return simulated


def _fulu_offer(sku: Sku, price: str) -> None:
    supplier = SupplierFactory.create(name="福禄模拟", connector_kind=ConnectorKind.FULU, connector_config=json.dumps(
        {"gateway_url": "http://sim/api/getway", "app_key": "m1", "app_secret": "secret-1"}))
    SupplierOfferFactory.create(supplier=supplier, sku=sku, price=Decimal(price), upstream_product_id="30001")


def test_fulu_card_order_timeout_then_callback_then_query_delivers_once(
        simulator: SupplierSimulator, django_capture_on_commit_callbacks: Capture) -> None:
    sku = card_sku("20.00")
    _fulu_offer(sku, "18.00")
    simulator.knobs.unknown_rate = 1.0  # accepted, the reply lost

    order = buy(sku, django_capture_on_commit_callbacks, quantity=2)
    attempt = TopupAttempt.objects.get(order=order)
    assert (order.status, attempt.status) == (OrderStatus.FULFILLING, AttemptStatus.UNKNOWN)

    _due(after_grace=True)
    topup_attempts_sweep()  # the query finds it processing there: never resubmitted
    attempt.refresh_from_db()
    assert attempt.status == AttemptStatus.PROCESSING

    upstream_order = simulator.orders[("m1", attempt.customer_order_no)]
    callback = simulator.order_finish(upstream_order)
    assert callback is not None
    reply = topup_callback_process(supplier_id=attempt.supplier_id,
                                   body=json.dumps(callback, ensure_ascii=False).encode(), headers={})
    assert (reply.status, reply.body) == (200, "success")

    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    expected = sorted(f"{card['card_number']} {card['card_pwd']}" for card in upstream_order.cards)
    assert sorted(secrets_for_order(order_id=order.pk)) == expected
    assert simulator.submissions[attempt.customer_order_no] == 1
    assert simulator.requests["fulu.order.card.add"] == 1


def test_fulu_card_order_refused_for_price_is_refunded(simulator: SupplierSimulator,
                                                       django_capture_on_commit_callbacks: Capture) -> None:
    sku = card_sku("20.00")
    _fulu_offer(sku, "17.00")  # the simulator sells at 17.50: above our ceiling, refused (3004)

    order = buy(sku, django_capture_on_commit_callbacks, quantity=1)

    assert order.status == OrderStatus.REFUNDED
    assert wallet_balance(user_id=order.buyer_id) == Decimal("500.00")
    assert TopupAttempt.objects.get(order=order).failure_code == "3004"


def _kameng_offer(sites: Sites, sku: Sku, price: str) -> Any:
    supplier, site = sites.supplier("up.example.com")
    SupplierOfferFactory.create(supplier=supplier, sku=sku, price=Decimal(price), upstream_product_id="900")
    return site


def test_kameng_site_card_order_is_delivered_with_its_keys(sites: Sites,
                                                           django_capture_on_commit_callbacks: Capture) -> None:
    sku = card_sku("50.00")
    site = _kameng_offer(sites, sku, "45.00")
    site.script.append(DELIVER)

    order = buy(sku, django_capture_on_commit_callbacks, quantity=2)

    attempt = TopupAttempt.objects.get(order=order)
    assert order.status == OrderStatus.DELIVERED
    assert sorted(secrets_for_order(order_id=order.pk)) == [f"UPKEY-{attempt.customer_order_no}-{index}"
                                                             for index in range(2)]
    assert site.posts == [{"request_no": attempt.customer_order_no, "sku_id": 900, "quantity": 2,
                           "notify_url": site.posts[0]["notify_url"]}]


def test_kameng_site_timeout_is_queried_and_delivered_once(sites: Sites,
                                                           django_capture_on_commit_callbacks: Capture) -> None:
    sku = card_sku("50.00")
    site = _kameng_offer(sites, sku, "45.00")
    site.script.append(TIMEOUT_AFTER_ACCEPT)

    order = buy(sku, django_capture_on_commit_callbacks, quantity=1)
    assert order.status == OrderStatus.FULFILLING

    _due(after_grace=True)
    topup_attempts_sweep()

    order.refresh_from_db()
    attempt = TopupAttempt.objects.get(order=order)
    assert order.status == OrderStatus.DELIVERED
    assert len(site.posts) == 1
    assert site.queries == [attempt.customer_order_no]
    assert secrets_for_order(order_id=order.pk) == [f"UPKEY-{attempt.customer_order_no}-0"]


# --- PostgreSQL: real row locks, real threads --------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_card_answered_for_two_orders_at_once_is_delivered_to_one(upstreams: Upstreams) -> None:
    requires_postgresql()
    sku = card_sku("20.00")
    _card_upstream(upstreams, "甲", sku, "18.00")  # accepts, answers processing
    orders = [buy(sku, _no_capture) for _ in range(2)]
    attempts = [TopupAttempt.objects.get(order=order) for order in orders]
    assert [attempt.status for attempt in attempts] == [AttemptStatus.PROCESSING] * 2
    same = TopupAnswer(outcome=Outcome.SUCCEEDED, cards=("RACE-CARD-1",))

    outcomes = run_in_threads(2, lambda index: attempt_outcome_apply(attempt_id=attempts[index].pk, answer=same,
                                                                     via=Via.QUERY))

    assert unexpected(outcomes) == []
    statuses = sorted(Order.objects.filter(pk__in=[order.pk for order in orders]).values_list("status", flat=True))
    assert statuses == sorted([OrderStatus.DELIVERED, OrderStatus.REFUNDED])
    key = CardKey.objects.get(fingerprint=_fingerprint("RACE-CARD-1"))
    delivered = Order.objects.get(status=OrderStatus.DELIVERED)
    assert (key.order_id, key.status) == (delivered.pk, CardKeyStatus.SOLD)
    refused = TopupAttempt.objects.exclude(order=delivered).get()
    assert (refused.status, refused.needs_review) == (AttemptStatus.FAILED, True)
    assert wallet_balance(user_id=Order.objects.get(status=OrderStatus.REFUNDED).buyer_id) == Decimal("500.00")
    assert _balance(AccountKind.ORDERS_IN_PROGRESS) == Decimal("0.00")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_buyers_take_the_stock_then_the_upstream_each_order_once(upstreams: Upstreams) -> None:
    requires_postgresql()
    sku = card_sku("20.00")
    upstream = _card_upstream(upstreams, "甲", sku, "18.00")
    upstream.default_step = SUCCEEDED
    stock = stock_sku(sku, 3)
    buyers = [UserFactory.create() for _ in range(THREADS)]
    for buyer in buyers:
        fund_wallet(buyer, "100.00")

    outcomes = run_in_threads(THREADS, lambda index: order_checkout(buyer_id=buyers[index].pk, sku_id=sku.pk,
                                                                    quantity=1).order.pk)

    assert unexpected(outcomes) == []
    orders = list(Order.objects.filter(sku=sku))
    assert len(orders) == THREADS
    assert {order.status for order in orders} == {OrderStatus.DELIVERED}
    delivered = [secret for order in orders for secret in secrets_for_order(order_id=order.pk)]
    assert len(delivered) == len(set(delivered)) == THREADS
    assert set(stock) <= set(delivered)
    assert TopupAttempt.objects.count() == THREADS - len(stock)
    assert all(count == 1 for count in upstream.submits.values())
    assert _balance(AccountKind.ORDERS_IN_PROGRESS) == Decimal("0.00")
    assert sum(wallet_balance(user_id=buyer.pk) for buyer in buyers) == Decimal("100.00") * THREADS - Decimal(
        "20.00") * THREADS


THREADS = 8


@contextmanager
def _no_capture(*, execute: bool = True) -> Iterator[None]:
    """A transaction=True test commits for real: what runs after commit runs then."""
    yield
