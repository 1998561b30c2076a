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


# Known shapes only, each standing alone: a value inside a longer token (a decimal such as Celery's "succeeded in
# 0.0055426287s", a hex address, an order number K2026…, an identifier) is not one of them. ASCII classes rather than
# \w, which matches Chinese too and would leave "手机13812345678" unmasked.
_ALONE_BEFORE = r"(?<![0-9A-Za-z_.])"
_ALONE_AFTER = r"(?![0-9A-Za-z_]|\.\d)"
# Mainland mobile numbers, with or without +86.
_PHONE = re.compile(_ALONE_BEFORE + r"((?:\+?86[- ]?)?1[3-9]\d)\d{4}(\d{4})" + _ALONE_AFTER)
# Resident ID numbers: region, a birth date (19xx/20xx, month, day), sequence, check digit.
_ID_NUMBER = re.compile(
    _ALONE_BEFORE + r"(\d{6})(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(\d{3}[\dXx])" + _ALONE_AFTER
)
# First-generation 15-digit numbers (region, YYMMDD, sequence): no longer valid, still found in old records.
_LEGACY_ID_NUMBER = re.compile(
    _ALONE_BEFORE + r"(\d{6})\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(\d{3})" + _ALONE_AFTER
)
# A person's name cannot be told from other words in free text, so names are masked where a field names them:
# `real_name=…`, `姓名：…`, and `"Name": "…"` (capitalised, as in Tencent Cloud's identity requests). ID numbers in
# named fields are masked whatever their shape (a mistyped number is still someone's).
_FIELD_VALUE = r"(['\"]?\s*[=:：]\s*['\"]?)([^\s&,'\"，。]+)"
_PERSON_NAME = re.compile(
    r"(?i)(?<![a-z0-9])(real_?name|legal_?name|full_?name|person_?name|holder_?name|真实姓名|法人姓名|姓名)"
    + _FIELD_VALUE
)
_PERSON_NAME_CAPITALISED = re.compile(r"(?<![A-Za-z0-9_])(Name)" + _FIELD_VALUE)
_ID_NUMBER_FIELD = re.compile(
    r"(?i)(?<![a-z0-9])(id_?card|id_?card_?no|id_?number|id_?no|身份证号码|身份证号|身份证)" + _FIELD_VALUE
)
# Card secrets shaped like licence keys: three or more dash-separated groups of capitals and digits, with a digit.
_CARD_SECRET = re.compile(r"(?<![0-9A-Za-z_-])(?=[A-Z0-9-]*\d)([A-Z0-9]{4,}(?:-[A-Z0-9]{4,}){2,})(?![0-9A-Za-z_-])")
# `(?<![a-z0-9])` rather than `\b`: `_` is a word character, and `app_secret=`, `api_key=` must be masked too.
_KEYVALUE = re.compile(
    r"(?i)(?<![a-z0-9])(secret|password|passwd|key|sign|signature|pin|token|cvv)(['\"]?\s*[=:]\s*['\"]?)"
    r"([^\s&,'\"]+)"
)
# An Authorization header, whatever its scheme (Bearer, Basic, WeChat Pay's "WECHATPAY2-SHA256-RSA2048 mchid=…"):
# the quoted value, or the rest of the line.
_AUTHORIZATION = re.compile(r"(?i)((?<![a-z0-9])authorization['\"]?\s*[=:]\s*)('[^'\n]*'|\"[^\"\n]*\"|[^\n]*)")


class Revealed(str):
    """A value a page shows in full on purpose (the bank account and holder's name on the page where staff pay a
    withdrawal), masked in its repr: Django's template engine logs its whole context at DEBUG when a variable is
    missing, and a repr is what lands in a log line or a traceback. Renders (str) as the value itself."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(mask_secret(str(self)))


def mask_person_name(value: str) -> str:
    """张三 → 张*, 张小三 → 张*三; anything that is not a name written in Chinese (an escaped one, a romanised
    one) entirely."""
    if len(value) < 2 or not all("\u3400" <= char <= "\u9fff" or char == "·" for char in value):
        return "***"
    return value[0] + "*" if len(value) == 2 else value[0] + "*" * (len(value) - 2) + value[-1]


def mask_text(text: str) -> str:
    """Mask known secrets inside free text (log lines, tracebacks): phone numbers, ID numbers (18 and 15 digits),
    people's names in named fields, card secrets shaped like keys, Authorization headers and the values of
    `secret=`, `password=`, `key=`, `sign=`-style fields."""
    text = _AUTHORIZATION.sub(lambda m: m.group(1) + "***", text)
    text = _ID_NUMBER_FIELD.sub(lambda m: m.group(1) + m.group(2) + "***", text)
    text = _PERSON_NAME.sub(lambda m: m.group(1) + m.group(2) + mask_person_name(m.group(3)), text)
    text = _PERSON_NAME_CAPITALISED.sub(lambda m: m.group(1) + m.group(2) + mask_person_name(m.group(3)), text)
    text = _ID_NUMBER.sub(r"\1********\2", text)
    text = _LEGACY_ID_NUMBER.sub(r"\1******\2", text)
    text = _PHONE.sub(r"\1****\2", text)
    text = _CARD_SECRET.sub(lambda m: mask_secret(m.group(1)), text)
    return _KEYVALUE.sub(lambda m: m.group(1) + m.group(2) + "***", text)
