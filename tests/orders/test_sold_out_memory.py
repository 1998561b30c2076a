"""A SKU a claim just found without keys is answered "sold out" without a transaction (the flash sale's losers),
never for long: keys imported or given back in this process clear it at once, and the mark lapses after
SOLD_OUT_MEMORY_SECONDS whatever happened elsewhere. A replay still gets its own order back."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kameng.inventory import services as inventory_services
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.inventory.services import SoldOutError, card_keys_known_sold_out
from kameng.orders.services import order_cancel, order_checkout
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db


def _buyer() -> Any:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    return buyer


def _no_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**_kwargs: object) -> None:
        raise AssertionError("the checkout claimed keys of a SKU known to be sold out")

    monkeypatch.setattr(inventory_services, "card_keys_claim", refuse)
    monkeypatch.setattr("kameng.orders.checkout.card_keys_claim", refuse, raising=False)


def test_after_a_claim_finds_nothing_the_next_buyers_are_refused_without_claiming(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 1)
    winner = _buyer()
    won = order_checkout(buyer_id=winner.pk, sku_id=sku.pk, quantity=1, request_id="W-1")
    with pytest.raises(SoldOutError):
        order_checkout(buyer_id=_buyer().pk, sku_id=sku.pk, quantity=1)
    assert card_keys_known_sold_out(sku_id=sku.pk)

    _no_claims(monkeypatch)
    with pytest.raises(SoldOutError) as refused:
        order_checkout(buyer_id=_buyer().pk, sku_id=sku.pk, quantity=1, request_id="L-2")
    replay = order_checkout(buyer_id=winner.pk, sku_id=sku.pk, quantity=1, request_id="W-1")

    assert (refused.value.code, refused.value.extra) == ("sold_out", {"available": 0})
    assert (replay.created, replay.order.pk, replay.secrets) == (False, won.order.pk, won.secrets)


def test_a_short_claim_of_a_larger_quantity_marks_nothing() -> None:
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 2)

    with pytest.raises(SoldOutError):
        order_checkout(buyer_id=_buyer().pk, sku_id=sku.pk, quantity=3)

    assert not card_keys_known_sold_out(sku_id=sku.pk)
    assert order_checkout(buyer_id=_buyer().pk, sku_id=sku.pk, quantity=2).created


def test_keys_imported_are_sold_at_once() -> None:
    sku = SkuFactory.create(price=Decimal("9.50"))
    with pytest.raises(SoldOutError):
        order_checkout(buyer_id=_buyer().pk, sku_id=sku.pk, quantity=1)
    assert card_keys_known_sold_out(sku_id=sku.pk)

    stock_sku(sku, 1)

    assert order_checkout(buyer_id=_buyer().pk, sku_id=sku.pk, quantity=1).created


def test_keys_given_back_by_an_unpaid_order_are_sold_at_once() -> None:
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 1)
    holder = _buyer()
    unpaid = order_checkout(buyer_id=holder.pk, sku_id=sku.pk, quantity=1, pay_with_wallet=False).order
    with pytest.raises(SoldOutError):
        order_checkout(buyer_id=_buyer().pk, sku_id=sku.pk, quantity=1)

    order_cancel(order_id=unpaid.pk, buyer_id=holder.pk)

    assert order_checkout(buyer_id=_buyer().pk, sku_id=sku.pk, quantity=1).created


def test_the_mark_lapses_after_its_bound_whatever_happened_elsewhere() -> None:
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 1)
    order_checkout(buyer_id=_buyer().pk, sku_id=sku.pk, quantity=1)
    with pytest.raises(SoldOutError):
        order_checkout(buyer_id=_buyer().pk, sku_id=sku.pk, quantity=1)
    # Keys put back behind this process's back (another process, a staff tool): not seen until the mark lapses.
    CardKey.objects.filter(sku=sku).update(status=CardKeyStatus.AVAILABLE, order_id=None, sold_at=None)
    with pytest.raises(SoldOutError):
        order_checkout(buyer_id=_buyer().pk, sku_id=sku.pk, quantity=1)

    inventory_services._sold_out_at[sku.pk] -= inventory_services.SOLD_OUT_MEMORY_SECONDS + 0.01  # time passes
    inventory_services._bounds.clear()

    assert order_checkout(buyer_id=_buyer().pk, sku_id=sku.pk, quantity=1).created
