"""The one loss guard (kameng.suppliers.selectors.price_sells_at_loss): a supplier's offer sells at a loss when its
cost is above what the order pays per unit, a VIP's member price included; card-key bidding, direct top-up routing
and the staff list all ask it, and staff can still allow a loss per offer."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction

from kameng.accounts.models import User
from kameng.catalog.models import Sku
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.inventory.services import SoldOutError
from kameng.membership.models import MemberLevel, MemberPrice
from kameng.membership.pricing import price_tables_changed
from kameng.orders.models import Order
from kameng.orders.services import order_checkout
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from kameng.suppliers.models import RoutingRuleKind, SkuRoutingRule, SupplierOffer
from kameng.suppliers.routing import offers_eligible, order_route
from kameng.suppliers.selectors import offer_at_loss_q, offer_is_at_loss, price_sells_at_loss
from tests.factories import SkuFactory, SupplierOfferFactory, UserFactory, fund_wallet
from tests.inventory.test_card_key_bidding import supplier_stock
from tests.membership.support import levels_install, member_at
from tests.suppliers.topup_support import Upstreams, _valid_target, topup_sku, upstreams

__all__ = ["upstreams"]

pytestmark = pytest.mark.django_db


def _vip(sku: Sku, member_price: str) -> User:
    """A VIP1 buyer who pays `member_price` for the SKU (a fixed member price of VIP1), with money to spend."""
    levels_install()
    MemberPrice.objects.create(level=MemberLevel.objects.get(rank=1), sku=sku, price=Decimal(member_price))
    buyer = UserFactory.create()
    member_at(buyer, "100.00", 1)
    price_tables_changed()
    fund_wallet(buyer, "500.00")
    return buyer


def _retail_buyer() -> User:
    buyer = UserFactory.create()
    fund_wallet(buyer, "500.00")
    return buyer


def _buy_card_key(buyer: User, sku: Sku, request_id: str) -> Order:
    return purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id=request_id,
                           payment=PaymentChoice(PayBy.WALLET)).order


def _card_key_offer(sku: Sku, price: str, **fields: Any) -> SupplierOffer:
    return SupplierOfferFactory.create(sku=sku, price=Decimal(price), stock_source="card_keys", **fields)


def _sold_cost(order: Order) -> Decimal | None:
    return CardKey.objects.get(order=order, status=CardKeyStatus.SOLD).cost


@pytest.mark.parametrize(("cost", "unit_price", "is_loss_allowed", "at_loss"), [
    ("9.01", "9.00", False, True),
    ("9.00", "9.00", False, False),  # equal is no loss
    ("8.99", "9.00", False, False),
    ("9.50", "9.00", True, False),  # staff allowed the loss
])
def test_the_guard_compares_the_cost_with_the_unit_price_and_sql_agrees(cost: str, unit_price: str,
                                                                        is_loss_allowed: bool, at_loss: bool) -> None:
    offer = _card_key_offer(SkuFactory.create(price=Decimal("10.00")), cost, is_loss_allowed=is_loss_allowed)

    assert price_sells_at_loss(cost=Decimal(cost), unit_price=Decimal(unit_price),
                               is_loss_allowed=is_loss_allowed) is at_loss
    assert offer_is_at_loss(offer, unit_price=Decimal(unit_price)) is at_loss
    in_sql = SupplierOffer.objects.filter(offer_at_loss_q(unit_price=Decimal(unit_price)), pk=offer.pk).exists()
    assert in_sql is at_loss
    other_sku = SkuFactory.create(price=Decimal("1.00"))  # a price per SKU (several SKUs in one query) agrees too
    per_sku = offer_at_loss_q(unit_prices={offer.sku_id: Decimal(unit_price), other_sku.pk: Decimal("0.01")})
    assert SupplierOffer.objects.filter(per_sku, pk=offer.pk).exists() is at_loss
    assert offer_is_at_loss(offer) is False  # at the retail price of ¥10.00 none of them is at a loss
    unnamed = offer_at_loss_q(unit_prices={other_sku.pk: Decimal("0.01")})  # its own SKU not named: at retail
    assert SupplierOffer.objects.filter(unnamed, pk=offer.pk).exists() is False


def test_a_vip_never_gets_a_card_key_that_costs_more_than_the_vip_pays() -> None:
    sku = SkuFactory.create(price=Decimal("10.00"))
    dear = _card_key_offer(sku, "9.50")  # fine at the retail ¥10.00, a loss at the member ¥9.00
    cheap = _card_key_offer(sku, "8.80")
    SkuRoutingRule.objects.create(sku=sku, supplier=dear.supplier, kind=RoutingRuleKind.PIN)
    supplier_stock(dear, 2)
    supplier_stock(cheap, 1)
    vip = _vip(sku, "9.00")

    vip_order = _buy_card_key(vip, sku, "vip-1")
    retail_order = _buy_card_key(_retail_buyer(), sku, "retail-1")

    # The VIP pays ¥9.00: the pinned supplier's ¥9.50 key would lose ¥0.50, so the ¥8.80 key serves.
    assert (vip_order.unit_price, vip_order.total_amount) == (Decimal("9.00"), Decimal("9.00"))
    assert _sold_cost(vip_order) == Decimal("8.80")
    # A buyer at the retail ¥10.00 gets the pinned supplier's ¥9.50 key.
    assert (retail_order.unit_price, _sold_cost(retail_order)) == (Decimal("10.00"), Decimal("9.50"))
    # The cheap supplier is out: the only keys left cost ¥9.50, above the VIP's ¥9.00, so the VIP is told sold out.
    with pytest.raises(SoldOutError):
        _buy_card_key(vip, sku, "vip-2")
    assert Order.objects.filter(buyer=vip).count() == 1
    assert CardKey.objects.filter(sku=sku, status=CardKeyStatus.AVAILABLE, cost=Decimal("9.50")).count() == 1


def test_staff_allowing_the_loss_lets_the_vip_buy_the_dearer_key() -> None:
    sku = SkuFactory.create(price=Decimal("10.00"))
    dear = _card_key_offer(sku, "9.50", is_loss_allowed=True)
    supplier_stock(dear, 1)
    vip = _vip(sku, "9.00")

    order = _buy_card_key(vip, sku, "vip-1")

    assert (order.unit_price, _sold_cost(order)) == (Decimal("9.00"), Decimal("9.50"))


def test_direct_topup_routing_compares_with_the_vips_member_price(upstreams: Upstreams,
                                                                  django_capture_on_commit_callbacks:
                                                                  Callable[..., Any]) -> None:
    sku = topup_sku("50.00")
    upstreams.offer("贵", sku, "46.00", rating="5.00")  # below retail ¥50.00, above the member ¥45.00
    cheap_but_low_rated, _ = upstreams.offer("廉", sku, "44.50", rating="1.00")
    SkuRoutingRule.objects.create(sku=sku, supplier=SupplierOffer.objects.get(price=Decimal("46.00")).supplier,
                                  kind=RoutingRuleKind.PIN)
    vip = _vip(sku, "45.00")

    with transaction.atomic():
        order = order_checkout(buyer_id=vip.pk, sku_id=sku.pk, quantity=1, topup_target=_valid_target(sku)).order

    assert order.unit_price == Decimal("45.00")
    assert [offer.pk for offer in offers_eligible(order=order)] == [cheap_but_low_rated.pk]
    route = order_route(order=order)
    assert route is not None
    assert route.offer == cheap_but_low_rated
