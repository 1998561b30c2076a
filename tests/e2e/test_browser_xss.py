"""In a real browser: the XSS payloads planted by tests/security/test_xss_escaping.py (product, SKU and category
names, a description, a sub-site's title and notice, usernames) show as text on the product page, the sub-site and
the admin changelists — no dialog fires, no injected element exists, and the Content-Security-Policy had nothing to
refuse (the `page` fixture's check)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import Dialog, Page
from pytest_django.live_server_helper import LiveServer

from tests.e2e.support import staff_log_in
from tests.factories import UserFactory
from tests.resellers.subsite_support import fresh_subsite_caches
from tests.security.test_xss_escaping import PAYLOAD, plant

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
__all__ = ["fresh_subsite_caches"]


def _shows_the_payload_as_text(page: Page, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("load")
    assert page.locator("img[src=x]").count() == 0, url
    assert page.locator("svg[onload]").count() == 0, url
    assert page.evaluate("() => [...document.scripts].some(s => s.text.includes('alert(1)'))") is False, url
    assert PAYLOAD in page.inner_text("body"), url


def test_no_planted_payload_runs_in_the_storefront_the_sub_site_or_the_admin(page: Page,
                                                                             live_server: LiveServer) -> None:
    planted = plant()
    UserFactory.create(username="browser_xss_staff", is_staff=True, is_superuser=True)
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    base = live_server.url
    product = reverse("web:product", args=[planted.product.pk])

    for path in (product, f"/s/{planted.subsite.slug}/", f"/s/{planted.subsite.slug}{product}"):
        _shows_the_payload_as_text(page, base + path)
    staff_log_in(page, base, "browser_xss_staff")
    for path in (reverse("admin:catalog_product_changelist"), reverse("admin:resellers_subsite_changelist"),
                 reverse("admin:accounts_user_changelist"),
                 reverse("admin:catalog_product_change", args=[planted.product.pk])):
        page.goto(base + path)
        page.wait_for_load_state("load")
        assert page.locator("img[src=x]").count() == 0, path
        assert PAYLOAD in page.content().replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"'), path

    assert dialogs == []
