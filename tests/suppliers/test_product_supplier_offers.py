from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client

from kameng.suppliers.models import RoutingRuleKind, SkuRoutingRule, SupplierStatus
from tests.factories import ProductFactory, SkuFactory, SupplierOfferFactory

pytestmark = pytest.mark.django_db


def _listed(page: str) -> list[str]:
    return [re.sub(r"\s+", " ", item).strip().split(" · ")[0]
            for item in re.findall(r'data-testid="supplier-offer">(.*?)</li>', page, flags=re.S)]


def test_the_product_page_lists_its_suppliers_five_star_first_then_by_price(client: Client) -> None:
    product = ProductFactory.create()
    sku = SkuFactory.create(product=product, price=Decimal("10.00"))
    SupplierOfferFactory.create(sku=sku, price=Decimal("8.00"), supplier__name="便宜四星",
                                supplier__rating=Decimal("4.40"))
    SupplierOfferFactory.create(sku=sku, price=Decimal("9.50"), supplier__name="贵五星",
                                supplier__rating=Decimal("4.90"))
    SupplierOfferFactory.create(sku=sku, price=Decimal("9.00"), supplier__name="便宜五星",
                                supplier__rating=Decimal("4.60"))
    SupplierOfferFactory.create(sku=sku, price=Decimal("7.00"), supplier__name="三星", supplier__rating=Decimal("3.00"),
                                upstream_stock=0)
    SupplierOfferFactory.create(sku=sku, price=Decimal("1.00"), supplier__name="已暂停",
                                supplier__status=SupplierStatus.SUSPENDED)
    SupplierOfferFactory.create(sku=sku, price=Decimal("1.00"), supplier__name="已停用", is_active=False)
    excluded = SupplierOfferFactory.create(sku=sku, price=Decimal("1.00"), supplier__name="已排除")
    SkuRoutingRule.objects.create(sku=sku, supplier=excluded.supplier, kind=RoutingRuleKind.EXCLUDE)

    page = client.get(f"/products/{product.pk}/").content.decode()

    assert _listed(page) == ["便宜五星", "贵五星", "三星", "便宜四星"]
    assert "★★★★★" in page
    assert "缺货" in page
    assert "¥9.50" not in page
    assert "8.00" not in page


def test_a_product_no_supplier_offers_has_no_supplier_section(client: Client) -> None:
    sku = SkuFactory.create()

    page = client.get(f"/products/{sku.product_id}/").content.decode()

    assert 'data-testid="supplier-offers"' not in page
