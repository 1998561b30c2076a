"""Shared by the after-sales tests: a buyer's delivered order, paid from the wallet."""

from __future__ import annotations

from decimal import Decimal

from kameng.accounts.models import User
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku


def delivered_order(buyer: User | None = None, price: str = "10.00", quantity: int = 1) -> Order:
    buyer = buyer or UserFactory.create()
    sku = SkuFactory.create(price=Decimal(price))
    stock_sku(sku, quantity)
    fund_wallet(buyer, Decimal(price) * quantity, reference=f"after-sales-fund-{buyer.pk}-{sku.pk}")
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=quantity).order
    assert order.status == OrderStatus.DELIVERED
    return order
