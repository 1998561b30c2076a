"""The product cards of the storefront's lists (home page, search results) as plain data, ready to cache."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kameng.catalog.models import DeliveryKind, Product
from kameng.inventory.selectors import stock_by_sku


def product_cards(products: Iterable[Product]) -> list[dict[str, Any]]:
    """One card per product (with its SKUs prefetched): name, category, thumbnail URL ("" for the placeholder),
    each SKU's price and stock, and whether any can be bought."""
    products = list(products)
    stock = stock_by_sku(sku.pk for product in products for sku in product.skus.all())
    return [
        {"pk": product.pk, "name": product.name, "category": product.category.name,
         "thumbnail": product.thumbnail.url if product.thumbnail else "",
         "skus": [{"name": sku.name, "price": sku.price, "stock": stock.get(sku.pk, 0),
                   "on_demand": is_on_demand(product), "is_direct_topup": is_direct_topup(product)}
                  for sku in product.skus.all()],
         "in_stock": is_on_demand(product) or any(stock.get(sku.pk, 0) > 0 for sku in product.skus.all())}
        for product in products
    ]


def is_on_demand(product: Product) -> bool:
    """Made to order: no card-key stock to run out of. 人工发货 (staff deliver each order) and 直充 (a supplier tops
    up the buyer's account; whether one can is the routing's answer when the order is paid)."""
    return product.delivery_kind in (DeliveryKind.MANUAL, DeliveryKind.DIRECT_TOPUP)


def is_direct_topup(product: Product) -> bool:
    return product.delivery_kind == DeliveryKind.DIRECT_TOPUP
