"""An order number drawn twice (the same millisecond and 6 random digits as another order's): the unique constraint
refuses it, and the checkout draws again instead of failing the buyer."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError

from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.ledger.selectors import wallet_balance
from kameng.orders import checkout
from kameng.orders.models import Order
from kameng.orders.services import NUMBER_ATTEMPTS, order_checkout
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db


def _bought_once() -> tuple[int, int, Order]:
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 3)
    buyer = UserFactory.create()
    fund_wallet(buyer, "20.00")
    first = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id="number-1").order
    return buyer.pk, sku.pk, first


def test_a_number_another_order_holds_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    buyer_id, sku_id, first = _bought_once()
    draws = [first.number]
    real = checkout.public_number
    monkeypatch.setattr(checkout, "public_number", lambda prefix: draws.pop() if draws else real(prefix))

    second = order_checkout(buyer_id=buyer_id, sku_id=sku_id, quantity=1, request_id="number-2")

    assert second.created
    assert second.order.number != first.number
    assert len(second.secrets) == 1
    assert Order.objects.count() == 2
    assert wallet_balance(user_id=buyer_id) == Decimal("10.00")
    assert CardKey.objects.filter(status=CardKeyStatus.SOLD).count() == 2


def test_a_number_that_keeps_clashing_fails_without_charging(monkeypatch: pytest.MonkeyPatch) -> None:
    buyer_id, sku_id, first = _bought_once()
    drawn: list[str] = []

    def always_taken(prefix: str) -> str:
        drawn.append(prefix)
        return first.number

    monkeypatch.setattr(checkout, "public_number", always_taken)

    with pytest.raises(IntegrityError):
        order_checkout(buyer_id=buyer_id, sku_id=sku_id, quantity=1, request_id="number-2")

    assert len(drawn) == NUMBER_ATTEMPTS
    assert Order.objects.count() == 1
    assert wallet_balance(user_id=buyer_id) == Decimal("15.00")
    assert CardKey.objects.filter(status=CardKeyStatus.SOLD).count() == 1
