"""Reads of the catalogue for the storefront."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from kameng.catalog.models import Category, Product, ProductStatus, Sku


def categories_visible() -> QuerySet[Category]:
    return Category.objects.filter(is_active=True)


def products_on_sale(*, category: Category | None = None) -> QuerySet[Product]:
    products = Product.objects.filter(status=ProductStatus.ON_SALE, category__is_active=True).select_related(
        "category").prefetch_related(Prefetch("skus", queryset=Sku.objects.filter(is_active=True)))
    if category is not None:
        products = products.filter(category=category)
    return products


def sku_for_sale(*, sku_id: int) -> Sku | None:
    return (
        Sku.objects.select_related("product")
        .filter(pk=sku_id, is_active=True, product__status=ProductStatus.ON_SALE)
        .first()
    )
