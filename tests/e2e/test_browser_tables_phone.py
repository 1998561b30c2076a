"""Tables at a phone's width (390 px): a statement drops its kind column, every other table keeps all its columns
and its card scrolls sideways instead of the page spilling over the screen's edge."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page
from pytest_django.live_server_helper import LiveServer

from tests.e2e.support import log_in
from tests.resellers.openapi_support import reseller_with_key

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_at_phone_width_the_key_table_keeps_its_key_id_and_the_statement_drops_its_kind(
        page: Page, live_server: LiveServer) -> None:
    holder = reseller_with_key(funds="50.00", ip_allowlist="203.0.113.7\n198.51.100.0/24")
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url, holder.user.username)

    page.goto(live_server.url + "/reseller/api-keys/")
    key_id_cell = page.locator(f"[data-testid=api-key-row][data-key-id='{holder.key.key_id}'] td").nth(1)
    assert key_id_cell.is_visible()
    assert key_id_cell.inner_text() == holder.key.key_id
    card = page.get_by_test_id("reseller-api-keys")
    assert card.evaluate("card => getComputedStyle(card).overflowX") == "auto"  # the card scrolls, not the page
    assert card.evaluate("card => card.scrollWidth > card.clientWidth")  # seven columns are wider than a phone
    table = card.locator("table").bounding_box()
    box = card.bounding_box()
    assert table is not None
    assert box is not None
    assert table["width"] >= box["width"] - 2 * 18  # the table fills its card (padding aside), never narrower
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    page.goto(live_server.url + "/wallet/")
    statement = page.get_by_test_id("wallet-statement")
    assert statement.locator("th").nth(0).is_visible()
    assert not statement.locator("th").nth(1).is_visible()  # 类型: the amount's sign says it
    assert statement.locator("th").nth(3).is_visible()
    assert statement.get_by_test_id("statement-amount").first.inner_text() == "+50.00"
