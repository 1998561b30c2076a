"""Security headers on every kind of answer — a storefront page, the admin, the JSON API and the gateway form page:
Permissions-Policy, Referrer-Policy, X-Content-Type-Options, the Content-Security-Policy (the gateway form's own
inline script left without a nonce, so refused; ours loaded from a file), and HTTPS settings from one switch."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from kameng.payments.gateways.base import PaymentStart
from kameng.payments.models import ChannelKind, PaymentChannel
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent.parent


def _assert_common_headers(response: Any) -> None:
    assert response["Permissions-Policy"] == settings.KAMENG_PERMISSIONS_POLICY
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
        assert feature in response["Permissions-Policy"]
    assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_headers_on_a_storefront_page(client: Client) -> None:
    _assert_common_headers(client.get("/"))


def test_headers_on_the_admin(admin_client: Client, client: Client) -> None:
    _assert_common_headers(client.get(reverse("admin:login")))
    page = admin_client.get(reverse("admin:index"))
    assert page.status_code == 200
    _assert_common_headers(page)


def test_headers_on_the_api(client: Client) -> None:
    response = client.get("/api/v1/shop/products")
    _assert_common_headers(response)
    assert response["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_headers_and_no_trusted_inline_script_on_the_gateway_form_page(client: Client,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    PaymentChannel.objects.create(code="epay-x", name="易支付", kind=ChannelKind.EPAY_V1,
                                  gateway_url="https://pay.example.com/", merchant_id="1001", merchant_key="k" * 32)
    gateway_html = ('<form id="pay" action="https://pay.example.com/submit.php" method="post">'
                    '<input name="sign" value="x"></form><script>document.forms.pay.submit()</script>')
    monkeypatch.setattr("kameng.web.views.wallet.wallet_topup_start", lambda **kwargs: SimpleNamespace(
        start=PaymentStart(html=gateway_html), payment=SimpleNamespace(number="P-1")))
    client.force_login(UserFactory.create())

    response = client.post(reverse("web:topup"), {"amount": "10.00", "channel": "epay-x"})

    assert response.status_code == 200
    _assert_common_headers(response)
    body = response.content.decode()
    script_src = re.search(r"script-src ([^;]*)", response["Content-Security-Policy"])
    assert script_src is not None
    assert "unsafe-inline" not in script_src.group(1)
    assert gateway_html in body  # shown as the gateway sent it: its inline script has no nonce, so it is refused
    assert '<script src="/static/web/gateway-form.js" defer></script>' in body
    inline = re.findall(r"<script(?![^>]*\s(?:src|nonce)=)[^>]*>", body)
    assert inline == ["<script>"]  # the gateway's, and only it


def test_behind_https_turns_on_the_proxy_header_the_redirect_secure_cookies_and_hsts() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "SECURE_", "KAMENG_B"))}
    env.update({"DJANGO_SETTINGS_MODULE": "kameng.settings.test", "KAMENG_BEHIND_HTTPS": "1", "PYTHONPATH": str(ROOT)})
    code = ("from django.conf import settings as s; print(s.SECURE_PROXY_SSL_HEADER, s.SECURE_SSL_REDIRECT, "
            "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS)")

    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True,
                            text=True, timeout=60)

    assert result.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https') True True True 31536000"


def test_the_demo_and_tests_are_not_behind_https() -> None:
    assert settings.KAMENG_BEHIND_HTTPS is False
    assert settings.SECURE_SSL_REDIRECT is False
