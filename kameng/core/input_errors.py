"""Chinese messages for input that did not validate: the one place the JSON APIs (the resellers' Open API v1,
kameng.openapi; the storefront JSON, kameng.api) turn pydantic's error list, as django-ninja hands it over, into text
a Chinese developer reads — the field's path and what is wrong with it, never pydantic's English.

Each error type pydantic reports for our schemas has its sentence here (`MESSAGES`); a type without one gets
`FALLBACK` with the field's path, so a new pydantic type is never shown in English. An API may give a field a rule in
words (`rules`, e.g. request_no's allowed characters and length), said in place of pydantic's length or pattern
complaint about that field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

PREFIX = "请求参数有误："
# Where django-ninja says a value came from: the first part of an error's `loc`, not part of the field's path.
SOURCES = frozenset({"body", "query", "path", "header", "cookie", "form", "file"})
# The handlers' name for their JSON body parameter: ninja puts it after "body" in `loc`.
BODY_PARAMETER = "payload"
WHOLE_BODY = "请求体"
MESSAGES_SHOWN = 3

MESSAGES: dict[str, str] = {
    "missing": "缺少必填字段 {field}",
    "string_type": "{field} 必须是字符串",
    "string_too_short": "{field} 至少 {min_length} 个字符",
    "string_too_long": "{field} 最多 {max_length} 个字符",
    "string_pattern_mismatch": "{field} 格式不正确（须匹配正则 {pattern}）",
    "string_unicode": "{field} 不是有效的 UTF-8 文本",
    "int_type": "{field} 必须是整数（JSON 数字，不带引号、不带小数）",
    "int_parsing": "{field} 必须是整数",
    "int_from_float": "{field} 必须是整数，不能有小数",
    "int_parsing_size": "{field} 数值超出范围",
    "float_type": "{field} 必须是数字",
    "float_parsing": "{field} 必须是数字",
    "decimal_type": "{field} 必须是数字",
    "decimal_parsing": "{field} 必须是数字",
    "decimal_max_digits": "{field} 最多 {max_digits} 位数字",
    "decimal_max_places": "{field} 最多 {decimal_places} 位小数",
    "decimal_whole_digits": "{field} 的整数部分最多 {whole_digits} 位",
    "finite_number": "{field} 必须是有限的数字",
    "bool_type": "{field} 必须是 true 或 false",
    "bool_parsing": "{field} 必须是 true 或 false",
    "greater_than": "{field} 必须大于 {gt}",
    "greater_than_equal": "{field} 不能小于 {ge}",
    "less_than": "{field} 必须小于 {lt}",
    "less_than_equal": "{field} 不能大于 {le}",
    "multiple_of": "{field} 必须是 {multiple_of} 的倍数",
    "json_invalid": "{field} 不是有效的 JSON",
    "json_type": "{field} 必须是 JSON 文本",
    "extra_forbidden": "不支持字段 {field}，请删除",
    "model_type": "{field} 必须是 JSON 对象",
    "model_attributes_type": "{field} 必须是 JSON 对象",
    "dict_type": "{field} 必须是 JSON 对象",
    "list_type": "{field} 必须是数组",
    "too_short": "{field} 至少 {min_length} 项",
    "too_long": "{field} 最多 {max_length} 项",
    "literal_error": "{field} 只能是 {expected}",
    "enum": "{field} 只能是 {expected}",
    "url_type": "{field} 不是有效的网址",
    "url_parsing": "{field} 不是有效的网址",
    "url_scheme": "{field} 的网址协议只能是 {expected_schemes}",
    "url_syntax_violation": "{field} 不是有效的网址",
    "url_too_long": "{field} 网址过长（最多 {max_length} 个字符）",
    "date_type": "{field} 必须是日期（YYYY-MM-DD）",
    "date_parsing": "{field} 必须是日期（YYYY-MM-DD）",
    "date_from_datetime_parsing": "{field} 必须是日期（YYYY-MM-DD）",
    "datetime_type": "{field} 必须是日期时间（ISO 8601，如 2026-01-31T08:00:00+08:00）",
    "datetime_parsing": "{field} 必须是日期时间（ISO 8601，如 2026-01-31T08:00:00+08:00）",
    "datetime_from_date_parsing": "{field} 必须是日期时间（ISO 8601，如 2026-01-31T08:00:00+08:00）",
    "uuid_type": "{field} 必须是 UUID",
    "uuid_parsing": "{field} 必须是 UUID",
    "none_required": "{field} 必须为 null",
    "value_error": "{field} 的值无效",
    "assertion_error": "{field} 的值无效",
}
FALLBACK = "{field} 的值不符合要求"
# A rule an API gives in words replaces these complaints about the field (they all say "not the right shape").
RULE_TYPES = frozenset({"string_too_short", "string_too_long", "string_pattern_mismatch"})


def field_path(loc: Iterable[Any]) -> str:
    """The field's path as a client wrote it: "quantity", "topup.phone", "items[2].sku_id"; "" for the whole body."""
    parts = list(loc)
    if parts and parts[0] in SOURCES:
        source = parts.pop(0)
        if source == "body" and parts and parts[0] == BODY_PARAMETER:
            parts.pop(0)
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def error_message(error: Mapping[str, Any], *, rules: Mapping[str, str] | None = None) -> str:
    """One error in Chinese: the field's path and what is wrong with it."""
    kind = str(error.get("type", ""))
    path = field_path(error.get("loc", ()))
    context = dict(error.get("ctx") or {})
    rule = (rules or {}).get(path)
    if rule and kind in RULE_TYPES:
        return f"{path} {rule}"
    if not path:
        if kind == "missing":
            return "缺少请求体：请发送 JSON 对象"
        path = WHOLE_BODY
    if kind == "string_too_short" and context.get("min_length") == 1:
        return f"{path} 不能为空"
    if "expected" in context:  # pydantic's "'a', 'b' or 'c'"
        context["expected"] = str(context["expected"]).replace(" or ", "、").replace(", ", "、")
    template = MESSAGES.get(kind, FALLBACK)
    try:
        return template.format(field=path, **context)
    except (KeyError, IndexError, ValueError, TypeError):  # a context without the value the sentence names
        return FALLBACK.format(field=path)


def validation_message(errors: Iterable[Mapping[str, Any]], *, body: bytes | None = None,
                       rules: Mapping[str, str] | None = None) -> str:
    """The message of a 422: "请求参数有误：" and the first errors' sentences ("；" between them, at most
    MESSAGES_SHOWN, then how many more). `body`: the raw request body, for the one mistake ninja reports as every
    field missing — JSON that is not an object."""
    errors = list(errors)
    if body is not None and _is_json_but_not_an_object(body, errors):
        return PREFIX + "请求体必须是 JSON 对象（{…}），不能是数组、字符串、数字或 null"
    sentences = list(dict.fromkeys(error_message(error, rules=rules) for error in errors))
    if not sentences:
        return PREFIX.rstrip("：")
    shown = "；".join(sentences[:MESSAGES_SHOWN])
    more = len(sentences) - MESSAGES_SHOWN
    return PREFIX + shown + (f"；另有 {more} 处错误" if more > 0 else "")


def _is_json_but_not_an_object(body: bytes, errors: list[Mapping[str, Any]]) -> bool:
    if not body or not errors or any(str(error.get("type")) != "missing" for error in errors):
        return False
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return not isinstance(parsed, dict)
