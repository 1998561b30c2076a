"""The request-field rules 易支付 V1 and V2 share (PROTOCOLS.md §1), seen from the gateway's side: required
fields, http(s) URLs, money strings, and the gateway's own numbers. Each version raises its own error type;
signing stays with each version.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from django.utils import timezone

from kameng.core.errors import ApplicationError

MONEY = re.compile(r"^\d{1,9}(\.\d{1,2})?$")
MAX_MONEY = Decimal("1000000.00")


def epay_number_new() -> str:
    """Digits only like the real gateways: local time to the millisecond + 6 random digits (23 characters)."""
    now = timezone.localtime()
    return f"{now:%Y%m%d%H%M%S}{now.microsecond // 1000:03d}{secrets.randbelow(10**6):06d}"


@dataclass(frozen=True)
class EpayFieldRules:
    """The checks, raising `error` (the version's refusal type) with the same messages and codes."""

    error: type[ApplicationError]

    def required(self, params: dict[str, str], name: str) -> str:
        value = params.get(name, "")
        if not value:
            raise self.error(f"缺少参数 {name}", code="missing_field")
        return value

    def checked_url(self, value: str, name: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise self.error(f"{name} 不是有效的 http(s) 地址", code="bad_url")
        return value

    def parsed_money(self, text: str) -> Decimal:
        if not MONEY.match(text):
            raise self.error("金额格式错误", code="bad_money")
        try:
            amount = Decimal(text)
        except InvalidOperation as error:  # pragma: no cover - the pattern already refuses these
            raise self.error("金额格式错误", code="bad_money") from error
        if amount <= 0 or amount > MAX_MONEY:
            raise self.error("金额超出范围", code="bad_money")
        return amount
