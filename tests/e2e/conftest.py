"""Browser tests: Playwright driving Debian's chromium against pytest-django's live server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# Playwright's sync API runs an event loop in the test's thread; the ORM calls in the tests are ordinary
# synchronous test code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def csp_refused() -> list[str]:
    """What the Content-Security-Policy refused on the test's pages ("<url>: <console message>"). Empty at the end
    unless a test took out the refusals it expects."""
    return []


@pytest.fixture
def page(csp_refused: list[str]) -> Iterator[Page]:
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make e2e-deps)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        context = browser.new_context(locale="zh-CN")
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.on("console", lambda message: csp_refused.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text else None)
        yield page
        browser.close()
    # A script, style or image the policy refused is a page that works differently in a browser than in the tests.
    assert csp_refused == []
