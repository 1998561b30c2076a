"""What the storefront lists: on-sale products of visible categories that have something to buy."""

from __future__ import annotations

import pytest
from pytest_django.fixtures import Settings

from kameng.catalog.models import ProductStatus
from kameng.catalog.selectors import products_on_sale
from tests.factories import ProductFactory, SkuFactory

pytestmark = pytest.mark.django_db


def test_products_without_an_enabled_sku_are_not_on_sale() -> None:
    listed = SkuFactory.create().product
    without_skus = ProductFactory.create()
    only_disabled = SkuFactory.create(is_active=False).product
    mixed = SkuFactory.create(is_active=False).product
    enabled = SkuFactory.create(product=mixed, name="50 元")
    SkuFactory.create(product=ProductFactory.create(status=ProductStatus.OFF_SHELF))

    products = list(products_on_sale())

    assert {product.pk for product in products} == {listed.pk, mixed.pk}
    assert without_skus.pk not in {product.pk for product in products}
    assert only_disabled.pk not in {product.pk for product in products}
    by_pk = {product.pk: product for product in products}
    assert [sku.pk for sku in by_pk[mixed.pk].skus.all()] == [enabled.pk]


def test_game_goods_is_held_per_process_for_the_risk_rules_bound(monkeypatch: pytest.MonkeyPatch,
                                                                  settings: Settings) -> None:
    from django.core.cache import cache

    from kameng.catalog import selectors
    from kameng.catalog.models import Product, game_goods_cache_key

    now = [1000.0]
    monkeypatch.setattr(selectors.time, "monotonic", lambda: now[0])
    sku = SkuFactory.create()
    assert not selectors.is_game_goods_sku(sku_id=sku.pk)
    # Marked in another process: the row and the shared cache change, this process's copy does not.
    Product.objects.filter(pk=sku.product_id).update(is_game_goods=True)
    cache.delete(game_goods_cache_key(sku.pk))

    now[0] += settings.KAMENG_RISK_RULES_CHECK_SECONDS - 0.5
    within = selectors.is_game_goods_sku(sku_id=sku.pk)
    now[0] += 1.0
    after = selectors.is_game_goods_sku(sku_id=sku.pk)
    cache.delete(game_goods_cache_key(sku.pk))  # the shared cache outlives the test's rolled-back SKU

    assert (within, after) == (False, True)


def test_saving_the_product_forgets_game_goods_in_this_process_at_once() -> None:
    from django.core.cache import cache

    from kameng.catalog.models import game_goods_cache_key
    from kameng.catalog.selectors import is_game_goods_sku

    sku = SkuFactory.create()
    before = is_game_goods_sku(sku_id=sku.pk)
    sku.product.is_game_goods = True
    sku.product.save()
    after = is_game_goods_sku(sku_id=sku.pk)
    cache.delete(game_goods_cache_key(sku.pk))  # the shared cache outlives the test's rolled-back SKU

    assert (before, after) == (False, True)
