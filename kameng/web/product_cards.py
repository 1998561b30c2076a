"""The product cards of the storefront's lists (home page, search results) as plain data, ready to cache.

On the main site a card shows the retail price; on a sub-site (分站) the sub-site's price from the price function,
which is the same for every visitor there (kameng.resellers.pricing_subsite)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kameng.catalog.models import DeliveryKind, Product
from kameng.catalog.pricing import SALES_CHANNEL_STOREFRONT, sku_price, subsite_id_of_channel
from kameng.catalog.selectors import skus_for_sale
from kameng.core.errors import ApplicationError
from kameng.inventory.selectors import stock_by_sku
from kameng.suppliers.upstream_cards import skus_sold_upstream

# Whom a sub-site's card prices are worked out for: no buyer in particular (they are the same for all).
ANY_VISITOR_ID = 0


def channel_prices(sku_ids: list[int], sales_channel: str) -> dict[int, Any]:
    """One unit of each SKU on a sub-site's channel (a SKU the price function refuses is left out)."""
    prices: dict[int, Any] = {}
    for sku_id, sku in skus_for_sale(sku_ids=sku_ids).items():
        try:
            prices[sku_id] = sku_price(sku=sku, buyer_id=ANY_VISITOR_ID, quantity=1,
                                       sales_channel=sales_channel).unit_price
        except ApplicationError:
            continue
    return prices


def product_cards(products: Iterable[Product], *,
                  sales_channel: str = SALES_CHANNEL_STOREFRONT) -> list[dict[str, Any]]:
    """One card per product (with its SKUs prefetched): name, category, thumbnail URL ("" for the placeholder),
    each SKU's price (the sub-site's on a sub-site channel) and stock, and whether any can be bought."""
    products = list(products)
    stock = stock_by_sku(sku.pk for product in products for sku in product.skus.all())
    upstream = sold_upstream([sku for product in products for sku in product.skus.all()
                              if product.delivery_kind == DeliveryKind.CARD_KEY], stock)
    prices = (channel_prices([sku.pk for product in products for sku in product.skus.all()], sales_channel)
              if subsite_id_of_channel(sales_channel) is not None else {})
    return [
        {"pk": product.pk, "name": product.name, "category": product.category.name,
         "thumbnail": product.thumbnail.url if product.thumbnail else "",
         "skus": [{"name": sku.name, "price": prices.get(sku.pk, sku.price), "stock": stock.get(sku.pk, 0),
                   "on_demand": is_on_demand(product), "is_direct_topup": is_direct_topup(product),
                   "from_upstream": sku.pk in upstream}
                  for sku in product.skus.all()],
         "in_stock": is_on_demand(product) or any(stock.get(sku.pk, 0) > 0 or sku.pk in upstream
                                                  for sku in product.skus.all())}
        for product in products
    ]


def sold_upstream(card_skus: Iterable[Any], stock: dict[int, int]) -> set[int]:
    """The card-key SKUs (of these) without stock that an upstream supplier sells: buyable, "上游供货"
    (kameng.suppliers.upstream_cards); asked only when some card-key SKU has no stock."""
    empty = [sku.pk for sku in card_skus if stock.get(sku.pk, 0) <= 0]
    return skus_sold_upstream(empty) if empty else set()


def is_on_demand(product: Product) -> bool:
    """Made to order: no card-key stock to run out of. 人工发货 (staff deliver each order) and 直充 (a supplier tops
    up the buyer's account; whether one can is the routing's answer when the order is paid)."""
    return product.delivery_kind in (DeliveryKind.MANUAL, DeliveryKind.DIRECT_TOPUP)


def is_direct_topup(product: Product) -> bool:
    return product.delivery_kind == DeliveryKind.DIRECT_TOPUP
