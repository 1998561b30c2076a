"""Card-key bidding under real concurrency on PostgreSQL: a SKU stocked by several suppliers never oversells."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.inventory.services import SoldOutError
from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout
from kameng.suppliers.models import SupplierStatus
from tests.concurrency.threads import run_in_threads, unexpected
from tests.factories import SkuFactory, SupplierOfferFactory, UserFactory, fund_wallet
from tests.inventory.test_card_key_bidding import supplier_stock

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("checkout_path")]


def _buyers(count: int, amount: str) -> list[int]:
    buyers = [UserFactory.create() for _ in range(count)]
    for buyer in buyers:
        fund_wallet(buyer, amount)
    return [buyer.pk for buyer in buyers]


@pytest.mark.parametrize("quantities", [(1,), (1, 2, 3)])
def test_buyers_race_for_keys_of_three_suppliers_and_a_suspended_one(quantities: tuple[int, ...]) -> None:
    price = Decimal("10.00")
    sku = SkuFactory.create(price=price)
    costs = {Decimal("8.00"): 10, Decimal("8.50"): 10, Decimal("9.00"): 10}
    offers = [SupplierOfferFactory.create(sku=sku, price=cost, stock_source="card_keys") for cost in costs]
    for offer in offers:
        supplier_stock(offer, costs[offer.price])
    suspended = SupplierOfferFactory.create(sku=sku, price=Decimal("1.00"), stock_source="card_keys",
                                            supplier__status=SupplierStatus.SUSPENDED)
    supplier_stock(suspended, 10)
    buyer_ids = _buyers(60, "100.00")

    outcomes = run_in_threads(60, lambda i: order_checkout(
        batched=True, buyer_id=buyer_ids[i], sku_id=sku.pk, quantity=quantities[i % len(quantities)],
        request_id=f"bid-{i}"))

    assert unexpected(outcomes, SoldOutError) == []
    won = [o.value for o in outcomes if o.value is not None]
    sold = list(CardKey.objects.filter(status=CardKeyStatus.SOLD).values_list("pk", "order_id", "supplier_id", "cost"))
    # Never more keys sold than stocked by eligible suppliers; no key in two orders; each order has exactly its keys.
    assert len(sold) == len({pk for pk, *_ in sold})
    assert sum(result.order.quantity for result in won) == len(sold)
    if quantities == (1,):
        assert len(sold) == 30  # 60 buyers for 30 keys: every eligible key sold, exactly once
        assert len(won) == 30
    else:
        assert 25 <= len(sold) <= 30  # orders of 2 or 3 may leave a key or two nobody could take whole
    keys_by_order: dict[int, int] = {}
    for _, order_id, _, _ in sold:
        keys_by_order[order_id] = keys_by_order.get(order_id, 0) + 1
    orders = list(Order.objects.values_list("pk", "status", "quantity"))
    assert len(orders) == len(won)
    assert all(status == OrderStatus.DELIVERED and keys_by_order.get(pk) == quantity for pk, status, quantity in orders)
    # Each key keeps its supplier's cost; the suspended supplier sold nothing.
    price_of = {offer.supplier_id: offer.price for offer in offers}
    assert all(cost == price_of[supplier_id] for _, _, supplier_id, cost in sold)
    assert CardKey.objects.filter(supplier_id=suspended.supplier_id, status=CardKeyStatus.AVAILABLE).count() == 10
    assert CardKey.objects.filter(status=CardKeyStatus.RESERVED).count() == 0
    paid = sum((result.order.total_amount for result in won), Decimal("0.00"))
    assert sum((wallet_balance(user_id=buyer_id) for buyer_id in buyer_ids), Decimal("0.00")) == 6000 - paid
    assert ledger_problems() == []


def test_the_cheapest_supplier_sells_out_first_under_load() -> None:
    sku = SkuFactory.create(price=Decimal("10.00"))
    cheap = SupplierOfferFactory.create(sku=sku, price=Decimal("7.00"), stock_source="card_keys")
    dear = SupplierOfferFactory.create(sku=sku, price=Decimal("9.00"), stock_source="card_keys")
    supplier_stock(cheap, 20)
    supplier_stock(dear, 40)
    buyer_ids = _buyers(30, "50.00")

    outcomes = run_in_threads(30, lambda i: order_checkout(
        batched=True, buyer_id=buyer_ids[i], sku_id=sku.pk, quantity=1, request_id=f"cheap-{i}"))

    assert unexpected(outcomes) == []
    assert CardKey.objects.filter(supplier_id=cheap.supplier_id, status=CardKeyStatus.SOLD).count() == 20
    assert CardKey.objects.filter(supplier_id=dear.supplier_id, status=CardKeyStatus.SOLD).count() == 10
    assert ledger_problems() == []
