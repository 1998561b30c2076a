"""In a real browser: the Content-Security-Policy is on, and a gateway's self-submitting form still goes through."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.test import override_settings
from django.utils.html import format_html, format_html_join
from playwright.sync_api import Page
from pytest_django.live_server_helper import LiveServer

from kameng.core.crypto import generate_key
from kameng.payments.gateways.base import PaymentStart
from kameng.payments.gateways.epay import EpayV1Gateway
from kameng.payments.models import ChannelKind, Payment, PaymentChannel, PaymentStatus
from kameng.simulators.services import simulated_epay_merchant_create
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _as_gateway_form(start: PaymentStart) -> PaymentStart:
    """The cashier URL as a gateway that answers HTML sends it: a form and an inline script that submits it."""
    url = urlsplit(start.redirect_url)
    fields = format_html_join("", '<input type="hidden" name="{}" value="{}">', parse_qsl(url.query))
    html = format_html('<form id="gateway-pay" action="{}" method="get">{}<input type="submit" name="submit" '
                       'value="去支付" hidden></form><script>document.getElementById("gateway-pay").submit();</script>',
                       url._replace(query="").geturl(), fields)
    return PaymentStart(html=html)


def test_a_gateway_form_submits_itself_under_the_content_security_policy(
        page: Page, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch, csp_refused: list[str]) -> None:
    buyer = UserFactory.create(username="browser_gateway_form")
    key = generate_key()[:32]
    simulated_epay_merchant_create(pid="1001", key=key, name="模拟商户")
    PaymentChannel.objects.create(code="epay-sim", name="模拟易支付", kind=ChannelKind.EPAY_V1,
                                  gateway_url=live_server.url + "/sim/epay/", merchant_id="1001", merchant_key=key)
    redirect_start = EpayV1Gateway.start
    monkeypatch.setattr(EpayV1Gateway, "start",
                        lambda self, **kwargs: _as_gateway_form(redirect_start(self, **kwargs)))
    base = live_server.url

    with override_settings(SITE_URL=base):
        page.goto(base + "/login/")
        page.fill("#login-form input[name=username]", "browser_gateway_form")
        page.fill("#login-form input[name=password]", "correct-horse-9")
        page.click("#login-submit")
        page.wait_for_url(base + "/")
        page.goto(base + "/wallet/")
        page.fill("[data-testid=topup-amount]", "12.30")
        page.click("#topup-submit")
        page.wait_for_url("**/sim/epay/submit.php**")  # our gateway-form.js submitted it
        page.click("text=确认支付")
        page.wait_for_selector("[data-testid=topup-status][data-status=succeeded]")

    # The gateway's own inline script was refused: the policy is on, and the form went through without it.
    refused_inline = [text for text in csp_refused if "inline script" in text]
    assert len(refused_inline) == 1
    assert refused_inline[0].startswith(base + "/wallet/topup/")
    csp_refused.clear()
    assert Payment.objects.get(user=buyer).status == PaymentStatus.SUCCEEDED
    assert Payment.objects.get(user=buyer).amount == Decimal("12.30")
