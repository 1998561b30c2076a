"""Row locks of the catalogue, taken here only."""

from __future__ import annotations

from kameng.catalog.models import Product


def product_lock(*, product_id: int) -> Product | None:
    """The product row, locked until the caller's transaction ends (None if there is no such product)."""
    return Product.objects.select_for_update().filter(pk=product_id).first()
