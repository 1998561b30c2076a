"""The storefront's layout in a real browser at desktop and phone widths: what a buyer sees must not overlap."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import FloatRect, Page, ViewportSize
from pytest_django.live_server_helper import LiveServer

from tests.factories import CategoryFactory, ProductFactory, SkuFactory, stock_sku

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


def _overlaps(first: FloatRect, second: FloatRect) -> bool:
    return not (first["x"] + first["width"] <= second["x"] or second["x"] + second["width"] <= first["x"]
                or first["y"] + first["height"] <= second["y"] or second["y"] + second["height"] <= first["y"])


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_sku_radio_buttons_do_not_cover_the_sku_text(page: Page, live_server: LiveServer,
                                                      viewport: ViewportSize) -> None:
    # `.field label {display:block}` used to beat `.sku-option {display:flex}`: the options collapsed to one line
    # and the absolutely placed radio sat on top of the 库存 count.
    product = ProductFactory.create(name="腾讯 Q 币卡")
    skus = [SkuFactory.create(product=product, name=f"{value} 元", price=Decimal(value)) for value in (10, 30, 100)]
    for sku in skus:
        stock_sku(sku, 100)
    page.set_viewport_size(viewport)

    page.goto(f"{live_server.url}/products/{product.pk}/")

    for sku in skus:
        option = page.locator(f"label.sku-option:has([data-testid=sku-{sku.pk}])")
        radio = option.locator("input").bounding_box()
        assert radio is not None
        for part in ("sku-name", "price", "stock"):
            text = option.locator(f".{part}").bounding_box()
            assert text is not None
            assert not _overlaps(radio, text), (part, radio, text)
        assert option.evaluate("element => getComputedStyle(element).display") == "grid"


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_buyer_searches_from_the_header_box(page: Page, live_server: LiveServer, viewport: ViewportSize) -> None:
    phones = CategoryFactory.create(name="话费卡")
    wanted = ProductFactory.create(name="中国移动话费充值卡", category=phones)
    SkuFactory.create(product=wanted, name="100 元", face_value=Decimal("100"), price=Decimal("99.00"))
    other = ProductFactory.create(name="中国联通充值卡", category=phones)
    SkuFactory.create(product=other, name="30 元", face_value=Decimal("30"), price=Decimal("29.70"))
    page.set_viewport_size(viewport)

    page.goto(live_server.url + "/")
    search_box = page.locator("[data-testid=search-input]")
    assert search_box.is_visible()
    search_box.fill("话费 100")
    search_box.press("Enter")
    page.wait_for_selector("[data-testid=search-heading]")

    assert page.locator("[data-testid=product-link]").all_inner_texts() == ["中国移动话费充值卡"]
    assert page.locator("[data-testid=search-input]").input_value() == "话费 100"
    assert page.locator("[data-testid=product-placeholder]").count() == 1
    box = search_box.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= viewport["width"]

    search_box.fill("爱奇艺")
    page.click("[data-testid=search-submit]")
    page.wait_for_selector("[data-testid=search-empty]")
    assert "没有找到与「爱奇艺」相关的在售商品" in page.inner_text("[data-testid=search-empty]")
