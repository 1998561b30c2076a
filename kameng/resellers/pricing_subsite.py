"""The sub-site price rule (分站价): what a buyer pays on a reseller's sub-site.

Listed LAST in `KAMENG_PRICE_RULES`. On any channel but a sub-site's (`subsite:<id>`) it answers None at once, with
no query and no cache read: the main site's path is untouched. On a sub-site the unit price is

    the owner's cost  +  the markup

where the owner's cost is what the reseller who owns the sub-site would pay for one unit through its Open API
(`sku_price(buyer_id=<owner>, quantity=1, sales_channel=SALES_CHANNEL_OPENAPI)`: the one price function, with the
reseller tier's rule in it), and the markup is the sub-site's markup for the SKU (its own `SubSitePrice`, else the
sub-site's default): a percent of the owner's cost or a fixed amount in yuan, rounded to the fen, never more than
the owner's tier cap (`ResellerTier.subsite_markup_cap_percent` of the owner's cost; the console refuses more when
it is saved, this clamp only guards against a cap lowered later).

The rule answers two lines (the contract the earnings part relies on; do not rename them):
- `reseller_cost`: the owner's cost minus the unit price the rules before this one left, so that the price is
  the owner's cost whatever they did (a buyer's member discount, a buyer's own reseller tier never apply on a
  sub-site: the sub-site's price is the reseller's; the membership rule also skips sub-site channels itself);
- `subsite_markup`: the markup per unit, ≥ 0. The reseller's margin on an order is this line's amount × quantity.
As every rule line, a line of ¥0.00 is left out (no markup: no `subsite_markup` line, a margin of 0).

A sub-site that does not exist or is not served (disabled, its reseller suspended) prices nothing: the purchase is
refused (404) rather than sold at another price.
"""

from __future__ import annotations

from decimal import Decimal

from kameng.catalog.pricing import SALES_CHANNEL_OPENAPI, PriceLine, sku_price, subsite_id_of_channel
from kameng.catalog.selectors import SkuForSale
from kameng.core.errors import NotFoundError
from kameng.core.money import ZERO, money
from kameng.resellers.models import MarkupKind
from kameng.resellers.subsite_cache import Markup, subsite_info

RESELLER_COST_LINE_CODE = "reseller_cost"
RESELLER_COST_LINE_LABEL = "分站成本价"
SUBSITE_MARKUP_LINE_CODE = "subsite_markup"
SUBSITE_MARKUP_LINE_LABEL = "分站加价"
HUNDRED = Decimal(100)


def markup_amount(*, markup: Markup, cost: Decimal, cap_percent: Decimal) -> Decimal:
    """The markup per unit on `cost`, rounded to the fen and clamped to [0, cap_percent % of cost]."""
    amount = money(cost * markup.value / HUNDRED) if markup.kind == MarkupKind.PERCENT else money(markup.value)
    cap = money(cost * cap_percent / HUNDRED)
    return max(min(amount, cap), ZERO)


def owner_cost(*, sku: SkuForSale, owner_user_id: int) -> Decimal:
    """What the sub-site's owner pays for one unit (its Open API price)."""
    return sku_price(sku=sku, buyer_id=owner_user_id, quantity=1, sales_channel=SALES_CHANNEL_OPENAPI).unit_price


def subsite_price_rule(*, sku: SkuForSale, buyer_id: int, quantity: int, sales_channel: str,
                       unit_price: Decimal) -> tuple[PriceLine, ...] | None:
    subsite_id = subsite_id_of_channel(sales_channel)
    if subsite_id is None:
        return None
    info = subsite_info(subsite_id)
    if info is None or not info.is_served:
        raise NotFoundError("该分站不存在或已关闭", code="subsite_not_found")
    cost = owner_cost(sku=sku, owner_user_id=info.owner_user_id)
    markup = markup_amount(markup=info.markup_of(sku.sku_id), cost=cost, cap_percent=info.markup_cap_percent)
    return (PriceLine(code=RESELLER_COST_LINE_CODE, label=RESELLER_COST_LINE_LABEL, amount=money(cost - unit_price)),
            PriceLine(code=SUBSITE_MARKUP_LINE_CODE, label=SUBSITE_MARKUP_LINE_LABEL, amount=markup))
