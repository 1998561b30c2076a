"""The storefront's layout in a real browser at desktop and phone widths: what a buyer sees must not overlap."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import FloatRect, Page, ViewportSize
from pytest_django.live_server_helper import LiveServer

from tests.factories import ProductFactory, SkuFactory, stock_sku

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
