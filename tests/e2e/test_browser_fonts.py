"""Chinese renders as Chinese in the browser tests' screenshots, not as boxes (a machine without a CJK font).

How boxes are told apart from glyphs: a character no font has is drawn as the font's "missing glyph" box. The
product name is screenshotted as rendered, then again with each of its characters replaced by U+10FFFD (a private
code point no font draws); the two images are identical exactly when the name itself was drawn as boxes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import Page, sync_playwright
from pytest_django.live_server_helper import LiveServer

from tests.e2e.conftest import CHROMIUM
from tests.factories import ProductFactory, SkuFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NAME = "王者荣耀点券"
UNDRAWABLE = "\U0010fffd"
SCREENSHOTS = Path("/tmp/kameng-e2e-screenshots")  # kept after the run, for a person to look at


def _drawn_as_boxes(page: Page, selector: str) -> bool:
    element = page.locator(selector)
    as_rendered = element.screenshot()
    element.evaluate("(node, box) => { node.textContent = box.repeat(node.textContent.length); }", UNDRAWABLE)
    as_boxes = element.screenshot()
    return as_rendered == as_boxes


def _product_page(page: Page, live_server: LiveServer) -> None:
    sku = SkuFactory.create(product=ProductFactory.create(name=NAME))
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(live_server.url + reverse("web:product", args=[sku.product_id]))
    page.wait_for_selector("[data-testid=product-name]")


def test_the_product_page_shows_chinese_glyphs_not_boxes(page: Page, live_server: LiveServer) -> None:
    _product_page(page, live_server)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "product.png"), full_page=True)

    assert page.inner_text("[data-testid=product-name]") == NAME
    assert not _drawn_as_boxes(page, "[data-testid=product-name]"), (
        "Chinese is drawn as boxes: install a CJK font (make e2e-deps installs fonts-noto-cjk)")


def test_the_check_sees_boxes_on_a_machine_without_a_cjk_font(live_server: LiveServer, tmp_path: Path) -> None:
    # The same page in a browser whose fontconfig knows only DejaVu (no CJK font): the check must say boxes.
    if not shutil.which(CHROMIUM) or not Path("/usr/share/fonts/truetype/dejavu").is_dir():
        pytest.skip("needs Debian's chromium and fonts-dejavu")
    config = tmp_path / "fonts.conf"
    config.write_text('<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
                      f"<dir>/usr/share/fonts/truetype/dejavu</dir><cachedir>{tmp_path / 'cache'}</cachedir>"
                      "</fontconfig>")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, env={"FONTCONFIG_FILE": str(config)},
                                             args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_page()
        _product_page(page, live_server)

        assert _drawn_as_boxes(page, "[data-testid=product-name]")
        browser.close()
