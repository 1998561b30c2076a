"""A stand-in for the sub-site helper's price rule: on a sub-site channel, a markup line of ¥2.50 per unit."""

from __future__ import annotations

from decimal import Decimal

from kameng.catalog.pricing import PriceLine, subsite_id_of_channel
from kameng.catalog.selectors import SkuForSale

MARKUP = Decimal("2.50")


def subsite_markup(*, sku: SkuForSale, buyer_id: int, quantity: int, sales_channel: str,
                   unit_price: Decimal) -> PriceLine | None:
    if subsite_id_of_channel(sales_channel) is None:
        return None
    return PriceLine(code="subsite_markup", label="分站加价", amount=MARKUP)
