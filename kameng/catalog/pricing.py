"""The one price function: what a SKU costs this buyer, in this quantity, on this sales channel.

`sku_price` starts from the SKU's retail price and applies the price rules listed in `KAMENG_PRICE_RULES` (dotted
paths of plain callables, empty by default), in order. A rule answers one adjustment line per unit (a membership
discount, a reseller tier) or None when it does not apply; each rule sees the unit price the rules before it left.
Every checkout path (the single path, an unpaid order, the group-commit batch) prices through here, and the order
stores the lines it was priced with, so a rule added later never touches the checkout writes. The product page and
the JSON API show prices from here too, never a price worked out again beside it.

The order of composition, per unit:
1. the SKU's retail price (零售价);
2. the rules, in setting order: the membership rule (`kameng.membership.pricing.member_price_rule`: a per-SKU or
   per-category member price, else the level's discount rate), then whatever follows it (a reseller tier);
3. the floor clamp: a unit price below the SKU's 最低售价 (`Sku.floor_price`) is raised to it, shown as its own
   line (`floor`), so the lines always add up to the unit price; a unit price of 0 or less is refused.
Then the total is unit price × quantity. Order-level adjustments (a points offset) come after the total and never
change the unit lines or the floor clamp.

Rounding: every line is rounded to the fen (分, ROUND_HALF_UP) as it is made, so each rule sees, and the order
stores, a unit price in whole fen and the total is exact (no rounding of the product).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from kameng.catalog.selectors import SkuForSale
from kameng.core.errors import ApplicationError
from kameng.core.money import ZERO, money

# Where a purchase comes from: rules may price them differently (a reseller's Open API, a sub-site later).
SALES_CHANNEL_STOREFRONT = "storefront"
SALES_CHANNEL_API = "api"
# The line that raises a unit price the rules took below the SKU's floor price back up to it.
FLOOR_LINE_CODE = "floor"
FLOOR_LINE_LABEL = "最低售价保护"


@dataclass(frozen=True)
class PriceLine:
    """One adjustment of the unit price: negative for a discount, positive for a surcharge."""

    code: str
    label: str
    amount: Decimal

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "label": self.label, "amount": str(self.amount)}


@dataclass(frozen=True)
class PriceQuote:
    base_unit_price: Decimal
    lines: tuple[PriceLine, ...]
    unit_price: Decimal
    quantity: int
    total: Decimal

    def lines_json(self) -> list[dict[str, str]]:
        """The adjustment lines as the order stores them (`Order.price_lines`)."""
        return [line.as_json() for line in self.lines]


class PriceRule(Protocol):
    def __call__(self, *, sku: SkuForSale, buyer_id: int, quantity: int, sales_channel: str,
                 unit_price: Decimal) -> PriceLine | None: ...


_loaded: dict[tuple[str, ...], tuple[PriceRule, ...]] = {}


def price_rules() -> tuple[PriceRule, ...]:
    """The configured rules, imported once per distinct setting (tests change it)."""
    paths = tuple(settings.KAMENG_PRICE_RULES)
    rules = _loaded.get(paths)
    if rules is None:
        rules = tuple(import_string(path) for path in paths)
        _loaded[paths] = rules
    return rules


def sku_price(*, sku: SkuForSale, buyer_id: int, quantity: int, sales_channel: str) -> PriceQuote:
    """Price `quantity` of the SKU for the buyer. Raises `ApplicationError` if the rules leave nothing to pay."""
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise ApplicationError("购买数量必须是整数", code="invalid_quantity")
    rules = price_rules()
    unit_price = money(sku.price)
    if not rules:  # the common case, kept free of any work
        return PriceQuote(base_unit_price=unit_price, lines=(), unit_price=unit_price, quantity=quantity,
                          total=money(unit_price * quantity))
    lines = _apply(rules, sku=sku, buyer_id=buyer_id, quantity=quantity, sales_channel=sales_channel)
    final = money(unit_price + sum((line.amount for line in lines), ZERO))
    floor = sku.floor_price
    if floor is not None and final < floor:
        lines.append(PriceLine(code=FLOOR_LINE_CODE, label=FLOOR_LINE_LABEL, amount=money(floor - final)))
        final = money(floor)
    if final <= ZERO:
        raise ApplicationError("价格规则使该规格的单价不大于 0，暂时无法购买，请联系客服", code="price_not_positive",
                               extra={"lines": [line.as_json() for line in lines]})
    return PriceQuote(base_unit_price=unit_price, lines=tuple(lines), unit_price=final, quantity=quantity,
                      total=money(final * quantity))


def _apply(rules: Sequence[PriceRule], **context: Any) -> list[PriceLine]:
    unit_price = money(context["sku"].price)
    lines: list[PriceLine] = []
    for rule in rules:
        line = rule(unit_price=unit_price, **context)
        if line is None or line.amount == ZERO:
            continue
        line = PriceLine(code=line.code, label=line.label, amount=money(line.amount))
        lines.append(line)
        unit_price = money(unit_price + line.amount)
    return lines
