"""The storefront's list of the suppliers offering a product (商品页「供货商」): eligible offers of the product's SKUs,
five-star suppliers first, then by offer price, then by rating.

"Five-star" is what the page shows: a rating that rounds to 5 stars (≥ 4.50). Eligible as for card-key bidding
(kameng/suppliers/card_key_bidding.py): the supplier approved, the offer active, not excluded for the SKU by staff.
The offer price is our cost and is never shown: the list says who supplies, their stars and whether they have
stock. Cached for `LISTING_CACHE_SECONDS` per product: storefront display only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.core.cache import cache
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.suppliers.models import OfferStockSource, RoutingRuleKind, SkuRoutingRule, SupplierOffer, SupplierStatus

LISTING_CACHE_SECONDS = 30
FIVE_STARS = Decimal("4.50")


@dataclass(frozen=True)
class ListedOffer:
    supplier_name: str
    sku_name: str
    rating: Decimal
    in_stock: bool

    @property
    def stars_text(self) -> str:
        """The rating in whole stars, as shown: ★★★★☆."""
        whole = int(self.rating.quantize(Decimal("1"), rounding=ROUND_HALF_UP))
        return "★" * whole + "☆" * (5 - whole)


def product_supplier_offers(*, product_id: int, sku_ids: Sequence[int]) -> list[ListedOffer]:
    """The product's eligible offers, ranked for display (five-star first, then price, then rating)."""
    cache_key = f"supplier-offers:{product_id}"
    cached = cache.get(cache_key)
    if cached is not None:
        return list(cached)
    excluded = SkuRoutingRule.objects.filter(sku_id=OuterRef("sku_id"), supplier_id=OuterRef("supplier_id"),
                                             kind=RoutingRuleKind.EXCLUDE)
    offers = list(SupplierOffer.objects.filter(
        sku_id__in=list(sku_ids), is_active=True, supplier__status=SupplierStatus.APPROVED,
    ).exclude(Exists(excluded)).values_list(
        "supplier_id", "sku_id", "supplier__name", "sku__name", "supplier__rating", "price", "stock_source",
        "upstream_stock"))
    now = timezone.now()
    keys = {(supplier_id, sku_id): count for supplier_id, sku_id, count in CardKey.objects.filter(
        sku_id__in=list(sku_ids), supplier__isnull=False, status=CardKeyStatus.AVAILABLE).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)).values("supplier_id", "sku_id").annotate(
        n=Count("id")).values_list("supplier_id", "sku_id", "n")} if offers else {}
    ranked = sorted(offers, key=lambda row: (row[4] < FIVE_STARS, row[5], -row[4], row[0], row[1]))
    listed = [ListedOffer(
        supplier_name=name, sku_name=sku_name, rating=rating,
        in_stock=(keys.get((supplier_id, sku_id), 0) > 0 if source == OfferStockSource.CARD_KEYS
                  else upstream is None or upstream > 0))
        for supplier_id, sku_id, name, sku_name, rating, _price, source, upstream in ranked]
    cache.set(cache_key, listed, LISTING_CACHE_SECONDS)
    return listed
