"""Card-key bidding (竞价) between suppliers stocking the same SKU: which suppliers' keys may be sold, best first.

The claim itself (kameng/inventory/services.py) takes keys source by source; it asks this module, through
`settings.KAMENG_CARD_KEY_SOURCES`, for the SKU's eligible suppliers in order, and caches the answer for a few
seconds. A supplier is eligible when it is approved, its offer for the SKU is active and staff did not exclude it for
the SKU. Order: staff pins first, then offer price ascending (every available key of a supplier's offer costs its
offer price: `offer_price_change` keeps them equal), then star rating descending, then the older supplier.

Whether a source may serve one order depends on what that order pays per unit (a VIP's member price is below the
retail price): each answer carries its offer's cost, and the claim asks `CardKeySource.is_sellable_at(unit_price)`,
which is the one loss guard (`kameng.suppliers.selectors.price_sells_at_loss`) — a supplier whose cost is above
what this buyer pays is skipped for this order unless staff allowed the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from kameng.suppliers.models import RoutingRuleKind, SkuRoutingRule, SupplierOffer, SupplierStatus
from kameng.suppliers.selectors import price_sells_at_loss


@dataclass(frozen=True)
class CardKeySource:
    """One eligible supplier of a SKU's keys (kameng.inventory.services.SupplierSource)."""

    supplier_id: int
    cost: Decimal
    retail_price: Decimal
    is_loss_allowed: bool

    def is_sellable_at(self, unit_price: Decimal | None) -> bool:
        """Whether an order paying `unit_price` per unit may take these keys (None: the SKU's retail price)."""
        return not price_sells_at_loss(cost=self.cost,
                                       unit_price=self.retail_price if unit_price is None else unit_price,
                                       is_loss_allowed=self.is_loss_allowed)


def card_key_sources(sku_id: int) -> list[CardKeySource] | None:
    """The SKU's eligible suppliers, best first; None when no supplier offers the SKU at all."""
    offers = list(SupplierOffer.objects.filter(sku_id=sku_id).values_list(
        "supplier_id", "price", "is_active", "is_loss_allowed", "supplier__status", "supplier__rating",
        "sku__price"))
    if not offers:
        return None
    rules = dict(SkuRoutingRule.objects.filter(sku_id=sku_id).values_list("supplier_id", "kind"))
    ranked: list[tuple[bool, Decimal, Decimal, int, CardKeySource]] = []
    for supplier_id, price, is_active, is_loss_allowed, status, rating, retail_price in offers:
        if not is_active or status != SupplierStatus.APPROVED or rules.get(supplier_id) == RoutingRuleKind.EXCLUDE:
            continue
        source = CardKeySource(supplier_id=supplier_id, cost=price, retail_price=retail_price,
                               is_loss_allowed=is_loss_allowed)
        ranked.append((rules.get(supplier_id) != RoutingRuleKind.PIN, price, -rating, supplier_id, source))
    return [entry[-1] for entry in sorted(ranked, key=lambda entry: entry[:4])]
