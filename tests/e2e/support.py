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


def staff_log_in(page: Page, base: str, username: str) -> None:
    """Log the staff account `username` in at /admin/login/ and pass the 2FA step with a code computed from the
    tests' authenticator key (given to the account here), landing on the admin index."""
    from kameng.accounts.models import User
    from kameng.accounts.staff_otp import totp_device_seed
    from tests.factories import STAFF_TOTP_KEY, staff_totp_code

    totp_device_seed(user=User.objects.get(username=username), key_hex=STAFF_TOTP_KEY)
    page.goto(base + "/admin/login/")
    page.fill("#login-form input[name=username]", username)
    page.fill("#login-form input[name=password]", BUYER_PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url("**/admin/otp/verify/**")
    page.fill("#staff-otp-form input[name=code]", staff_totp_code())
    page.click("#staff-otp-form button[type=submit]")
    page.wait_for_url(base + "/admin/")
