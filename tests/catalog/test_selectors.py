"""What the storefront lists: on-sale products of visible categories that have something to buy."""

from __future__ import annotations

import pytest

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
