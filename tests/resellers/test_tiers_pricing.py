"""The reseller tier price rule in the one price function, its caches, and the platform-cost check on tier prices."""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kameng.catalog.pricing import (
    FLOOR_LINE_CODE,
    SALES_CHANNEL_API,
    SALES_CHANNEL_OPENAPI,
    SALES_CHANNEL_STOREFRONT,
    sku_price,
    subsite_channel,
)
from kameng.catalog.selectors import SkuForSale, skus_for_sale
from kameng.membership import pricing as member_pricing
from kameng.membership.pricing import MEMBER_LINE_CODE, LevelInfo, PriceTables
from kameng.resellers import pricing
from kameng.resellers.models import ResellerStatus, TierPrice, TierPriceKind
from kameng.resellers.pricing import RESELLER_LINE_CODE, TierInfo, TierRow, TierTables, reseller_price_rule
from kameng.resellers.services import reseller_suspend
from kameng.resellers.tiers import (
    TierPriceBelowCostError,
    sku_platform_costs,
    tier_discount_check,
    tier_price_set,
)
from tests.factories import SkuFactory, SupplierOfferFactory, UserFactory
from tests.membership.support import levels_install, member_at
from tests.resellers.support import reseller_make, tier_make

FEN = Decimal("0.01")
RULES = ["kameng.membership.pricing.member_price_rule", "kameng.resellers.pricing.reseller_price_rule"]


@pytest.fixture(autouse=True)
def _rules(settings: Any) -> None:
    settings.KAMENG_PRICE_RULES = RULES


def _quote(sku_id: int, buyer_id: int, channel: str = SALES_CHANNEL_STOREFRONT, quantity: int = 1) -> Any:
    sku = skus_for_sale(sku_ids=[sku_id])[sku_id]
    return sku_price(sku=sku, buyer_id=buyer_id, quantity=quantity, sales_channel=channel)


@pytest.mark.django_db
def test_active_reseller_gets_the_tier_default_discount_off_retail() -> None:
    sku = SkuFactory.create(price=Decimal("100.00"))
    reseller = reseller_make(tier_make(discount="20.00"))
    quote = _quote(sku.pk, reseller.user_id, quantity=3)
    assert quote.unit_price == Decimal("80.00")
    assert quote.total == Decimal("240.00")
    assert quote.lines_json() == [{"code": "reseller_tier", "label": "高级代理价", "amount": "-20.00"}]


@pytest.mark.django_db
@pytest.mark.parametrize(("kind", "percent", "fixed", "expected"), [
    (TierPriceKind.INHERIT, None, None, "80.00"),
    (TierPriceKind.PERCENT, "33.33", None, "66.67"),
    (TierPriceKind.FIXED, None, "71.50", "71.50"),
])
def test_tier_price_row_of_the_sku(kind: str, percent: str | None, fixed: str | None, expected: str) -> None:
    sku = SkuFactory.create(price=Decimal("100.00"))
    tier = tier_make(discount="20.00")
    reseller = reseller_make(tier)
    TierPrice.objects.create(tier=tier, sku=sku, kind=kind, percent_off=percent and Decimal(percent),
                             fixed_price=fixed and Decimal(fixed))
    pricing.reseller_tables_changed()
    assert _quote(sku.pk, reseller.user_id).unit_price == Decimal(expected)


@pytest.mark.django_db
@pytest.mark.parametrize("status", [ResellerStatus.PENDING, ResellerStatus.REJECTED, ResellerStatus.SUSPENDED])
def test_reseller_not_active_pays_retail(status: str) -> None:
    sku = SkuFactory.create(price=Decimal("100.00"))
    reseller = reseller_make(tier_make(), status=status)
    quote = _quote(sku.pk, reseller.user_id)
    assert quote.unit_price == Decimal("100.00")
    assert quote.lines == ()


@pytest.mark.django_db
def test_buyer_not_a_reseller_pays_retail() -> None:
    sku = SkuFactory.create(price=Decimal("100.00"))
    reseller_make(tier_make())
    assert _quote(sku.pk, UserFactory.create().pk).unit_price == Decimal("100.00")


