"""Pins the number of SQL round trips of one paid checkout, so the hot path cannot quietly grow.

Every statement is a round trip to PostgreSQL and, at 64 clients on two cores, round trips and the ORM work that
builds them are what the checkout's throughput is made of (bench/README.md has the figures).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pytest_django.fixtures import Settings

from kameng.accounts.paypin import password_free_limit_set, payment_pin_set, pin_settings_of
from kameng.inventory import services as inventory_services
from kameng.orders.services import order_checkout
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from tests.concurrency.threads import requires_postgresql
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# sku lookup, BEGIN, order INSERT, key claim UPDATE…RETURNING, events INSERT, journal with its entries INSERT,
# guarded wallet UPDATE, COMMIT: the single path writes a batch of one through the group commit's set-based writer
# (kameng/orders/checkout.py).
CHECKOUT_STATEMENTS = 8


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
    monkeypatch.setattr(inventory_services.random, "randint", lambda low, high: low)


def _statements(queries: CaptureQueriesContext) -> str:
    return "\n".join(" ".join(query["sql"].split())[:90] for query in queries.captured_queries)


def test_paid_checkout_costs_a_fixed_number_of_round_trips() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 10)
    fund_wallet(buyer, "100.00")
    order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id="warm")  # fills the process caches

    with CaptureQueriesContext(connection) as queries:
        result = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=2, request_id="pinned")

    assert result.created
    assert len(result.secrets) == 2
    assert len(queries) == CHECKOUT_STATEMENTS, _statements(queries)


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
