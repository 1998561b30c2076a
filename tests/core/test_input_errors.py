"""pydantic's validation errors in Chinese (kameng.core.input_errors): each error type our schemas meet has its
sentence naming the field, an unknown type falls back to a Chinese sentence with the field's path, and what
pydantic itself reports for real bad input never reaches the message in English."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kameng.core.input_errors import FALLBACK, MESSAGES, error_message, field_path, validation_message

CJK = re.compile(r"[\u4e00-\u9fff]")
NOT_AN_OBJECT = "请求参数有误：请求体必须是 JSON 对象（{…}），不能是数组、字符串、数字或 null"
PYDANTIC_ENGLISH = re.compile(r"Input should|String should|Field required|valid |characters|Extra inputs")


class Item(BaseModel):
    sku_id: int


class Sample(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", min_length=2, max_length=5)
    code: str = Field("ab", pattern=r"^[a-z]+$")
    count: int = Field(1, ge=1, le=10)
    strict_count: int = Field(1, strict=True, gt=0, lt=5)
    amount: Decimal = Field(Decimal("1"), max_digits=5, decimal_places=2)
    ratio: float = 1.0
    flag: bool = False
    kind: Literal["card_key", "direct_topup"] = "card_key"
    when: datetime | None = None
    items: list[Item] = Field(default_factory=list, max_length=2)
    required: str


def _errors(data: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as raised:
        Sample.model_validate(data)
    return [{**error, "loc": ("body", "payload", *error["loc"])} for error in raised.value.errors(include_url=False)]


@pytest.mark.parametrize(("data", "message"), [
    ({"required": None}, "required 必须是字符串"),
    ({"name": "a"}, "name 至少 2 个字符"),
    ({"name": "abcdef"}, "name 最多 5 个字符"),
    ({"name": 5}, "name 必须是字符串"),
    ({"code": "A1"}, "code 格式不正确（须匹配正则 ^[a-z]+$）"),
    ({"count": 0}, "count 不能小于 1"),
    ({"count": 11}, "count 不能大于 10"),
    ({"count": "x"}, "count 必须是整数"),
    ({"count": 1.5}, "count 必须是整数，不能有小数"),
    ({"strict_count": "1"}, "strict_count 必须是整数（JSON 数字，不带引号、不带小数）"),
    ({"strict_count": 0}, "strict_count 必须大于 0"),
    ({"strict_count": 5}, "strict_count 必须小于 5"),
    ({"amount": "1.234"}, "amount 最多 2 位小数"),
    ({"amount": "x"}, "amount 必须是数字"),
    ({"ratio": "x"}, "ratio 必须是数字"),
    ({"flag": "maybe"}, "flag 必须是 true 或 false"),
    ({"kind": "other"}, "kind 只能是 'card_key'、'direct_topup'"),
    ({"when": "yesterday"}, "when 必须是日期时间（ISO 8601，如 2026-01-31T08:00:00+08:00）"),
    ({"items": [{"sku_id": 1}, {"sku_id": "x"}]}, "items[1].sku_id 必须是整数"),
    ({"items": [{}, {}, {}]}, "items 最多 2 项"),
    ({"items": "x"}, "items 必须是数组"),
    ({"extra": 1}, "不支持字段 extra，请删除"),
])
def test_each_error_type_reads_chinese_and_names_the_field(data: dict[str, Any], message: str) -> None:
    errors = _errors({"required": "x"} | data)

    said = validation_message(errors)

    assert said == "请求参数有误：" + message
    assert CJK.search(said)
    assert not PYDANTIC_ENGLISH.search(said)


def test_a_missing_field_is_named() -> None:
    assert validation_message(_errors({})) == "请求参数有误：缺少必填字段 required"


def test_an_unknown_error_type_falls_back_to_chinese_with_the_field_path() -> None:
    error = {"type": "some_future_type", "loc": ("body", "payload", "topup", "phone"), "msg": "Something odd",
             "ctx": {"x": 1}}

    assert error_message(error) == "topup.phone 的值不符合要求"
    assert validation_message([error]) == "请求参数有误：topup.phone 的值不符合要求"


def test_a_sentence_whose_value_is_missing_from_the_context_falls_back() -> None:
    error = {"type": "string_too_long", "loc": ("query", "q"), "msg": "String should have at most 5 characters"}

    assert error_message(error) == FALLBACK.format(field="q")


def test_a_rule_given_for_a_field_replaces_its_length_and_pattern_complaints() -> None:
    rules = {"request_no": "只能包含字母、数字、_ 和 -，长度 1–64"}
    for kind, context in (("string_too_short", {"min_length": 1}), ("string_too_long", {"max_length": 64}),
                          ("string_pattern_mismatch", {"pattern": "^x$"})):
        error = {"type": kind, "loc": ("body", "payload", "request_no"), "ctx": context}
        assert error_message(error, rules=rules) == "request_no 只能包含字母、数字、_ 和 -，长度 1–64"
    missing = {"type": "missing", "loc": ("body", "payload", "request_no")}
    assert error_message(missing, rules=rules) == "缺少必填字段 request_no"


def test_several_errors_show_the_first_three_and_count_the_rest() -> None:
    errors = [{"type": "missing", "loc": ("body", "payload", name)} for name in "abcde"]

    assert validation_message(errors) == ("请求参数有误：缺少必填字段 a；缺少必填字段 b；缺少必填字段 c；另有 2 处错误")


@pytest.mark.parametrize(("body", "is_object_complaint"), [
    (b"[1, 2]", True), (b'"text"', True), (b"null", True), (b"12", True), (b"{}", False), (b"{not json", False),
    (b"[" * 100_000, False),
])
def test_json_that_is_not_an_object_is_named_as_such(body: bytes, is_object_complaint: bool) -> None:
    errors = [{"type": "missing", "loc": ("body", "payload", "request_no")}]

    said = validation_message(errors, body=body)

    assert (said == NOT_AN_OBJECT) is is_object_complaint


@pytest.mark.parametrize(("loc", "path"), [
    (("body", "payload", "quantity"), "quantity"), (("query", "request_no"), "request_no"),
    (("path", "sku_id"), "sku_id"), (("body", "payload"), ""), (("body", "payload", "items", 0, "a"), "items[0].a"),
])
def test_field_paths_leave_out_where_the_value_came_from(loc: tuple[Any, ...], path: str) -> None:
    assert field_path(loc) == path


def test_every_sentence_names_the_field() -> None:
    assert [kind for kind, text in MESSAGES.items() if "{field}" not in text] == []
