"""Pins the number of SQL statements and round trips of one paid checkout and of a group-commit batch, so the hot
path cannot quietly grow.

A statement sent alone is a round trip to PostgreSQL; statements sent together in a pipeline
(`kameng.core.sql.statements_pipelined`) are one. At 64 clients on two cores, round trips and the ORM work that
builds them are what the checkout's throughput is made of: the group-commit writer waits for the GIL after each
one (bench/README.md has the figures).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pytest_django.fixtures import Settings

from kameng.accounts.paypin import password_free_limit_set, payment_pin_set, pin_settings_of
from kameng.catalog import selectors as catalog_selectors
from kameng.ledger.services import wallet_account_id
from kameng.orders import checkout
from kameng.orders.group_commit import _Checkout, write_batch
from kameng.orders.services import order_checkout
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from tests.concurrency.threads import requires_postgresql
from tests.factories import SkuFactory, UserFactory, claim_scan_from, fund_wallet, stock_sku

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# sku lookup, BEGIN, order INSERT with its events, key claim UPDATE…RETURNING, journal with its entries and the
# guarded wallet UPDATE (one statement), COMMIT: the single path writes a batch of one through the group commit's
# set-based writer (kameng/orders/checkout.py). Each is a round trip of its own: a single order claims before its
# journal goes (finding no key may redraft it).
CHECKOUT_STATEMENTS = 6
CHECKOUT_ROUND_TRIPS = 6
# A batch of three buyers: one message (kameng.core.sql.OneMessage) — BEGIN, orders INSERT with their events, the
# claim, the journals (with the wallets locked in id order and moved), the guard, COMMIT — its SKU read in the last
# second and its order ids taken ahead by the batch before (kameng/orders/checkout.py, `drafts_write_at_once`).
BATCH_STATEMENTS = 1
BATCH_ROUND_TRIPS = 1


@pytest.fixture(autouse=True)
def _postgresql_only(settings: Settings) -> None:
    requires_postgresql()
    # The checkout alone: the aftercare listeners run after commit (a Celery task in production, eager here);
    # membership's own statements are pinned in tests/concurrency/test_membership_group_commit.py.
    settings.KAMENG_ORDER_AFTERCARE = []


@pytest.fixture(autouse=True)
def _scan_from_the_lowest_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # A random start past the last free keys makes the claim wrap around (a second UPDATE, correctly): pinning
    # the start keeps the count exact.
    claim_scan_from(monkeypatch)


def _statements(queries: CaptureQueriesContext) -> str:
    return "\n".join(" ".join(query["sql"].split())[:90] for query in queries.captured_queries)


@dataclass
class _Sent:
    queries: CaptureQueriesContext
    pipelined: list[bool] = field(default_factory=list)  # per statement executed (BEGIN and COMMIT are not)

    @property
    def round_trips(self) -> int:
        transaction_commands = len(self.queries) - len(self.pipelined)
        pipelines = sum(1 for before, now in zip([False, *self.pipelined], self.pipelined, strict=False)
                        if now and not before)
        return transaction_commands + self.pipelined.count(False) + pipelines


@contextmanager
def _sent() -> Iterator[_Sent]:
    with CaptureQueriesContext(connection) as queries:
        sent = _Sent(queries)

        def note(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
            sent.pipelined.append(bool(connection.connection.pgconn.pipeline_status))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(note):
            yield sent


def test_paid_checkout_costs_a_fixed_number_of_round_trips() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 10)
    fund_wallet(buyer, "100.00")
    order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id="warm")  # fills the process caches

    with _sent() as sent:
        result = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=2, request_id="pinned")

    assert result.created
    assert len(result.secrets) == 2
    assert len(sent.queries) == CHECKOUT_STATEMENTS, _statements(sent.queries)
    assert sent.round_trips == CHECKOUT_ROUND_TRIPS, (sent.pipelined, _statements(sent.queries))


def test_a_batch_of_three_buyers_costs_a_fixed_number_of_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    # What the warm batch read and took ahead stays usable however slow the machine is.
    monkeypatch.setattr(catalog_selectors, "SKUS_FOR_SALE_HELD_SECONDS", 600.0)
    monkeypatch.setattr(checkout._OrderIds, "FRESH_SECONDS", 600.0)
    buyers = UserFactory.create_batch(4)
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 10)
    for buyer in buyers:
        fund_wallet(buyer, "100.00")

    def batch(tag: str, group: list[Any]) -> list[_Checkout]:
        return [_Checkout(buyer_id=buyer.pk, wallet_id=wallet_account_id(user_id=buyer.pk), sku_id=sku.pk,
                          quantity=1, request_id=f"{tag}-{buyer.pk}") for buyer in group]

    warm = batch("warm", buyers[:2])
    write_batch(warm)  # fills the process caches
    pinned = batch("pinned", buyers[1:])

    with _sent() as sent:
        write_batch(pinned)

    assert all(checkout.order is not None for checkout in warm + pinned)
    assert len(sent.queries) == BATCH_STATEMENTS, _statements(sent.queries)
    assert sent.round_trips == BATCH_ROUND_TRIPS, (sent.pipelined, _statements(sent.queries))


def test_checkout_over_http_adds_only_the_user_lookup() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 10)
    fund_wallet(buyer, "100.00")
    client = Client(enforce_csrf_checks=True)
    client.force_login(buyer)
    client.cookies["csrftoken"] = "x" * 32

    def post(request_id: str) -> int:
        response = client.post("/api/v1/shop/orders", data=json.dumps(
            {"sku_id": sku.pk, "quantity": 1, "request_id": request_id}), content_type="application/json",
            headers={"X-CSRFToken": "x" * 32})
        return response.status_code

    assert post("warm") == 201
    with CaptureQueriesContext(connection) as queries:
        assert post("pinned") == 201

    session_reads = sum(1 for query in queries.captured_queries if "django_session" in query["sql"])
    assert len(queries) == CHECKOUT_STATEMENTS + 1 + session_reads, _statements(queries)
    assert session_reads <= 1  # none with the Redis-backed cached_db sessions of production


def test_a_buyer_with_a_pin_paying_under_the_password_free_limit_adds_the_price_lookup() -> None:
    """A buyer without a PIN costs nothing more (the test above: the session's user row says so). One with a PIN
    has the total priced before the checkout, to compare it with their limit: one more statement."""
    buyer = UserFactory.create()
    payment_pin_set(user_id=buyer.pk, new_pin="583920", password="correct-horse-9")
    password_free_limit_set(user_id=buyer.pk, limit_text="50", pin="583920")
    buyer.refresh_from_db()
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 10)
    fund_wallet(buyer, "100.00")
    choice = PaymentChoice(PayBy.WALLET, pin_settings=pin_settings_of(buyer))
    purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id="warm", payment=choice)

    with CaptureQueriesContext(connection) as queries:
        result = purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id="pinned", payment=choice)

    assert result.created
    assert len(queries) == CHECKOUT_STATEMENTS + 1, _statements(queries)
