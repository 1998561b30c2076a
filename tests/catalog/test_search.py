"""Product search: Chinese queries (no spaces between words), several terms, face values, and bad input."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from kameng.catalog.models import Category, Product, ProductStatus
from kameng.catalog.search import SearchQueryError, products_matching, search_terms
from tests.factories import CategoryFactory, ProductFactory, SkuFactory

pytestmark = pytest.mark.django_db


def _product(name: str, category: Category, skus: list[tuple[str, str | None]]) -> Product:
    product = ProductFactory.create(name=name, category=category)
    for sku_name, face_value in skus:
        SkuFactory.create(product=product, name=sku_name,
                          face_value=Decimal(face_value) if face_value else None, price=Decimal("9.90"))
    return product


@pytest.fixture
def shop() -> dict[str, Product]:
    games = CategoryFactory.create(name="游戏点卡")
    videos = CategoryFactory.create(name="视频会员")
    phones = CategoryFactory.create(name="话费卡")
    return {
        "wangzhe": _product("王者荣耀点券", games, [("60 点券", "6"), ("300 点券", "30")]),
        "qb": _product("腾讯 Q 币卡", games, [("10 元", "10"), ("100 元", "100")]),
        "txvideo": _product("腾讯视频 VIP 会员", videos, [("月卡", None), ("年卡", None)]),
        "mobile": _product("中国移动话费充值卡", phones, [("50 元", "50"), ("100 元", "100")]),
        "unicom": _product("中国联通充值卡", phones, [("30 元", "30")]),
        "steam": _product("Steam 钱包充值卡", games, [("50 元", "50")]),
    }


def _found(query: str) -> list[str]:
    return [product.name for product in products_matching(terms=search_terms(query))]


@pytest.mark.parametrize(("query", "expected"), [
    ("王者 60", ["王者荣耀点券"]),
    ("王者荣耀60", ["王者荣耀点券"]),
    ("话费 100", ["中国移动话费充值卡"]),
    ("话费100元", ["中国移动话费充值卡"]),
    ("腾讯视频", ["腾讯视频 VIP 会员"]),
    ("腾讯", ["腾讯 Q 币卡", "腾讯视频 VIP 会员"]),
    ("Q币", ["腾讯 Q 币卡"]),
    ("q 币", ["腾讯 Q 币卡"]),
    ("Ｑ币　１００", ["腾讯 Q 币卡"]),  # full-width letters, digits and space
    ("steam", ["Steam 钱包充值卡"]),
    ("STEAM50", ["Steam 钱包充值卡"]),
    ("话费卡", ["中国移动话费充值卡", "中国联通充值卡"]),
    ("视频 年卡", ["腾讯视频 VIP 会员"]),
    ("充值卡 30", ["中国联通充值卡"]),
    ("月卡", ["腾讯视频 VIP 会员"]),
    ("王者 100", []),
    ("爱奇艺", []),
])
def test_search_finds_products_by_name_category_sku_and_face_value(shop: dict[str, Product], query: str,
                                                                    expected: list[str]) -> None:
    assert _found(query) == expected


def test_a_face_value_matches_the_sku_face_value_even_when_its_name_says_otherwise() -> None:
    category = CategoryFactory.create(name="礼品卡")
    _product("京东 E 卡", category, [("标准面额", "200")])

    assert _found("京东 200") == ["京东 E 卡"]
    assert _found("京东 300") == []


def test_search_ignores_what_the_storefront_does_not_show() -> None:
    category = CategoryFactory.create(name="游戏点卡")
    off_shelf = _product("王者荣耀点券（下架）", category, [("60 点券", "6")])
    off_shelf.status = ProductStatus.OFF_SHELF
    off_shelf.save()
    disabled_sku = _product("王者荣耀周卡", category, [("60 点券", "6")])
    disabled_sku.skus.update(is_active=False)
    _product("王者荣耀礼包", CategoryFactory.create(name="隐藏分类", is_active=False), [("60 点券", "6")])
    only_disabled_match = _product("王者荣耀月卡", category, [("月卡", None)])
    SkuFactory.create(product=only_disabled_match, name="60 点券", is_active=False)

    assert _found("王者") == ["王者荣耀月卡"]
    assert _found("王者 60") == []


def test_search_terms_split_chinese_from_digits_and_letters() -> None:
    assert search_terms("  王者荣耀60  点券 ") == ["王者荣耀", "60", "点券"]
    assert search_terms("Steam钱包50.5") == ["steam", "钱包", "50.5"]
    assert search_terms("话费 话费 100") == ["话费", "100"]
    assert search_terms("（国区）!!") == ["国区"]
    assert search_terms("   ") == []
    assert search_terms("!!!") == []


@pytest.mark.parametrize(("query", "code"), [
    ("王" * 51, "search_query_too_long"),
    ("x" * 100_000, "search_query_too_long"),
    ("a\x00b", "search_query_characters"),
    ("王者\u200b60", "search_query_characters"),
    ("a b c d e f g", "search_too_many_terms"),
])
def test_bad_queries_are_refused_with_a_reason(query: str, code: str) -> None:
    with pytest.raises(SearchQueryError) as raised:
        search_terms(query)

    assert raised.value.code == code


def test_the_search_page_lists_matching_products_as_cards(client: Client, shop: dict[str, Product]) -> None:
    response = client.get(reverse("web:search"), {"q": "话费 100"})

    page = response.content.decode()
    assert response.status_code == 200
    assert page.count('data-testid="product-card"') == 1
    assert f'href="/products/{shop["mobile"].pk}/"' in page
    assert "搜索「话费 100」" in page
    assert "找到 1 个商品" in page
    assert 'value="话费 100"' in page  # the header's box keeps the query


def test_the_search_page_says_when_nothing_matches(client: Client, shop: dict[str, Product]) -> None:
    response = client.get(reverse("web:search"), {"q": "爱奇艺 黄金"})

    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="product-card"' not in page
    assert "没有找到与「爱奇艺 黄金」相关的在售商品" in page
    assert '<a class="chip" href="?q=%E6%B8%B8%E6%88%8F%E7%82%B9%E5%8D%A1">游戏点卡</a>' in page


@pytest.mark.parametrize("query", ["", "   ", "\t\n"])
def test_a_blank_search_says_what_to_type(client: Client, shop: dict[str, Product], query: str) -> None:
    response = client.get(reverse("web:search"), {"q": query})

    page = response.content.decode()
    assert response.status_code == 200
    assert "输入商品名称、分类或面值搜索" in page
    assert 'data-testid="product-card"' not in page


@pytest.mark.parametrize(("query", "message"), [
    ("王" * 51, "搜索词太长：请输入不超过 50 个字"),
    ("x" * 5000, "搜索词太长：请输入不超过 50 个字"),
    ("a\x00b", "搜索词包含无法识别的字符：请只输入文字、字母和数字"),
])
def test_bad_input_on_the_search_page_is_a_400_with_the_reason(client: Client, shop: dict[str, Product],
                                                                query: str, message: str) -> None:
    response = client.get(reverse("web:search"), {"q": query})

    page = response.content.decode()
    assert response.status_code == 400
    assert message in page
    assert 'data-testid="product-card"' not in page


def test_a_nul_byte_in_the_raw_url_is_a_400(client: Client, shop: dict[str, Product]) -> None:
    response = client.get("/search/?q=%E7%8E%8B%00%E8%80%85")

    assert response.status_code == 400
    assert "搜索词包含无法识别的字符" in response.content.decode()


def test_every_page_has_the_search_box(client: Client) -> None:
    page = client.get(reverse("web:home")).content.decode()

    assert 'action="/search/"' in page
    assert 'name="q"' in page


def test_the_search_page_speaks_english(client: Client, shop: dict[str, Product]) -> None:
    client.post(reverse("set_language"), {"language": "en", "next": "/"})

    found = client.get(reverse("web:search"), {"q": "话费 100"}).content.decode()
    refused = client.get(reverse("web:search"), {"q": "王" * 51})

    assert "1 product found" in found
    assert 'placeholder="Search products, categories or face values"' in found
    assert refused.status_code == 400
    assert "Search text too long: use at most 50 characters" in refused.content.decode()