@pytest.mark.django_db
def test_inactive_tier_gives_no_price() -> None:
    sku = SkuFactory.create(price=Decimal("100.00"))
    tier = tier_make()
    reseller = reseller_make(tier)
    tier.is_active = False
    tier.save()
    pricing.reseller_tables_changed()
    assert _quote(sku.pk, reseller.user_id).unit_price == Decimal("100.00")


@pytest.mark.django_db
@pytest.mark.parametrize(("channel", "expected"), [
    (SALES_CHANNEL_STOREFRONT, "80.00"), (SALES_CHANNEL_API, "80.00"), (SALES_CHANNEL_OPENAPI, "80.00"),
    ("batch", "80.00"), (subsite_channel(5), "100.00"),
])
def test_every_channel_but_a_subsite(channel: str, expected: str) -> None:
    sku = SkuFactory.create(price=Decimal("100.00"))
    reseller = reseller_make(tier_make(discount="20.00"))
    assert _quote(sku.pk, reseller.user_id, channel=channel).unit_price == Decimal(expected)


@pytest.mark.django_db
def test_floor_price_clamps_the_tier_price() -> None:
    sku = SkuFactory.create(price=Decimal("100.00"), floor_price=Decimal("90.00"))
    reseller = reseller_make(tier_make(discount="20.00"))
    quote = _quote(sku.pk, reseller.user_id)
    assert quote.unit_price == Decimal("90.00")
    assert [(line.code, line.amount) for line in quote.lines] == [
        (RESELLER_LINE_CODE, Decimal("-20.00")), (FLOOR_LINE_CODE, Decimal("10.00"))]


@pytest.mark.django_db
def test_member_and_tier_the_better_applies() -> None:
    """VIP4 (95折) and a tier of 3 % off: the member price is better, no tier line; a tier of 20 %: the tier line
    takes the member price down to the tier price (80.00), not 20 % off the member price."""
    levels_install()
    sku = SkuFactory.create(price=Decimal("100.00"))
    small = reseller_make(tier_make(name="普通代理", discount="3.00", rank=1))
    member_at(small.user, "6000.00", 4)
    quote = _quote(sku.pk, small.user_id)
    assert quote.unit_price == Decimal("95.00")
    assert [line.code for line in quote.lines] == [MEMBER_LINE_CODE]

    big = reseller_make(tier_make(name="总代理", discount="20.00", rank=3))
    member_at(big.user, "6000.00", 4)
    quote = _quote(sku.pk, big.user_id)
    assert quote.unit_price == Decimal("80.00")
    assert quote.lines_json() == [{"code": "member", "label": "会员价", "amount": "-5.00"},
                                  {"code": "reseller_tier", "label": "总代理价", "amount": "-15.00"}]


@pytest.mark.django_db
def test_cached_lookups_cost_no_query(django_assert_num_queries: Callable[..., Any]) -> None:
    sku = SkuFactory.create(price=Decimal("100.00"))
    reseller = reseller_make(tier_make())
    buyer = UserFactory.create()
    for_sale = skus_for_sale(sku_ids=[sku.pk])[sku.pk]
    for buyer_id in (reseller.user_id, buyer.pk):
        reseller_price_rule(sku=for_sale, buyer_id=buyer_id, quantity=1, sales_channel="storefront",
                            unit_price=Decimal("100.00"))
    with django_assert_num_queries(0):
        for _ in range(3):
            for buyer_id in (reseller.user_id, buyer.pk):
                reseller_price_rule(sku=for_sale, buyer_id=buyer_id, quantity=1, sales_channel="storefront",
                                    unit_price=Decimal("100.00"))


@pytest.mark.django_db
def test_no_active_reseller_no_buyer_lookup(django_assert_num_queries: Callable[..., Any]) -> None:
    sku = SkuFactory.create(price=Decimal("100.00"))
    for_sale = skus_for_sale(sku_ids=[sku.pk])[sku.pk]
    pricing.tier_tables()
    with django_assert_num_queries(0):
        for buyer_id in range(1, 50):
            assert reseller_price_rule(sku=for_sale, buyer_id=buyer_id, quantity=1, sales_channel="storefront",
                                       unit_price=Decimal("100.00")) is None


