"""The back office in a real browser: logging in at /admin/login/, the favicon, a batch page that reloads itself."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import Page, Response
from pytest_django.live_server_helper import LiveServer

from kameng.inventory.models import CardKeyBatch, ImportStatus
from tests.e2e.support import staff_log_in
from tests.factories import SkuFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _admin_log_in(page: Page, base: str) -> None:
    UserFactory.create(username="browser_staff", is_staff=True, is_superuser=True)
    staff_log_in(page, base, "browser_staff")  # the password, then the 2FA code


def test_staff_log_in_at_the_admin_login_and_land_on_the_admin_index(page: Page, live_server: LiveServer) -> None:
    missing: list[str] = []
    page.on("response", lambda response: missing.append(response.url) if response.status == 404 else None)
    base = live_server.url

    _admin_log_in(page, base)
    page.wait_for_url(base + "/admin/")
    page.wait_for_load_state("networkidle")

    assert page.locator("link[rel=icon]").get_attribute("href") == "/static/kameng/favicon.svg"
    assert missing == []


def test_the_batch_page_reloads_itself_when_the_import_finishes(page: Page, live_server: LiveServer) -> None:
    batch = CardKeyBatch.objects.create(sku=SkuFactory.create(), source_name="keys.txt", total_lines=2)
    base = live_server.url
    _admin_log_in(page, base)
    page.wait_for_url(base + "/admin/")
    page.goto(f"{base}/admin/inventory/cardkeybatch/{batch.pk}/change/")
    assert "排队中" in page.inner_text("#content")
    reloads: list[Response] = []
    page.on("response", lambda response: reloads.append(response) if response.url.endswith("/change/") else None)

    CardKeyBatch.objects.filter(pk=batch.pk).update(status=ImportStatus.DONE, processed_lines=2, imported_count=2,
                                                    finished_at=timezone.now())
    page.wait_for_function("!document.body.innerText.includes('排队中')")

    assert len(reloads) == 1
    assert "已完成" in page.inner_text("#content")
