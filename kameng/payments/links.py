"""The addresses of payments' HTTP edges as the gateways are given them: built here and nowhere else.

Gateways are configured with (and sign requests naming) these URLs, so their paths never change:
/pay/notify/<channel code>/ for the asynchronous notification, /pay/return/ for the buyer coming back.
"""

from __future__ import annotations

from django.conf import settings

from kameng.core.urls import reverse_at_root


def payment_notify_url(*, channel_code: str) -> str:
    return settings.SITE_URL + reverse_at_root("payments:notify", args=[channel_code])


def payment_return_url() -> str:
    """Where a gateway sends the buyer back: it appends the payment's number (and its signed fields)."""
    return settings.SITE_URL + reverse_at_root("payments:return")
