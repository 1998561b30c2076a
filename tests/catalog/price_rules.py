"""Price rules the pricing tests list in KAMENG_PRICE_RULES, as an app would add its own."""

from __future__ import annotations

from decimal import Decimal

from kameng.catalog.pricing import SALES_CHANNEL_API, PriceLine
from kameng.catalog.selectors import SkuForSale


def ten_percent_off(*, sku: SkuForSale, buyer_id: int, quantity: int, sales_channel: str,
                    unit_price: Decimal) -> PriceLine:
    return PriceLine(code="member", label="会员九折", amount=-(unit_price / 10))


def api_surcharge(*, sku: SkuForSale, buyer_id: int, quantity: int, sales_channel: str,
                  unit_price: Decimal) -> PriceLine | None:
    if sales_channel != SALES_CHANNEL_API:
        return None
    return PriceLine(code="api", label="接口手续费", amount=Decimal("0.50"))
