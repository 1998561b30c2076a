"""Money: CNY amounts as `Decimal`, quantised to the fen in exactly one place."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CURRENCY = "CNY"
FEN = Decimal("0.01")
ZERO = Decimal("0.00")
# The largest amount a person may type: what the narrowest money column holds (max_digits 12: prices, payments).
AMOUNT_MAX = Decimal("9999999999.99")
AMOUNT_RE = re.compile(r"^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$", re.ASCII)


class MoneyError(ValueError):
    """Raised for a value that is not a valid amount of money; `template` and `params` as in ApplicationError."""

    def __init__(self, message: str, params: dict[str, object] | None = None) -> None:
        self.template = message
        self.params = params or {}
        super().__init__(message % params if params else message)


def money(value: Decimal | int | str) -> Decimal:
    """Return `value` as a CNY amount quantised to the fen (half up). Floats are refused: they are not money."""
    if isinstance(value, float):
        raise MoneyError("money must not be a float")
    if isinstance(value, bool):
        raise MoneyError("money must not be a boolean")
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation as error:
        raise MoneyError(f"not an amount of money: {value!r}") from error
    if not amount.is_finite():
        raise MoneyError(f"not an amount of money: {value!r}")
    try:
        return amount.quantize(FEN, rounding=ROUND_HALF_UP)
    except InvalidOperation as error:  # more digits than the decimal context holds (28)
        raise MoneyError(f"amount too large: {value!r}") from error


def parse_amount(text: str, *, minimum: Decimal | None = None, maximum: Decimal | None = None) -> Decimal:
    """Parse a user-supplied amount ("12.5" → 12.50), refusing more than two decimals and out-of-range values.

    Plain digits with an optional decimal point only (a minus gets "must be more than 0"): no "+", exponent
    ("1e2"), grouping ("1,000", which could as well mean 1.000) or full-width digits — what a person typed is
    what gets charged. Never more than `AMOUNT_MAX`, whatever `maximum` says.
    """
    text = str(text).strip()
    if not AMOUNT_RE.match(text):
        raise MoneyError("请输入有效的金额")
    try:
        raw = Decimal(text)
    except InvalidOperation as error:
        raise MoneyError("请输入有效的金额") from error
    upper = AMOUNT_MAX if maximum is None else min(maximum, AMOUNT_MAX)
    if raw > upper:  # before any arithmetic: 40 digits would overflow the decimal context in quantize
        raise MoneyError("金额不能超过 ¥%(amount)s", {"amount": grouped(upper)})
    if raw != raw.quantize(FEN):
        raise MoneyError("金额最多两位小数")
    amount = money(raw)
    if amount <= ZERO:
        raise MoneyError("金额必须大于 0")
    if minimum is not None and amount < minimum:
        raise MoneyError("金额不能低于 ¥%(amount)s", {"amount": grouped(minimum)})
    return amount


def to_fen(amount: Decimal) -> int:
    """Integer fen, as WeChat Pay and some suppliers want."""
    return int(money(amount) * 100)


def grouped(amount: Decimal) -> str:
    """An amount as the site writes it, with thousands separators and no currency sign: 50000 → "50,000.00"."""
    return f"{money(amount):,.2f}"


def format_money(amount: Decimal) -> str:
    return f"¥{grouped(amount)}"
