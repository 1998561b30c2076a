"""Template helpers for the storefront: money formatting, the wallet balance in the navigation bar, QR codes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import template
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from kameng.core.money import format_money
from kameng.ledger.selectors import wallet_balance
from kameng.web import qr

register = template.Library()


@register.filter
def yuan(amount: Decimal | None) -> str:
    return format_money(amount) if amount is not None else ""


@register.filter
def discount_text(rate: Decimal) -> str:
    """A discount rate as a Chinese shopper reads it, with the share paid: 0.95 → "95 折（95%）", 0.9 → "9 折（90%）"
    """
    percent = (rate * 100).normalize()
    # Two digits read as a rate out of 100 (95 折), one digit out of 10 (9 折); below 1 折 only the tenths form works.
    zhe = (rate * 10).normalize() if (rate * 100) % 10 == 0 or rate < Decimal("0.1") else percent
    return _("%(zhe)s 折（%(percent)s%%）") % {"zhe": f"{zhe:f}", "percent": f"{percent:f}"}


@register.simple_tag
def balance_of(user_id: int) -> str:
    return format_money(wallet_balance(user_id=user_id))


@register.simple_tag
def qr_svg(payload: str, label: str = "") -> SafeString:
    return qr.qr_svg(payload, label)


@register.filter
def get_item(mapping: dict[Any, Any], key: Any) -> Any:
    """`mapping|get_item:key`: a per-row value a list view computed for its page (None when absent)."""
    return mapping.get(key) if isinstance(mapping, dict) else None
