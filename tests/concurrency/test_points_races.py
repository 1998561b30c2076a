"""Racing for the last points (PostgreSQL): exchanges in the points shop and checkouts using points, all at once,
never take a buyer's points below zero and spend each point once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kameng.core.errors import ApplicationError
from kameng.ledger.selectors import points_balance, wallet_balance
from kameng.orders.models import Order
from kameng.points.models import PointsShopItem
from kameng.points.services import points_exchange_create
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku
from tests.points.support import give_points

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    requires_postgresql()


def test_exchanges_racing_for_the_last_points_spend_them_once() -> None:
    buyer = UserFactory.create()
    give_points(buyer.pk, 900)  # three exchanges' worth, eight try
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 20)
    item = PointsShopItem.objects.create(sku=sku, points_price=300)

    outcomes = run_in_threads(8, lambda index: points_exchange_create(
        buyer_id=buyer.pk, item_id=item.pk, request_id=f"race-{index}"))

    assert unexpected(outcomes, ApplicationError) == []
    refused = [outcome.error for outcome in outcomes if outcome.error is not None]
    assert {error.code for error in refused if isinstance(error, ApplicationError)} == {"insufficient_points"}
    assert sum(1 for outcome in outcomes if outcome.error is None) == 3
    assert Order.objects.count() == 3
    assert points_balance(user_id=buyer.pk) == 0


def test_checkouts_and_exchanges_racing_for_the_same_points_never_go_below_zero() -> None:
    buyer = UserFactory.create()
    give_points(buyer.pk, 500)
    fund_wallet(buyer, "500.00")
    sku = SkuFactory.create(price=Decimal("20.00"))
    stock_sku(sku, 20)
    item = PointsShopItem.objects.create(sku=sku, points_price=500)

    def spend(index: int) -> Order:
        if index % 2:
            return points_exchange_create(buyer_id=buyer.pk, item_id=item.pk, request_id=f"x-{index}").order
        # ¥20.00 with 500 points: ¥5.00 off, all 500 used
        return purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id=f"c-{index}",
                               payment=PaymentChoice(PayBy.WALLET), points=500).order

    outcomes = run_in_threads(8, spend)

    assert unexpected(outcomes, ApplicationError) == []
    assert {outcome.error.code for outcome in outcomes
            if isinstance(outcome.error, ApplicationError)} == {"insufficient_points"}
    winners = [outcome.value for outcome in outcomes if outcome.value is not None]
    assert len(winners) == 1
    assert winners[0].points_redeemed == 500
    assert points_balance(user_id=buyer.pk) == 0
    assert wallet_balance(user_id=buyer.pk) == Decimal("500.00") - winners[0].total_amount
