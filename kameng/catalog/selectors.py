"""Reads of the catalogue: what the storefront lists, and what keeps a category or product from being deleted."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, Exists, OuterRef, Prefetch, QuerySet

from kameng.catalog.models import Category, Product, ProductStatus, Sku


def categories_visible() -> QuerySet[Category]:
    return Category.objects.filter(is_active=True)


def products_on_sale(*, category: Category | None = None) -> QuerySet[Product]:
    """On-sale products of visible categories that have at least one enabled SKU (without one there is nothing to
    buy), with their enabled SKUs prefetched."""
    enabled_skus = Sku.objects.filter(is_active=True)
    products = (
        Product.objects.filter(status=ProductStatus.ON_SALE, category__is_active=True)
        .filter(Exists(enabled_skus.filter(product=OuterRef("pk"))))
        .select_related("category").prefetch_related(Prefetch("skus", queryset=enabled_skus))
    )
    if category is not None:
        products = products.filter(category=category)
    return products


def product_has_enabled_sku(*, product_id: int) -> bool:
    return Sku.objects.filter(product_id=product_id, is_active=True).exists()


def sku_for_sale(*, sku_id: int) -> Sku | None:
    return (
        Sku.objects.select_related("product")
        .filter(pk=sku_id, is_active=True, product__status=ProductStatus.ON_SALE)
        .first()
    )


def sku_count_by_product(product_ids: Iterable[int]) -> dict[int, int]:
    """SKUs per product (products without any are left out), in one grouped query."""
    return dict(Sku.objects.filter(product_id__in=list(product_ids)).order_by().values("product_id")
                .annotate(total=Count("pk")).values_list("product_id", "total"))


def category_contents(category_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """(products, child categories) per category, for the categories that have either; two grouped queries."""
    ids = list(category_ids)
    products = dict(Product.objects.filter(category_id__in=ids).order_by().values("category_id")
                    .annotate(total=Count("pk")).values_list("category_id", "total"))
    children = dict(Category.objects.filter(parent_id__in=ids).order_by().values("parent_id")
                    .annotate(total=Count("pk")).values_list("parent_id", "total"))
    return {pk: (products.get(pk, 0), children.get(pk, 0)) for pk in ids if pk in products or pk in children}
