"""Content-Security-Policy, HSTS and the HTTPS proxy header: what the browser is told, and pages that obey it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.template.loader import render_to_string
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse

from kameng.orders.models import Order, OrderStatus
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent.parent

# What the policy refuses in a page: a <script> with neither src nor nonce, a <style> without nonce, an inline
# event handler, a style attribute.
INLINE_CODE = re.compile(r"<script(?![^>]*\s(?:src|nonce)=)[^>]*>|<style(?![^>]*\snonce=)[^>]*>|\son[a-z]+=|\sstyle=")


def _directives(header: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


def _bought(client: Client, *, funds: str) -> Order:
    buyer = UserFactory.create()
    fund_wallet(buyer, funds)
    client.force_login(buyer)
    sku = SkuFactory.create(price=Decimal("8.00"))
    stock_sku(sku, 2)
    client.post(reverse("web:buy", args=[sku.product_id]), {"sku": sku.pk, "quantity": 1, "request_id": "csp-1"})
    return Order.objects.get(buyer=buyer)


def test_storefront_pages_carry_a_strict_policy(client: Client) -> None:
    response = client.get("/")

    directives = _directives(response["Content-Security-Policy"])
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "form-action" not in directives  # a gateway's form posts to the gateway


@pytest.mark.parametrize("funds", ["20.00", "1.00"])  # delivered (keys, copy buttons) and unpaid (countdown)
def test_order_pages_have_no_inline_code(client: Client, funds: str) -> None:
    order = _bought(client, funds=funds)
    assert order.status == (OrderStatus.DELIVERED if funds == "20.00" else OrderStatus.PENDING_PAYMENT)

    body = client.get(reverse("web:order_detail", args=[order.number])).content.decode()

    assert INLINE_CODE.findall(body) == []
    assert re.search(r'<script src="/static/web/copy\.js" data-copied="已复制" defer></script>', body)
    assert re.search(r'<script src="/static/web/countdown\.js" data-over="已超时" defer></script>', body)


def test_home_and_product_pages_have_no_inline_code(client: Client) -> None:
    sku = SkuFactory.create()

    for path in ("/", reverse("web:product", args=[sku.product_id]), reverse("web:login")):
        assert INLINE_CODE.findall(client.get(path).content.decode()) == [], path


def test_gateway_form_is_submitted_by_our_own_script() -> None:
    request = RequestFactory().get("/wallet/topup/")
    gateway_html = ('<form id="pay" action="https://pay.example.com/submit" method="post">'
                    '<input name="sign" value="x"></form><script>document.forms.pay.submit()</script>')

    body = render_to_string("web/gateway_form.html", {"html": gateway_html, "back_url": "/wallet/"}, request)

    assert f"<div data-gateway-form>{gateway_html}</div>" in body  # shown as the gateway sent it
    assert re.search(r'<script src="/static/web/gateway-form\.js" defer></script>', body)


def test_admin_pages_allow_what_unfold_needs_and_no_inline_script(client: Client) -> None:
    response = client.get("/admin/login/")

    directives = _directives(response["Content-Security-Policy"])
    assert directives["script-src"] == ["'self'", "'unsafe-eval'"]
    assert directives["style-src"] == ["'self'", "'unsafe-inline'"]
    assert directives["frame-ancestors"] == ["'none'"]


def test_api_answers_carry_a_policy_that_allows_nothing(client: Client) -> None:
    response = client.get("/api/v1/shop/products")

    assert response["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_simulator_styles_carry_the_nonce_of_the_policy(client: Client) -> None:
    response = client.get("/sim/epay/submit.php")

    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"])
    assert nonce is not None
    assert f'<style nonce="{nonce.group(1)}">' in response.content.decode()


@override_settings(SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"), SECURE_HSTS_SECONDS=300)
def test_hsts_is_sent_over_https_as_the_proxy_reports_it(client: Client) -> None:
    over_https = client.get("/", headers={"X-Forwarded-Proto": "https"})
    over_http = client.get("/")

    assert over_https["Strict-Transport-Security"] == "max-age=300"
    assert "Strict-Transport-Security" not in over_http


def test_https_settings_come_from_the_environment() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "SECURE_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "kameng.settings.test", "SECURE_PROXY_SSL_HEADER": "1",
                "SECURE_HSTS_SECONDS": "31536000", "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1", "SECURE_SSL_REDIRECT": "1",
                "PYTHONPATH": str(ROOT)})
    code = ("from django.conf import settings as s; print(s.SECURE_PROXY_SSL_HEADER, s.SECURE_HSTS_SECONDS, "
            "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, s.SECURE_SSL_REDIRECT)")

    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True,
                            text=True, timeout=60)

    assert result.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https') 31536000 True False True"
