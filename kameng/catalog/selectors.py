"""Reads of the catalogue: what the storefront lists, and what keeps a category or product from being deleted."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Prefetch, QuerySet

from kameng.catalog.models import (
    Category,
    Product,
    ProductStatus,
    Sku,
    game_goods_cache_key,
    game_goods_held,
    skus_for_sale_held,
)
from kameng.catalog.topup_forms import topup_form_of
from kameng.core.ids import is_database_id


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


@dataclass(frozen=True)
class SkuForSale:
    """What a checkout reads of a SKU on sale and its product: every field it uses, and nothing that could silently
    read as a default (no model instance with fields left unloaded)."""

    sku_id: int
    sku_name: str
    price: Decimal
    product_id: int
    product_name: str
    delivery_kind: str
    min_quantity: int
    max_quantity: int
    category_id: int  # the product's: member prices may be set per category
    floor_price: Decimal | None = None  # 最低售价: no price rule goes below it (kameng.catalog.pricing)

    @property
    def title(self) -> str:
        return f"{self.product_name} {self.sku_name}"


_SKUS_FOR_SALE_SQL = """
SELECT s.id, s.name, s.price, p.id, p.name, p.delivery_kind, p.min_quantity, p.max_quantity, p.category_id,
       s.floor_price
FROM catalog_sku s JOIN catalog_product p ON p.id = s.product_id
WHERE s.id = ANY(%s::bigint[]) AND s.is_active AND p.status = %s
"""


def skus_for_sale(*, sku_ids: list[int]) -> dict[int, SkuForSale]:
    """The SKUs on sale among `sku_ids` (enabled, product on sale), by id.

    On PostgreSQL one plain SELECT: building the same query through the ORM cost about as much CPU as a whole key
    claim, and every checkout pays it. An id outside bigint names no SKU and is left out (it would fail the query
    for all the others).
    """
    sku_ids = [sku_id for sku_id in sku_ids if is_database_id(sku_id)]
    if not sku_ids:
        return {}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_SKUS_FOR_SALE_SQL, [sku_ids, ProductStatus.ON_SALE])
            rows = cursor.fetchall()
    else:
        rows = list(Sku.objects.filter(pk__in=sku_ids, is_active=True, product__status=ProductStatus.ON_SALE)
                    .values_list("pk", "name", "price", "product_id", "product__name", "product__delivery_kind",
                                 "product__min_quantity", "product__max_quantity", "product__category_id",
                                 "floor_price"))
    return {row[0]: SkuForSale(*row) for row in rows}


SKUS_FOR_SALE_HELD_SECONDS = 1.0


def skus_for_sale_recent(*, sku_ids: list[int]) -> dict[int, SkuForSale]:
    """`skus_for_sale`, answered from what this process read of each SKU in the last SKUS_FOR_SALE_HELD_SECONDS
    (that a SKU is not on sale too), reading only the others.

    For the group-commit writer, where a read is a wait for the server on every batch's path. The bound: a price
    or a sale state changed elsewhere is seen here within that second; saving a SKU or its product forgets it in
    its own process at once (`kameng.catalog.models.skus_for_sale_held_forget`).
    """
    now = time.monotonic()
    found: dict[int, SkuForSale] = {}
    missing = []
    for sku_id in sku_ids:
        held = skus_for_sale_held.get(sku_id)
        if held is not None and now - held[1] < SKUS_FOR_SALE_HELD_SECONDS:
            if held[0] is not None:
                found[sku_id] = held[0]
        else:
            missing.append(sku_id)
    if missing:
        read = skus_for_sale(sku_ids=missing)
        for sku_id in missing:
            skus_for_sale_held[sku_id] = (read.get(sku_id), now)
        found.update(read)
    return found


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


def topup_form_for_sku(*, sku_id: int) -> tuple[str, list[dict[str, Any]]] | None:
    """The delivery kind of the SKU's product and the top-up form it asks for ([] for kinds without one), or None
    for a SKU that does not exist (the checkout says so)."""
    if not is_database_id(sku_id):
        return None
    row = Product.objects.filter(skus__pk=sku_id).values_list("delivery_kind", "topup_form").first()
    if row is None:
        return None
    return row[0], topup_form_of(delivery_kind=row[0], template=row[1])


GAME_GOODS_CACHE_SECONDS = 300
# A process answers from its own copy for KAMENG_RISK_RULES_CHECK_SECONDS (2 s by default: as long as a risk rule
# change takes to apply), for this many SKUs at most.
GAME_GOODS_HELD_MAX = 10_000


def is_game_goods_sku(*, sku_id: int) -> bool:
    """Whether the SKU's product is marked 游戏类商品 (minors' limits apply: kameng.risk). Asked at every order
    while the minors' rule is enabled, so it is kept: in this process for KAMENG_RISK_RULES_CHECK_SECONDS (no round
    trip at all for a busy SKU), then in the shared cache (one cache read), a query only the first time. Saving the
    product forgets it in the cache and in the process that saved it; another process follows within
    KAMENG_RISK_RULES_CHECK_SECONDS, the bound a risk rule's own change has. An unknown SKU is not game goods (the
    checkout refuses it anyway)."""
    now = time.monotonic()
    held = game_goods_held.get(sku_id)
    if held is not None and now - held[1] <= settings.KAMENG_RISK_RULES_CHECK_SECONDS:
        return held[0]
    key = game_goods_cache_key(sku_id)
    cached = cache.get(key)
    if cached is not None:
        is_game = bool(cached)
    else:
        is_game = is_database_id(sku_id) and Sku.objects.filter(pk=sku_id, product__is_game_goods=True).exists()
        cache.set(key, int(is_game), timeout=GAME_GOODS_CACHE_SECONDS)
    if len(game_goods_held) >= GAME_GOODS_HELD_MAX:
        game_goods_held.clear()
    game_goods_held[sku_id] = (is_game, now)
    return is_game
