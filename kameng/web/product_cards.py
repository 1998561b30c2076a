"""The product cards of the storefront's lists (home page, search results) as plain data, ready to cache."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kameng.catalog.models import Product
from kameng.inventory.selectors import stock_by_sku


def product_cards(products: Iterable[Product]) -> list[dict[str, Any]]:
    """One card per product (with its SKUs prefetched): name, category, thumbnail URL ("" for the placeholder),
    each SKU's price and stock, and whether any can be bought."""
    products = list(products)
    stock = stock_by_sku(sku.pk for product in products for sku in product.skus.all())
    return [
        {"pk": product.pk, "name": product.name, "category": product.category.name,
         "thumbnail": product.thumbnail.url if product.thumbnail else "",
         "skus": [{"name": sku.name, "price": sku.price, "stock": stock.get(sku.pk, 0)} for sku in product.skus.all()],
         "in_stock": any(stock.get(sku.pk, 0) > 0 for sku in product.skus.all())}
        for product in products
    ]