@pytest.mark.django_db
def test_staff_changes_reach_the_price_after_commit(django_capture_on_commit_callbacks: Any) -> None:
    sku = SkuFactory.create(price=Decimal("100.00"))
    tier = tier_make(discount="20.00")
    reseller = reseller_make(tier)
    assert _quote(sku.pk, reseller.user_id).unit_price == Decimal("80.00")
    with django_capture_on_commit_callbacks(execute=True):
        tier_price_set(tier_id=tier.pk, sku_id=sku.pk, kind=TierPriceKind.FIXED, fixed_price=Decimal("70.00"))
    assert _quote(sku.pk, reseller.user_id).unit_price == Decimal("70.00")
    staff = UserFactory.create(is_staff=True)
    with django_capture_on_commit_callbacks(execute=True):
        reseller_suspend(reseller_id=reseller.pk, staff_id=staff.pk, reason="违规转售")
    assert _quote(sku.pk, reseller.user_id).unit_price == Decimal("100.00")


# --- the platform's cost ------------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_platform_cost_is_the_higher_of_floor_and_cheapest_active_offer() -> None:
    sku = SkuFactory.create(price=Decimal("100.00"), floor_price=Decimal("60.00"))
    SupplierOfferFactory.create(sku=sku, price=Decimal("75.00"))
    SupplierOfferFactory.create(sku=sku, price=Decimal("70.00"))
    SupplierOfferFactory.create(sku=sku, price=Decimal("50.00"), is_active=False)
    floor_only = SkuFactory.create(price=Decimal("10.00"), floor_price=Decimal("8.00"))
    nothing = SkuFactory.create(price=Decimal("10.00"))
    assert sku_platform_costs([sku.pk, floor_only.pk, nothing.pk]) == {
        sku.pk: Decimal("70.00"), floor_only.pk: Decimal("8.00")}


@pytest.mark.django_db
def test_fixed_tier_price_below_cost_is_refused_naming_sku_price_and_cost() -> None:
    sku = SkuFactory.create(price=Decimal("100.00"), product__name="王者点券", name="100 元")
    SupplierOfferFactory.create(sku=sku, price=Decimal("92.00"))
    tier = tier_make()
    with pytest.raises(TierPriceBelowCostError) as raised:
        tier_price_set(tier_id=tier.pk, sku_id=sku.pk, kind=TierPriceKind.FIXED, fixed_price=Decimal("91.99"))
    assert raised.value.message == ("「王者点券 · 100 元」的代理价 ¥91.99 低于平台成本 ¥92.00"
                                    "（最低售价与最低供货价中较高者），请调高价格或减小折扣")
    assert not TierPrice.objects.exists()
    tier_price_set(tier_id=tier.pk, sku_id=sku.pk, kind=TierPriceKind.FIXED, fixed_price=Decimal("92.00"))
    assert TierPrice.objects.get().fixed_price == Decimal("92.00")


@pytest.mark.django_db
def test_percent_result_and_inherited_default_below_cost_are_refused() -> None:
    sku = SkuFactory.create(price=Decimal("100.00"), floor_price=Decimal("85.00"))
    tier = tier_make(discount="10.00")
    with pytest.raises(TierPriceBelowCostError, match=r"¥84\.99"):
        tier_price_set(tier_id=tier.pk, sku_id=sku.pk, kind=TierPriceKind.PERCENT, percent_off=Decimal("15.01"))
    tier_price_set(tier_id=tier.pk, sku_id=sku.pk, kind=TierPriceKind.PERCENT, percent_off=Decimal("15.00"))
    # the SKU has its own percent row: a deeper default discount does not touch it
    tier_discount_check(tier_id=tier.pk, discount_percent=Decimal("30.00"))
    # another tier inherits the default for that SKU
    with pytest.raises(TierPriceBelowCostError, match=r"¥70\.00 低于平台成本 ¥85\.00"):
        tier_discount_check(tier_id=None, discount_percent=Decimal("30.00"))


# --- properties -------------------------------------------------------------------------------------------------

prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)
percents = st.decimals(min_value=Decimal(0), max_value=Decimal("99.99"), places=2)
shares = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(1), places=4)
tier_rows = st.one_of(st.none(), st.just(TierRow(kind=TierPriceKind.INHERIT)),
                      percents.map(lambda p: TierRow(kind=TierPriceKind.PERCENT, percent_off=p)),
                      prices.map(lambda p: TierRow(kind=TierPriceKind.FIXED, fixed_price=p)))


def _sku(price: Decimal, floor: Decimal | None) -> SkuForSale:
    return SkuForSale(sku_id=7, sku_name="10 元", price=price, product_id=3, product_name="点卡",
                      delivery_kind="card_key", min_quantity=1, max_quantity=100, category_id=5, floor_price=floor)


def _half_up(value: Decimal) -> Decimal:
    return value.quantize(FEN, rounding=ROUND_HALF_UP)


def _expected_tier_price(base: Decimal, discount: Decimal, row: TierRow | None) -> Decimal:
    if row is not None and row.kind == TierPriceKind.FIXED and row.fixed_price is not None:
        return row.fixed_price
    percent = row.percent_off if row is not None and row.percent_off is not None else discount
    return max(_half_up(base * (100 - percent) / 100), FEN)


@given(base=prices, floor_share=st.one_of(st.none(), shares), discount=percents, row=tier_rows,
       member_rate=st.decimals(min_value=Decimal("0.5"), max_value=Decimal(1), places=3),
       is_reseller=st.booleans(), channel=st.sampled_from(["storefront", "openapi", "api", "subsite:3"]),
       quantity=st.integers(min_value=1, max_value=1000))
def test_tier_price_properties(  # noqa: PLR0917 - Hypothesis passes them
        base: Decimal, floor_share: Decimal | None, discount: Decimal, row: TierRow | None, member_rate: Decimal,
        is_reseller: bool, channel: str, quantity: int) -> None:
    floor = None if floor_share is None else max(FEN, (base * floor_share).quantize(FEN))
    tables = TierTables(token="t", tiers={1: TierInfo(tier_id=1, name="高级代理", discount_percent=discount)},
                        rows={(1, 7): row} if row is not None else {}, has_active_resellers=True)
    levels = (LevelInfo(rank=0, name="VIP0", threshold=Decimal(0), discount_rate=member_rate, benefits=""),)
    member_tables = PriceTables(token="m", levels=levels, has_discounts=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pricing, "tier_tables", lambda: tables)
        patch.setattr(pricing, "buyer_tier_id", lambda buyer_id: 1 if is_reseller else None)
        patch.setattr(member_pricing, "price_tables", lambda: member_tables)
        patch.setattr(member_pricing, "buyer_level_rank", lambda buyer_id: 0)
        quote = sku_price(sku=_sku(base, floor), buyer_id=1, quantity=quantity, sales_channel=channel)
    # No member price on a sub-site either: the sub-site's price is its reseller's (kameng.membership.pricing).
    member = base if channel.startswith("subsite:") else min(max(_half_up(base * member_rate), FEN), base)
    best = member
    if is_reseller and not channel.startswith("subsite:"):
        best = min(member, _expected_tier_price(base, discount, row))
    expected = max(best, floor) if floor is not None else best
    assert quote.unit_price == expected  # the better of member and tier price, then the floor clamp
    if floor is not None:
        assert quote.unit_price >= floor  # never below the SKU's floor
    assert quote.unit_price > 0
    assert base + sum((line.amount for line in quote.lines), Decimal(0)) == quote.unit_price  # lines add up
    assert quote.total == quote.unit_price * quantity
    assert all(line.amount == line.amount.quantize(FEN) for line in quote.lines)
    codes = [line.code for line in quote.lines]
    assert codes in ([], [MEMBER_LINE_CODE], [RESELLER_LINE_CODE], [MEMBER_LINE_CODE, RESELLER_LINE_CODE],
                     [MEMBER_LINE_CODE, FLOOR_LINE_CODE], [RESELLER_LINE_CODE, FLOOR_LINE_CODE],
                     [MEMBER_LINE_CODE, RESELLER_LINE_CODE, FLOOR_LINE_CODE], [FLOOR_LINE_CODE])
    assert all(line.amount < 0 for line in quote.lines if line.code != FLOOR_LINE_CODE)
