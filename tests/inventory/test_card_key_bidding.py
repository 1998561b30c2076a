from __future__ import annotations

from decimal import Decimal

import pytest

from kameng.catalog.models import Sku
from kameng.inventory import services as inventory_services
from kameng.inventory.models import CardKey, CardKeyBatch, CardKeyStatus
from kameng.inventory.selectors import stock_by_sku_now
from kameng.inventory.services import SoldOutError, card_keys_claim
from kameng.orders.models import Order
from kameng.suppliers.models import RoutingRuleKind, SkuRoutingRule, SupplierOffer, SupplierStatus
from kameng.suppliers.services import offer_price_change
from tests.factories import SkuFactory, SupplierOfferFactory, UserFactory, stock_sku

pytestmark = pytest.mark.django_db


def _order(sku: Sku, number: str, quantity: int = 1) -> Order:
    return Order.objects.create(number=number, buyer=UserFactory.create(), sku=sku, title="测试", quantity=quantity,
                                unit_price=Decimal("10.00"), total_amount=Decimal("10.00") * quantity)


def supplier_stock(offer: SupplierOffer, count: int) -> list[int]:
    """Import `count` keys for the offer's SKU as the offer's supplier's, at its price; returns their ids."""
    stock_sku(offer.sku, count, prefix=f"S{offer.supplier_id}-{offer.sku_id}")
    batch = CardKeyBatch.objects.order_by("-pk").first()
    keys = CardKey.objects.filter(batch=batch)
    keys.update(supplier_id=offer.supplier_id, cost=offer.price)
    return sorted(keys.values_list("pk", flat=True))


def _claim(sku: Sku, number: str, quantity: int = 1) -> list[int]:
    return [pk for pk, _ in card_keys_claim(sku_id=sku.pk, order_id=_order(sku, number, quantity).pk,
                                            quantity=quantity, sell=True)]


def _offer(sku: Sku, price: str, **kwargs: object) -> SupplierOffer:
    return SupplierOfferFactory.create(sku=sku, price=Decimal(price), stock_source="card_keys", **kwargs)


def test_the_cheapest_suppliers_keys_go_first_then_the_next() -> None:
    sku = SkuFactory.create(price=Decimal("10.00"))
    dear = supplier_stock(_offer(sku, "9.50"), 2)
    cheap = supplier_stock(_offer(sku, "9.00"), 2)
    assert sorted(_claim(sku, "K1") + _claim(sku, "K2")) == cheap
    # The cheapest is out: the next one serves, then nothing is left.
    assert sorted(_claim(sku, "K3") + _claim(sku, "K4")) == dear
    with pytest.raises(SoldOutError):
        _claim(sku, "K5")
    costs = dict(CardKey.objects.filter(status=CardKeyStatus.SOLD).values_list("pk", "cost"))
    assert {pk: costs[pk] for pk in cheap + dear} == {cheap[0]: Decimal("9.00"), cheap[1]: Decimal("9.00"),
                                                       dear[0]: Decimal("9.50"), dear[1]: Decimal("9.50")}


def test_an_order_spans_two_suppliers_when_the_cheaper_runs_out_and_each_key_keeps_its_cost() -> None:
    sku = SkuFactory.create(price=Decimal("10.00"))
    cheap_offer, dear_offer = _offer(sku, "8.00"), _offer(sku, "9.00")
    cheap = supplier_stock(cheap_offer, 2)
    dear = supplier_stock(dear_offer, 3)
    taken = _claim(sku, "K1", quantity=3)
    assert set(cheap) < set(taken)
    assert len(set(taken) & set(dear)) == 1
    costs = dict(CardKey.objects.filter(pk__in=taken).values_list("pk", "cost"))
    suppliers = dict(CardKey.objects.filter(pk__in=taken).values_list("pk", "supplier_id"))
    assert {costs[pk] for pk in cheap} == {Decimal("8.00")}
    assert {suppliers[pk] for pk in cheap} == {cheap_offer.supplier_id}
    assert [costs[pk] for pk in set(taken) & set(dear)] == [Decimal("9.00")]


def test_platform_keys_rank_before_every_supplier() -> None:
    sku = SkuFactory.create(price=Decimal("10.00"))
    supplier_stock(_offer(sku, "1.00"), 2)
    stock_sku(sku, 2, prefix="PLATFORM")
    platform = sorted(CardKey.objects.filter(sku=sku, supplier__isnull=True).values_list("pk", flat=True))
    assert sorted(_claim(sku, "K1", quantity=2)) == platform
    assert CardKey.objects.filter(sku=sku, supplier__isnull=True, status=CardKeyStatus.SOLD).count() == 2
    assert CardKey.objects.filter(sku=sku, supplier__isnull=False, status=CardKeyStatus.AVAILABLE).count() == 2


def test_a_higher_rating_breaks_a_price_tie_and_a_pin_goes_first() -> None:
    sku = SkuFactory.create(price=Decimal("10.00"))
    three = _offer(sku, "9.00", supplier__rating=Decimal("3.00"))
    five = _offer(sku, "9.00", supplier__rating=Decimal("5.00"))
    dear = _offer(sku, "9.90")
    supplier_stock(three, 1)
    five_keys = supplier_stock(five, 1)
    dear_keys = supplier_stock(dear, 1)
    assert _claim(sku, "K1") == five_keys
    SkuRoutingRule.objects.create(sku=sku, supplier=dear.supplier, kind=RoutingRuleKind.PIN)
    inventory_services._bounds.clear()
    assert _claim(sku, "K2") == dear_keys


