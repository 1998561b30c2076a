"""Template helpers for the storefront: money formatting, the wallet balance in the navigation bar, QR codes."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.utils.safestring import SafeString

from kameng.core.money import format_money
from kameng.ledger.selectors import wallet_balance
from kameng.web import qr

register = template.Library()


@register.filter
def yuan(amount: Decimal | None) -> str:
    return format_money(amount) if amount is not None else ""


@register.simple_tag
def balance_of(user_id: int) -> str:
    return format_money(wallet_balance(user_id=user_id))


@register.simple_tag
def qr_svg(payload: str, label: str = "") -> SafeString:
    return qr.qr_svg(payload, label)
