"""Properties of the one price function with the membership rule: never below the floor or 0, never above retail,
whole fen, and composed in the documented order (member line, then the floor clamp; total = unit × quantity)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from kameng.catalog.pricing import FLOOR_LINE_CODE, SALES_CHANNEL_STOREFRONT, sku_price
from kameng.catalog.selectors import SkuForSale
from kameng.membership import pricing
from kameng.membership.pricing import MEMBER_LINE_CODE, LevelInfo, MemberRate, PriceTables

FEN = Decimal("0.01")
prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)
rates = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1.000"), places=3)


def _sku(price: Decimal, floor: Decimal | None) -> SkuForSale:
    return SkuForSale(sku_id=7, sku_name="10 元", price=price, product_id=3, product_name="点卡",
                      delivery_kind="card_key", min_quantity=1, max_quantity=100, category_id=5, floor_price=floor)


def _tables(level_rate: Decimal, sku_row: MemberRate | None, category_row: MemberRate | None) -> PriceTables:
    levels = (LevelInfo(rank=0, name="VIP0", threshold=Decimal(0), discount_rate=Decimal(1), benefits=""),
              LevelInfo(rank=4, name="VIP4", threshold=Decimal(5000), discount_rate=level_rate, benefits=""))
    return PriceTables(token="t", levels=levels,
                       by_sku={rank: ({7: sku_row} if sku_row and rank >= 4 else {}) for rank in range(6)},
                       by_category={rank: ({5: category_row} if category_row and rank >= 4 else {})
                                    for rank in range(6)},
                       has_discounts=True)


def _expected_member_price(base: Decimal, level_rate: Decimal, sku_row: MemberRate | None,
                           category_row: MemberRate | None) -> Decimal:
    """The documented precedence, written out again: SKU row, else category row, else the level's rate."""
    row = sku_row or category_row
    if row is not None and row.price is not None:
        return min(row.price, base)
    rate = row.rate if row is not None and row.rate is not None else level_rate
    return min(max((base * rate).quantize(FEN, rounding=ROUND_HALF_UP), FEN), base)


member_rows = st.one_of(st.none(), prices.map(lambda price: MemberRate(price=price)),
                        rates.map(lambda rate: MemberRate(rate=rate)))


shares = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(1), places=4)


@override_settings(KAMENG_PRICE_RULES=["kameng.membership.pricing.member_price_rule"])  # the member rule alone
@given(base=prices, floor_share=st.one_of(st.none(), shares), level_rate=rates, sku_row=member_rows,
       category_rate=st.one_of(st.none(), rates), rank=st.sampled_from([0, 4, 5]),
       quantity=st.integers(min_value=1, max_value=500))
def test_member_prices_stay_between_floor_and_retail_in_whole_fen(  # noqa: PLR0917 - Hypothesis passes them
        base: Decimal, floor_share: Decimal | None, level_rate: Decimal, sku_row: MemberRate | None,
        category_rate: Decimal | None, rank: int, quantity: int) -> None:
    floor = None if floor_share is None else max(FEN, (base * floor_share).quantize(FEN))
    category_row = None if category_rate is None else MemberRate(rate=category_rate)
    tables = _tables(level_rate, sku_row, category_row)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pricing, "price_tables", lambda: tables)
        patch.setattr(pricing, "buyer_level_rank", lambda buyer_id: rank)
        quote = sku_price(sku=_sku(base, floor), buyer_id=1, quantity=quantity, sales_channel=SALES_CHANNEL_STOREFRONT)

    member = _expected_member_price(base, level_rate, sku_row, category_row) if rank >= 4 else base
    expected = max(member, floor) if floor is not None else member
    assert quote.unit_price == expected
    assert Decimal(0) < quote.unit_price <= base
    if floor is not None:
        assert quote.unit_price >= floor
    assert quote.unit_price == quote.unit_price.quantize(FEN)
    assert quote.total == quote.unit_price * quantity  # exact: no rounding of the product
    assert base + sum((line.amount for line in quote.lines), Decimal(0)) == quote.unit_price
    assert all(line.amount == line.amount.quantize(FEN) for line in quote.lines)
    codes = [line.code for line in quote.lines]
    # The documented order: the member line first, the floor clamp last, each at most once.
    assert codes in ([], [MEMBER_LINE_CODE], [MEMBER_LINE_CODE, FLOOR_LINE_CODE])
    assert (MEMBER_LINE_CODE in codes) == (member < base)
    assert (FLOOR_LINE_CODE in codes) == (floor is not None and member < floor)