@pytest.mark.parametrize("ineligible", ["suspended", "inactive", "excluded", "at_a_loss"])
def test_keys_of_an_ineligible_supplier_are_never_sold(ineligible: str) -> None:
    sku = SkuFactory.create(price=Decimal("10.00"))
    cheap = _offer(sku, "11.00" if ineligible == "at_a_loss" else "5.00")
    supplier_stock(cheap, 2)
    dear_keys = supplier_stock(_offer(sku, "9.00"), 1)
    if ineligible == "suspended":
        cheap.supplier.status = SupplierStatus.SUSPENDED
        cheap.supplier.save()
    elif ineligible == "inactive":
        SupplierOffer.objects.filter(pk=cheap.pk).update(is_active=False)
    elif ineligible == "excluded":
        SkuRoutingRule.objects.create(sku=sku, supplier=cheap.supplier, kind=RoutingRuleKind.EXCLUDE)
    assert _claim(sku, "K1") == dear_keys
    with pytest.raises(SoldOutError) as refused:
        _claim(sku, "K2")
    assert refused.value.extra == {"available": 0}
    assert CardKey.objects.filter(supplier=cheap.supplier, status=CardKeyStatus.AVAILABLE).count() == 2


def test_loss_allowed_by_staff_keeps_a_dear_supplier_eligible() -> None:
    sku = SkuFactory.create(price=Decimal("10.00"))
    keys = supplier_stock(_offer(sku, "11.00", is_loss_allowed=True), 1)
    assert _claim(sku, "K1") == keys


def test_sold_out_counts_only_eligible_keys() -> None:
    sku = SkuFactory.create(price=Decimal("10.00"))
    suspended = _offer(sku, "5.00", supplier__status=SupplierStatus.SUSPENDED)
    supplier_stock(suspended, 5)
    supplier_stock(_offer(sku, "9.00"), 2)
    with pytest.raises(SoldOutError) as refused:
        _claim(sku, "K1", quantity=3)
    assert refused.value.extra == {"available": 2}
    assert CardKey.objects.filter(sku=sku).exclude(status=CardKeyStatus.AVAILABLE).count() == 0


def test_a_price_change_updates_the_available_keys_only() -> None:
    sku = SkuFactory.create(price=Decimal("10.00"))
    offer = _offer(sku, "9.00")
    other = supplier_stock(_offer(sku, "9.50"), 1)
    keys = supplier_stock(offer, 3)
    sold = _claim(sku, "K1")
    reserved = [pk for pk, _ in card_keys_claim(sku_id=sku.pk, order_id=_order(sku, "K2").pk, quantity=1,
                                                sell=False)]
    offer_price_change(offer_id=offer.pk, price=Decimal("8.80"))
    offer.refresh_from_db()
    assert offer.price == Decimal("8.80")
    costs = dict(CardKey.objects.filter(sku=sku).values_list("pk", "cost"))
    available = set(keys) - set(sold) - set(reserved)
    assert len(available) == 1
    assert [costs[pk] for pk in available] == [Decimal("8.80")]
    assert [costs[pk] for pk in sold + reserved] == [Decimal("9.00"), Decimal("9.00")]
    assert [costs[pk] for pk in other] == [Decimal("9.50")]


def test_a_price_change_reorders_the_bidding() -> None:
    sku = SkuFactory.create(price=Decimal("10.00"))
    first = _offer(sku, "9.00")
    second = _offer(sku, "9.50")
    supplier_stock(first, 1)
    second_keys = supplier_stock(second, 1)
    offer_price_change(offer_id=second.pk, price=Decimal("8.00"))
    assert _claim(sku, "K1") == second_keys
    assert CardKey.objects.get(pk=second_keys[0]).cost == Decimal("8.00")


def test_a_price_change_refuses_a_price_of_zero() -> None:
    offer = _offer(SkuFactory.create(), "9.00")
    with pytest.raises(Exception, match="供货价必须大于 0"):
        offer_price_change(offer_id=offer.pk, price=Decimal("0"))
    offer.refresh_from_db()
    assert offer.price == Decimal("9.00")


def test_a_sku_no_supplier_offers_claims_without_any_supplier_predicate() -> None:
    sku = SkuFactory.create()
    stock_sku(sku, 2)
    _claim(sku, "K1")
    plan = inventory_services._bounds[sku.pk]
    assert [(source.supplier_id, source.filtered) for source in plan.sources] == [(None, False)]


def test_stock_counts_only_the_keys_a_claim_may_take() -> None:
    sku = SkuFactory.create(price=Decimal("10.00"))
    other = SkuFactory.create()
    stock_sku(sku, 1, prefix="PLATFORM")
    stock_sku(other, 2)
    supplier_stock(_offer(sku, "9.00"), 2)
    supplier_stock(_offer(sku, "5.00", supplier__status=SupplierStatus.SUSPENDED), 4)
    assert stock_by_sku_now([sku.pk, other.pk]) == {sku.pk: 3, other.pk: 2}
