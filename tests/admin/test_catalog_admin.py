"""The catalogue in the back office: deleting what has card keys or orders is refused with a short count (never a
list of every protected row), and what the forms refuse."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from kameng.catalog.models import Category, Product, Sku
from kameng.inventory.models import CardKey
from kameng.orders.services import order_checkout
from tests.factories import CategoryFactory, ProductFactory, SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db


def _sku_row(index: int, sku: Sku | None = None, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"id": sku.pk if sku else "", "name": sku.name if sku else f"{index + 1} 元",
                           "face_value": str(sku.face_value) if sku and sku.face_value is not None else "",
                           "price": str(sku.price) if sku else "1.00", "is_active": "on",
                           "sort_order": "0"}
    if sku is not None:
        row["product"] = sku.product_id
    row.update(overrides)
    return {f"skus-{index}-{name}": value for name, value in row.items() if value is not None}


def _product_form(product: Product | None, rows: list[dict[str, Any]], *, initial: int,
                  **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "category": product.category_id if product else CategoryFactory.create().pk,
        "name": product.name if product else "新商品", "description": "", "delivery_kind": "card_key",
        "status": "on_sale", "sort_order": "0", "min_quantity": "1", "max_quantity": "100",
        "low_stock_threshold": "10", "skus-TOTAL_FORMS": str(len(rows)), "skus-INITIAL_FORMS": str(initial),
        "skus-MIN_NUM_FORMS": "0", "skus-MAX_NUM_FORMS": "1000",
    }
    for row in rows:
        data.update(row)
    data.update(overrides)
    return data


def _card_key_listing_queries(queries: CaptureQueriesContext) -> list[str]:
    """Queries that read card-key rows one by one rather than counting them."""
    return [query["sql"] for query in queries.captured_queries
            if "inventory_cardkey" in query["sql"] and "COUNT(" not in query["sql"].upper()]


def test_deleting_a_sku_with_card_keys_in_the_product_page_is_refused_with_a_count(admin_client: Client) -> None:
    sku = SkuFactory.create()
    stock_sku(sku, 25)
    url = reverse("admin:catalog_product_change", args=[sku.product_id])
    data = _product_form(sku.product, [_sku_row(0, sku, DELETE="on")], initial=1)

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.post(url, data)

    assert response.status_code == 200
    page = response.content.decode()
    assert "该规格仍有卡密 25 条、导入批次 1 条引用，不能删除；请取消「启用」" in page
    delete_box = re.search(r'<input[^>]*name="skus-0-DELETE"[^>]*>', page)
    assert delete_box is not None
    assert "checked" not in delete_box.group()  # unticked again, so the row and its message are not greyed out
    assert "卡密 #" not in page
    assert "受保护的相关对象" not in page
    assert _card_key_listing_queries(queries) == []
    assert Sku.objects.filter(pk=sku.pk).exists()
    assert CardKey.objects.filter(sku=sku).count() == 25


def test_deleting_a_sku_with_orders_names_both_counts(admin_client: Client) -> None:
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 3)
    buyer = UserFactory.create()
    fund_wallet(buyer, "5.00")
    order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1)
    url = reverse("admin:catalog_product_change", args=[sku.product_id])

    response = admin_client.post(url, _product_form(sku.product, [_sku_row(0, sku, DELETE="on")], initial=1))

    assert response.status_code == 200
    assert "该规格仍有卡密 3 条、导入批次 1 条、订单 1 条引用，不能删除；请取消「启用」" in response.content.decode()
    assert Sku.objects.filter(pk=sku.pk).exists()


def test_an_unused_sku_is_still_deleted_from_the_product_page(admin_client: Client) -> None:
    sku = SkuFactory.create()
    other = SkuFactory.create(product=sku.product, name="50 元", price=Decimal("48.00"))
    url = reverse("admin:catalog_product_change", args=[sku.product_id])
    data = _product_form(sku.product, [_sku_row(0, sku, DELETE="on"), _sku_row(1, other)], initial=2)

    response = admin_client.post(url, data)

    assert response.status_code == 302
    assert list(Sku.objects.values_list("pk", flat=True)) == [other.pk]


def test_deleting_a_product_with_skus_is_refused_without_listing_them(admin_client: Client) -> None:
    sku = SkuFactory.create()
    stock_sku(sku, 10)
    url = reverse("admin:catalog_product_delete", args=[sku.product_id])

    with CaptureQueriesContext(connection) as queries:
        page = admin_client.get(url).content.decode()
    posted = admin_client.post(url, {"post": "yes"})

    assert f"「{sku.product.name}」还有 1 个规格，不能删除" in page
    assert 'name="post"' not in page
    assert "卡密 #" not in page
    assert _card_key_listing_queries(queries) == []
    assert posted.status_code == 200
    assert Product.objects.filter(pk=sku.product_id).exists()


def test_the_delete_action_on_products_is_refused_with_one_short_line_each(admin_client: Client) -> None:
    skus = [SkuFactory.create() for _ in range(3)]
    empty = ProductFactory.create()
    for sku in skus:
        stock_sku(sku, 2)
    selected = [sku.product_id for sku in skus] + [empty.pk]

    response = admin_client.post(reverse("admin:catalog_product_changelist"),
                                 {"action": "delete_selected", "_selected_action": selected})

    page = response.content.decode()
    assert response.status_code == 200
    assert page.count("个规格，不能删除") == 3
    assert "卡密 #" not in page
    assert Product.objects.count() == 4


def test_deleting_a_category_with_products_is_refused_with_a_count(admin_client: Client) -> None:
    product = ProductFactory.create()
    CategoryFactory.create(parent=product.category)
    url = reverse("admin:catalog_category_delete", args=[product.category_id])

    page = admin_client.get(url).content.decode()
    admin_client.post(url, {"post": "yes"})

    assert f"「{product.category.name}」下还有 1 个商品、1 个子分类，不能删除" in page
    assert Category.objects.filter(pk=product.category_id).exists()


def test_an_empty_category_can_still_be_deleted(admin_client: Client) -> None:
    category = CategoryFactory.create()
    url = reverse("admin:catalog_category_delete", args=[category.pk])

    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert not Category.objects.filter(pk=category.pk).exists()


def test_minimum_above_maximum_quantity_says_what_to_fix(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:catalog_product_add"),
                                 _product_form(None, [], initial=0, min_quantity="5", max_quantity="2"))

    page = response.content.decode()
    assert response.status_code == 200
    assert "「单笔最多购买」不能小于「单笔最少购买」" in page
    assert "是无效的" not in page
    assert not Product.objects.exists()


def test_a_negative_face_value_is_refused(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:catalog_product_add"),
                                 _product_form(None, [_sku_row(0, face_value="-10.00")], initial=0))

    assert response.status_code == 200
    assert "面值必须大于 0，或留空" in response.content.decode()
    assert not Product.objects.exists()


def test_two_skus_with_the_same_name_in_one_product_are_refused(admin_client: Client) -> None:
    sku = SkuFactory.create(name="100 元")
    url = reverse("admin:catalog_product_change", args=[sku.product_id])
    data = _product_form(sku.product, [_sku_row(0, sku), _sku_row(1, name=" 100  元 ")], initial=1)

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert "同一商品下已有同名规格" in response.content.decode()
    assert Sku.objects.count() == 1


def test_the_same_sku_name_in_two_products_is_fine(admin_client: Client) -> None:
    SkuFactory.create(name="100 元")
    response = admin_client.post(reverse("admin:catalog_product_add"),
                                 _product_form(None, [_sku_row(0, name="100 元")], initial=0))
    assert response.status_code == 302
    assert Sku.objects.filter(name="100 元").count() == 2


def _category_form(category: Category | None = None, **overrides: Any) -> dict[str, Any]:
    data = {"name": category.name if category else "话费充值", "slug": category.slug if category else "",
            "parent": (category.parent_id or "") if category else "", "sort_order": "0", "is_active": "on"}
    return {**data, **overrides}


@pytest.mark.parametrize("depth", [0, 2])
def test_a_category_cannot_be_its_own_ancestor(admin_client: Client, depth: int) -> None:
    root = CategoryFactory.create()
    leaf = root
    for _ in range(depth):
        leaf = CategoryFactory.create(parent=leaf)
    url = reverse("admin:catalog_category_change", args=[root.pk])

    response = admin_client.post(url, _category_form(root, parent=leaf.pk))

    assert response.status_code == 200
    assert "上级分类不能是它自己或它的下级分类" in response.content.decode()
    root.refresh_from_db()
    assert root.parent_id is None


def test_a_chinese_category_name_gets_a_generated_slug(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:catalog_category_add"), _category_form(name="话费充值", slug=""))
    second = admin_client.post(reverse("admin:catalog_category_add"), _category_form(name="游戏点卡", slug=""))

    assert (response.status_code, second.status_code) == (302, 302)
    slugs = list(Category.objects.order_by("pk").values_list("slug", flat=True))
    assert len(slugs) == 2
    assert len(set(slugs)) == 2
    assert all(slug.startswith("c-") and len(slug) == 10 for slug in slugs)


def test_a_typed_slug_is_kept(admin_client: Client) -> None:
    admin_client.post(reverse("admin:catalog_category_add"), _category_form(name="话费", slug="phone-bill"))
    assert Category.objects.get().slug == "phone-bill"


def test_saving_an_on_sale_product_without_an_enabled_sku_warns(admin_client: Client) -> None:
    response = admin_client.post(reverse("admin:catalog_product_add"),
                                 _product_form(None, [_sku_row(0, is_active=None)], initial=0), follow=True)

    page = response.content.decode()
    assert "状态为在售，但没有启用的规格，店铺不会显示它" in page
    assert Product.objects.count() == 1

    enabled = admin_client.post(reverse("admin:catalog_product_add"),
                                _product_form(None, [_sku_row(0)], initial=0, name="有规格"), follow=True)
    assert "没有启用的规格" not in enabled.content.decode()
