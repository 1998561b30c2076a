"""What several browser tests do the same way."""

from __future__ import annotations

from playwright.sync_api import Page

BUYER_PASSWORD = "correct-horse-9"  # tests.factories.UserFactory's password


def log_in(page: Page, base: str, username: str) -> None:
    """Log `username` in through the storefront's login form and wait for the home page."""
    page.goto(base + "/login/")
    page.fill("#login-form input[name=username]", username)
    page.fill("#login-form input[name=password]", BUYER_PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(base + "/")
