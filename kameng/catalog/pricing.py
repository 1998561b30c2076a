"""The one price function: what a SKU costs this buyer, in this quantity, on this sales channel.

`sku_price` starts from the SKU's retail price and applies the price rules listed in `KAMENG_PRICE_RULES` (dotted
paths of plain callables, empty by default), in order. A rule answers one adjustment line per unit (a membership
discount, a reseller tier) or None when it does not apply; each rule sees the unit price the rules before it left.
Every checkout path (the single path, an unpaid order, the group-commit batch) prices through here, and the order
stores the lines it was priced with, so a rule added later never touches the checkout writes. The product page and
the JSON API show prices from here too, never a price worked out again beside it.

The order of composition:
1. base: the SKU's retail price (零售价) per unit;
2. per-unit rules, in setting order: the membership rule (`kameng.membership.pricing.member_price_rule`: a per-SKU
   or per-category member price, else the level's discount rate), then whatever follows it (a reseller tier);
   each sees the unit price the one before left;
3. the floor clamp: a unit price below the SKU's 最低售价 (`Sku.floor_price`) is raised to it, shown as its own
   line (`floor`), so the lines always add up to the unit price; a unit price of 0 or less is refused. The unit
   price × quantity is the lines total;
4. points offset (积分, kameng.points), at the order level: `points` asked for buy
   `points / KAMENG_POINTS_PER_YUAN_REDEEMED` yuan, rounded DOWN to the fen, capped at
   KAMENG_POINTS_REDEEM_MAX_SHARE of the lines total (rounded down to the fen) and so that the total stays at least
   max(¥0.01, floor × quantity); the points used are the fewest that buy that offset (ceil(offset × rate), never
   more than asked). The total the buyer pays is lines total − offset; the offset never changes the unit lines.

Rounding: every per-unit line is rounded to the fen (分, ROUND_HALF_UP) as it is made, so each rule sees, and the
order stores, a unit price in whole fen and the lines total is exact; the points offset is rounded down, so the
buyer never pays a fraction of a fen for points they did not get and the total is a whole number of fen above 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from kameng.catalog.selectors import SkuForSale
from kameng.core.errors import ApplicationError
from kameng.core.money import FEN, ZERO, money

# Where a purchase comes from: rules may price them differently (a reseller's Open API, a sub-site later).
SALES_CHANNEL_STOREFRONT = "storefront"
SALES_CHANNEL_API = "api"
SALES_CHANNEL_OPENAPI = "openapi"  # a reseller's signed Open API v1 (kameng.openapi)
SALES_CHANNEL_BATCH = "batch"  # a reseller's batch purchase page (批量采购, kameng.web.views.reseller_batch)
# Resellers buying in bulk: one order may take up to KAMENG_BATCH_PURCHASE_MAX units (kameng.orders.checkout).
BULK_SALES_CHANNELS = frozenset({SALES_CHANNEL_OPENAPI, SALES_CHANNEL_BATCH})
SUBSITE_CHANNEL_PREFIX = "subsite:"  # + the sub-site's id: a buyer on a reseller's sub-site (分站)


def subsite_channel(subsite_id: int) -> str:
    return f"{SUBSITE_CHANNEL_PREFIX}{subsite_id}"


def subsite_id_of_channel(sales_channel: str) -> int | None:
    """The sub-site id a sales channel names, or None for any other channel."""
    if not sales_channel.startswith(SUBSITE_CHANNEL_PREFIX):
        return None
    tail = sales_channel[len(SUBSITE_CHANNEL_PREFIX):]
    return int(tail) if tail.isdigit() else None
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
    total: Decimal  # what the buyer pays in cash: the lines total less the points offset
    points_redeemed: int = 0  # points used to offset cash (whole points)
    points_offset: Decimal = ZERO  # the cash they offset

    @property
    def lines_total(self) -> Decimal:
        """The total before points: unit price × quantity."""
        return money(self.unit_price * self.quantity)

    def lines_json(self) -> list[dict[str, str]]:
        """The adjustment lines as the order stores them (`Order.price_lines`)."""
        return [line.as_json() for line in self.lines]


class PriceRule(Protocol):
    # One line, or several applied in order (the sub-site rule: the reseller's cost, then its markup), or None.
    def __call__(self, *, sku: SkuForSale, buyer_id: int, quantity: int, sales_channel: str,
                 unit_price: Decimal) -> PriceLine | Sequence[PriceLine] | None: ...


_loaded: dict[tuple[str, ...], tuple[PriceRule, ...]] = {}


def price_rules() -> tuple[PriceRule, ...]:
    """The configured rules, imported once per distinct setting (tests change it)."""
    paths = tuple(settings.KAMENG_PRICE_RULES)
    rules = _loaded.get(paths)
    if rules is None:
        rules = tuple(import_string(path) for path in paths)
        _loaded[paths] = rules
    return rules


def price_rules_warm(*, buyer_id: int, sales_channel: str) -> None:
    """Load what the rules keep per buyer (a member level, a reseller tier) into this process's caches, so that
    pricing the buyer's checkout a moment later in the group-commit writer does no I/O of its own: every round trip
    there holds up the whole batch. A rule takes part with a `warm(*, buyer_id, sales_channel)` attribute."""
    for rule in price_rules():
        warm = getattr(rule, "warm", None)
        if warm is not None:
            warm(buyer_id=buyer_id, sales_channel=sales_channel)


def sku_price(*, sku: SkuForSale, buyer_id: int, quantity: int, sales_channel: str, points: int = 0) -> PriceQuote:
    """Price `quantity` of the SKU for the buyer, offsetting up to `points` points (see the module docstring for
    the order of the steps). Raises `ApplicationError` if the rules leave nothing to pay."""
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise ApplicationError("购买数量必须是整数", code="invalid_quantity")
    if points:
        return _with_points(_lines_price(sku=sku, buyer_id=buyer_id, quantity=quantity, sales_channel=sales_channel),
                            points=points, floor_unit_price=sku.floor_price)
    return _lines_price(sku=sku, buyer_id=buyer_id, quantity=quantity, sales_channel=sales_channel)


def _lines_price(*, sku: SkuForSale, buyer_id: int, quantity: int, sales_channel: str) -> PriceQuote:
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
        answer = rule(unit_price=unit_price, **context)
        if answer is None:
            continue
        for given in (answer,) if isinstance(answer, PriceLine) else answer:
            if given.amount == ZERO:
                continue
            line = PriceLine(code=given.code, label=given.label, amount=money(given.amount))
            lines.append(line)
            unit_price = money(unit_price + line.amount)
    return lines


# --- points offset (order level, after the per-unit lines) --------------------------------------------------------

POINTS_INPUT_MAX = 1_000_000_000  # the shape bound of a points input: far above any balance


def fen_floor(amount: Decimal) -> Decimal:
    return amount.quantize(FEN, rounding=ROUND_DOWN)


def points_offset(*, lines_total: Decimal, quantity: int, floor_unit_price: Decimal | None, points: int,
                  points_per_yuan: int, max_share: Decimal) -> tuple[int, Decimal]:
    """(points used, cash offset) for `points` asked against an order of `lines_total` (module docstring, step 4)."""
    if points <= 0 or points_per_yuan <= 0:
        return 0, ZERO
    minimum = max(FEN, money(floor_unit_price * quantity)) if floor_unit_price else FEN
    cap = min(fen_floor(lines_total * max_share), money(lines_total - minimum))
    offset = min(fen_floor(Decimal(points) / points_per_yuan), cap)
    if offset <= ZERO:
        return 0, ZERO
    return math.ceil(offset * points_per_yuan), offset


def _with_points(quote: PriceQuote, *, points: int, floor_unit_price: Decimal | None) -> PriceQuote:
    if not isinstance(points, int) or isinstance(points, bool) or not 0 <= points <= POINTS_INPUT_MAX:
        raise ApplicationError("使用的积分必须是 0–%(max)s 之间的整数", code="invalid_points",
                               params={"max": POINTS_INPUT_MAX})
    used, offset = points_offset(
        lines_total=quote.lines_total, quantity=quote.quantity, floor_unit_price=floor_unit_price, points=points,
        points_per_yuan=settings.KAMENG_POINTS_PER_YUAN_REDEEMED,
        max_share=Decimal(str(settings.KAMENG_POINTS_REDEEM_MAX_SHARE)))
    if not used:
        return quote
    return PriceQuote(base_unit_price=quote.base_unit_price, lines=quote.lines, unit_price=quote.unit_price,
                      quantity=quote.quantity, total=money(quote.lines_total - offset), points_redeemed=used,
                      points_offset=offset)


def sku_points_exchange_price(*, sku: SkuForSale, quantity: int, points_per_unit: int) -> PriceQuote:
    """An exchange in the points shop (积分商城): the goods paid wholly in points, `points_per_unit` each. The cash
    price is the retail price less one line taking all of it (so `price_lines` reads as for any order) and the
    cash total ¥0.00; the points are the quote's `points_redeemed`."""
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
        raise ApplicationError("购买数量必须是整数", code="invalid_quantity")
    base = money(sku.price)
    line = PriceLine(code="points_exchange", label="积分兑换", amount=-base)
    return PriceQuote(base_unit_price=base, lines=(line,), unit_price=ZERO, quantity=quantity, total=ZERO,
                      points_redeemed=points_per_unit * quantity, points_offset=ZERO)
