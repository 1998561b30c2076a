"""Card-key bidding (竞价) between suppliers stocking the same SKU: which suppliers' keys may be sold, best first.

The claim itself (kameng/inventory/services.py) takes keys source by source; it asks this module, through
`settings.KAMENG_CARD_KEY_SOURCES`, for the SKU's eligible suppliers in order, and caches the answer for a few
seconds. A supplier is eligible when it is approved, its offer for the SKU is active, staff did not exclude it for
the SKU, and its offer price is not above the SKU's selling price (unless staff allowed the loss). Order: staff pins
first, then offer price ascending (every available key of a supplier's offer costs its offer price:
`offer_price_change` keeps them equal), then star rating descending, then the older supplier.
"""

from __future__ import annotations

from decimal import Decimal

from kameng.suppliers.models import RoutingRuleKind, SkuRoutingRule, SupplierOffer, SupplierStatus


def card_key_sources(sku_id: int) -> list[int] | None:
    """The SKU's eligible suppliers' ids, best first; None when no supplier offers the SKU at all."""
    offers = list(SupplierOffer.objects.filter(sku_id=sku_id).values_list(
        "supplier_id", "price", "is_active", "is_loss_allowed", "supplier__status", "supplier__rating",
        "sku__price"))
    if not offers:
        return None
    rules = dict(SkuRoutingRule.objects.filter(sku_id=sku_id).values_list("supplier_id", "kind"))
    ranked: list[tuple[bool, Decimal, Decimal, int]] = []
    for supplier_id, price, is_active, is_loss_allowed, status, rating, selling_price in offers:
        if (not is_active or status != SupplierStatus.APPROVED or rules.get(supplier_id) == RoutingRuleKind.EXCLUDE
                or (price > selling_price and not is_loss_allowed)):
            continue
        ranked.append((rules.get(supplier_id) != RoutingRuleKind.PIN, price, -rating, supplier_id))
    return [supplier_id for *_, supplier_id in sorted(ranked)]
