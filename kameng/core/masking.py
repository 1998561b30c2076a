"""Masking for display and logs: show just enough to recognise a value, never the whole of it."""

from __future__ import annotations

import re


def mask_secret(value: str) -> str:
    """`ABCD-1234-WXYZ` → `AB**********YZ`. Short values are masked entirely."""
    if len(value) <= 6:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


def mask_phone(value: str) -> str:
    return value[:3] + "****" + value[-4:] if len(value) == 11 else mask_secret(value)


_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_ID_NUMBER = re.compile(r"(?<![\dXx])(\d{6})\d{8}(\d{3}[\dXx])(?![\dXx])")
# `(?<![a-z0-9])` rather than `\b`: `_` is a word character, and `app_secret=`, `api_key=` must be masked too.
_KEYVALUE = re.compile(
    r"(?i)(?<![a-z0-9])(secret|password|key|sign|pin|token)(['\"]?\s*[=:]\s*['\"]?)([^\s&,'\"]+)"
)


def mask_text(text: str) -> str:
    """Mask phone numbers, ID numbers and `secret=…`-style values inside free text (log lines)."""
    text = _ID_NUMBER.sub(r"\1********\2", text)
    text = _PHONE.sub(r"\1****\2", text)
    return _KEYVALUE.sub(lambda m: m.group(1) + m.group(2) + "***", text)
