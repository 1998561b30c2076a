"""The share of a SKU's stock unpaid orders may hold, under real concurrency on PostgreSQL: many buyers reserving
at once never hold more than the share, and the SKU's reservation lock never holds up a wallet checkout."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pytest_django.fixtures import Settings

from kameng.core.errors import ConflictError
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.ledger.selectors import ledger_problems
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _shares(settings: Settings) -> None:
    requires_postgresql()
    settings.KAMENG_UNPAID_STOCK_SHARE = 0.5
    settings.KAMENG_UNPAID_STOCK_SHARE_PER_BUYER = 0.25


def test_many_buyers_reserving_at_once_hold_at_most_the_share() -> None:
    sku = SkuFactory.create(price=Decimal("1.00"), product__max_quantity=20)
    stock_sku(sku, 100)
    buyer_ids = [UserFactory.create().pk for _ in range(12)]

    outcomes = run_in_threads(12, lambda i: order_checkout(buyer_id=buyer_ids[i], sku_id=sku.pk, quantity=10,
                                                           pay_with_wallet=False))

    assert unexpected(outcomes, ConflictError) == []
    placed = [o.value for o in outcomes if o.value is not None]
    refused = [o.error for o in outcomes if o.error is not None]
    assert len(placed) == 5  # 50 of 100 keys
    assert all(isinstance(error, ConflictError) and error.code == "unpaid_stock_share" for error in refused)
    assert CardKey.objects.filter(status=CardKeyStatus.RESERVED).count() == 50
    assert Order.objects.filter(status=OrderStatus.PENDING_PAYMENT).count() == 5


def test_wallet_checkouts_racing_with_reservations_all_get_their_keys() -> None:
    sku = SkuFactory.create(price=Decimal("1.00"), product__max_quantity=20)
    stock_sku(sku, 100)
    buyer_ids = [UserFactory.create().pk for _ in range(16)]
    for buyer_id in buyer_ids[::2]:
        fund_wallet(UserFactory._meta.model.objects.get(pk=buyer_id), "5.00")

    outcomes = run_in_threads(16, lambda i: order_checkout(buyer_id=buyer_ids[i], sku_id=sku.pk, quantity=5,
                                                           pay_with_wallet=i % 2 == 0))

    assert unexpected(outcomes, ConflictError) == []
    assert all(o.error is None for o in outcomes if o.index % 2 == 0)
    assert Order.objects.filter(status=OrderStatus.DELIVERED).count() == 8
    assert CardKey.objects.filter(status=CardKeyStatus.SOLD).count() == 40
    assert CardKey.objects.filter(status=CardKeyStatus.RESERVED).count() <= 30
    assert ledger_problems() == []
