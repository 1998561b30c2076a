"""Properties of the one price function with points (Hypothesis): the documented composition order (base → per-unit
rules → floor → points offset), never below ¥0.01 or the SKU's floor, the offset within its share, amounts in whole
fen and points whole."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from kameng.catalog.pricing import (
    SALES_CHANNEL_STOREFRONT,
    PriceLine,
    fen_floor,
    points_offset,
    sku_price,
)
from kameng.catalog.selectors import SkuForSale
from kameng.core.errors import ApplicationError
from kameng.core.money import FEN

prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)
quantities = st.integers(min_value=1, max_value=500)
points_asked = st.integers(min_value=0, max_value=10_000_000)
rates = st.integers(min_value=1, max_value=1000)
shares = st.decimals(min_value=Decimal("0"), max_value=Decimal("1"), places=2)


def _sku(price: Decimal) -> SkuForSale:
    # No SKU floor (最低售价) here: the floor is tested on points_offset.
    return SkuForSale(sku_id=1, sku_name="10 元", price=price, product_id=1, product_name="点卡",
                      delivery_kind="card_key", min_quantity=1, max_quantity=500, category_id=1, floor_price=None)


def member_discount(*, sku: SkuForSale, buyer_id: int, quantity: int, sales_channel: str,
                    unit_price: Decimal) -> PriceLine:
    return PriceLine(code="member", label="会员价", amount=-(unit_price * Decimal("0.05")))


@given(price=prices, quantity=quantities, floor_share=st.one_of(st.none(), shares), points=points_asked,
       rate=rates, share=shares)
@settings(max_examples=400, deadline=None)
def test_the_offset_keeps_every_bound(price: Decimal, quantity: int, floor_share: Decimal | None, points: int,  # noqa: PLR0917 - Hypothesis passes them by name
                                      rate: int, share: Decimal) -> None:
    lines_total = price * quantity
    floor = max(FEN, fen_floor(price * floor_share)) if floor_share is not None else None

    used, offset = points_offset(lines_total=lines_total, quantity=quantity, floor_unit_price=floor, points=points,
                                 points_per_yuan=rate, max_share=share)

    total = lines_total - offset
    assert isinstance(used, int)
    assert 0 <= used <= points
    assert offset == offset.quantize(FEN)  # whole fen
    assert total == total.quantize(FEN)
    assert offset >= 0
    assert offset <= fen_floor(lines_total * share)  # within the share
    assert total >= FEN  # never free
    if floor is not None:
        assert total >= floor * quantity or offset == 0  # never below the floor (unless nothing is offset)
    if used:
        assert Decimal(used) / rate >= offset  # the points used buy the whole offset...
        assert Decimal(used - 1) / rate < offset  # ...and are the fewest that do
        assert used == math.ceil(offset * rate)
    else:
        assert offset == 0


@given(price=prices, quantity=quantities, points=points_asked)
@settings(max_examples=200, deadline=None)
@override_settings(KAMENG_PRICE_RULES=["tests.points.test_pricing_properties.member_discount"],
                   KAMENG_POINTS_PER_YUAN_REDEEMED=100, KAMENG_POINTS_REDEEM_MAX_SHARE="0.5")
def test_points_come_after_the_per_unit_rules(price: Decimal, quantity: int, points: int) -> None:
    sku = _sku(price)
    try:
        without = sku_price(sku=sku, buyer_id=1, quantity=quantity, sales_channel=SALES_CHANNEL_STOREFRONT)
    except ApplicationError:  # the rule left nothing to pay (a 0.01 price less 5 % rounds to 0.01 … or below)
        return
    quote = sku_price(sku=sku, buyer_id=1, quantity=quantity, sales_channel=SALES_CHANNEL_STOREFRONT, points=points)

    # The per-unit part is untouched by points: same lines, same unit price, the offset taken from its total.
    assert (quote.lines, quote.unit_price, quote.lines_total) == (without.lines, without.unit_price, without.total)
    assert quote.total == quote.lines_total - quote.points_offset
    assert quote.points_offset <= fen_floor(without.total / 2)
    assert quote.total >= FEN
    assert quote.points_redeemed == math.ceil(quote.points_offset * 100)
    assert quote.points_redeemed <= points


def test_the_documented_example() -> None:
    # ¥9.50 × 2 = ¥19.00; 500 points = ¥5.00 at 100 a yuan; the cap is half of ¥19.00 = ¥9.50.
    assert points_offset(lines_total=Decimal("19.00"), quantity=2, floor_unit_price=None, points=500,
                         points_per_yuan=100, max_share=Decimal("0.5")) == (500, Decimal("5.00"))
    assert points_offset(lines_total=Decimal("19.00"), quantity=2, floor_unit_price=None, points=5000,
                         points_per_yuan=100, max_share=Decimal("0.5")) == (950, Decimal("9.50"))
    # Points that buy less than a fen buy nothing and are not taken.
    assert points_offset(lines_total=Decimal("19.00"), quantity=2, floor_unit_price=None, points=99,
                         points_per_yuan=10_000, max_share=Decimal("0.5")) == (0, Decimal("0"))
    # 7 points at 3 a yuan: ¥2.33, paid with ceil(6.99) = 7 points.
    assert points_offset(lines_total=Decimal("100.00"), quantity=1, floor_unit_price=None, points=7,
                         points_per_yuan=3, max_share=Decimal("0.5")) == (7, Decimal("2.33"))
    # The floor: ¥10.00 with a ¥9.00 floor leaves at most ¥1.00 to offset, whatever the share.
    assert points_offset(lines_total=Decimal("10.00"), quantity=1, floor_unit_price=Decimal("9.00"), points=10_000,
                         points_per_yuan=100, max_share=Decimal("1")) == (100, Decimal("1.00"))
    # A share of 1 still leaves one fen to pay.
    assert points_offset(lines_total=Decimal("10.00"), quantity=1, floor_unit_price=None, points=10_000,
                         points_per_yuan=100, max_share=Decimal("1")) == (999, Decimal("9.99"))


@override_settings(KAMENG_PRICE_RULES=[])  # no member rule: it would read the buyer's level
@pytest.mark.parametrize("points", [-1, True, 1_000_000_001])
def test_points_out_of_shape_are_refused(points: int) -> None:
    with pytest.raises(ApplicationError) as error:
        sku_price(sku=_sku(Decimal("9.50")), buyer_id=1, quantity=1, sales_channel=SALES_CHANNEL_STOREFRONT,
                  points=points)

    assert error.value.code == "invalid_points"
