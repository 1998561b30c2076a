"""Template helpers for the storefront: money formatting and the wallet balance in the navigation bar."""

from __future__ import annotations

from decimal import Decimal

from django import template

from kameng.core.money import format_money
from kameng.ledger.selectors import wallet_balance

register = template.Library()


@register.filter
def yuan(amount: Decimal | None) -> str:
    return format_money(amount) if amount is not None else ""


@register.simple_tag
def balance_of(user_id: int) -> str:
    return format_money(wallet_balance(user_id=user_id))
