"""The direct top-up form: the template staff write, the buyer's input checked against it, carriers by segment."""

from __future__ import annotations

from typing import Any

import pytest

from kameng.catalog.carriers import BROADNET, MOBILE, TELECOM, UNICOM, carrier_of, phone_normalize
from kameng.catalog.models import DeliveryKind
from kameng.catalog.topup_forms import (
    DEFAULT_TOPUP_FORM,
    TopupInputError,
    form_primary_field,
    mask_account,
    topup_form_clean,
    topup_form_errors,
    topup_form_of,
    topup_input_clean,
    topup_target_dumps,
    topup_target_lines,
    topup_target_loads,
)
from kameng.core.errors import ApplicationError
from tests.topup_support import GAME_FORM, PHONE_FORM

# --- the template ---


def test_a_good_template_has_no_errors_and_required_defaults_to_true() -> None:
    template = [{"name": "phone", "label": "手机号", "kind": "phone"}]
    assert topup_form_errors(template) == []
    assert topup_form_clean(template) == [{"name": "phone", "label": "手机号", "kind": "phone", "required": True}]
    assert topup_form_errors(GAME_FORM) == []
    assert topup_form_errors(PHONE_FORM) == []


@pytest.mark.parametrize(("template", "expected"), [
    ({"name": "x"}, "充值表单必须是 JSON 数组（[...]），每个元素是一个字段对象"),
    (["phone"], "第 1 个字段必须是 JSON 对象"),
    ([{"name": "a", "label": "甲", "kind": "number"}],
     "第 1 个字段（a）：未知的类型 kind「number」；可选：phone, text, select"),
    ([{"name": "a", "label": "甲", "kind": "text"}, {"name": "a", "label": "乙", "kind": "text"}],
     "第 2 个字段（a）：name「a」重复：每个字段的 name 必须不同"),
    ([{"name": "r", "label": "大区", "kind": "select"}], "第 1 个字段（r）：select 类型必须有 options"),
    ([{"name": "r", "label": "大区", "kind": "select", "options": []}], "select 类型必须有 options"),
    ([{"name": "r", "label": "大区", "kind": "select", "options": ["a", "a"]}], "options 中有重复的选项"),
    ([{"name": "a", "label": "账号", "kind": "text", "pattern": "([0-9"}], "pattern 不是有效的正则表达式"),
    ([{"name": "a", "label": "账号", "kind": "text", "max_length": 0}], "max_length 必须是 1–100 的整数"),
    ([{"name": "a", "label": "账号", "kind": "text", "max_length": 101}], "max_length 必须是 1–100 的整数"),
    ([{"name": "Phone", "label": "手机号", "kind": "phone"}], "name 必填，只能用小写英文字母"),
    ([{"name": "phone", "kind": "phone"}], "label 必填"),
    ([{"name": "phone", "label": "手机号", "kind": "phone", "carriers": ["移动", "铁通"]}],
     "carriers 必须是运营商列表"),
    ([{"name": "phone", "label": "手机号", "kind": "phone", "options": ["a"]}], "options 只能用于 select 类型的字段"),
    ([{"name": "phone", "label": "手机号", "kind": "phone", "required": "yes"}], "required 只能是 true 或 false"),
    ([{"name": "phone", "label": "手机号", "kind": "phone", "colour": "red"}], "不认识的属性 colour"),
])
def test_a_bad_template_is_refused_with_the_field_and_the_reason(template: Any, expected: str) -> None:
    errors = topup_form_errors(template)
    assert len(errors) == 1
    assert expected in errors[0]
    with pytest.raises(ApplicationError) as refused:
        topup_form_clean(template)
    assert refused.value.code == "topup_form_invalid"
    assert refused.value.extra["errors"] == errors


def test_every_problem_of_a_template_is_listed() -> None:
    errors = topup_form_errors([{"name": "a", "label": "x", "kind": "nope"},
                                {"name": "a", "label": "y", "kind": "select"}])
    assert errors == ["第 1 个字段（a）：未知的类型 kind「nope」；可选：phone, text, select",
                      "第 2 个字段（a）：name「a」重复：每个字段的 name 必须不同",
                      "第 2 个字段（a）：select 类型必须有 options（选项列表，如 [\"微信区\", \"QQ区\"]）"]


def test_a_direct_topup_without_a_template_asks_for_one_account_field() -> None:
    assert topup_form_of(delivery_kind=DeliveryKind.DIRECT_TOPUP, template=[]) == DEFAULT_TOPUP_FORM
    assert DEFAULT_TOPUP_FORM == [{"name": "account", "label": "充值账号", "kind": "text", "required": True,
                                   "max_length": 64}]
    assert topup_form_of(delivery_kind=DeliveryKind.CARD_KEY, template=PHONE_FORM) == []
    assert form_primary_field(topup_form_clean(GAME_FORM)) == "account"
    assert form_primary_field(topup_form_clean([*GAME_FORM, *PHONE_FORM])) == "phone"


# --- the buyer's input ---


def _refusal(form: list[dict[str, Any]], data: dict[str, Any]) -> TopupInputError:
    with pytest.raises(TopupInputError) as refused:
        topup_input_clean(form=topup_form_clean(form), data=data)
    return refused.value


def test_a_game_input_is_cleaned_and_an_empty_optional_field_left_out() -> None:
    cleaned = topup_input_clean(form=topup_form_clean(GAME_FORM),
                                data={"account": "  player_2024 ", "region": "QQ区", "role": ""})
    assert cleaned == {"account": "player_2024", "region": "QQ区"}


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"region": "QQ区"}, "account", "请填写游戏账号"),
    ({"account": "   ", "region": "QQ区"}, "account", "请填写游戏账号"),
    ({"account": "player1"}, "region", "请选择大区"),
    ({"account": "player1", "region": "网易区"}, "region", "大区的选项无效，请从列表中选择"),
    ({"account": "ab", "region": "QQ区"}, "account", "游戏账号为 4–20 位字母、数字或下划线"),
    ({"account": "a" * 21, "region": "QQ区"}, "account", "游戏账号最多 20 个字符"),
    ({"account": "player1", "region": "QQ区", "role": "x" * 101}, "role", "角色名最多 100 个字符"),
    ({"account": "play\u0000er", "region": "QQ区"}, "account", "游戏账号含有不可见字符，请重新输入"),
    ({"account": ["player1"], "region": "QQ区"}, "account", "游戏账号必须是文字"),
    ({"account": "player1", "region": "QQ区", "server": "1"}, "server",
     "该商品没有充值字段「server」，可填写：account、region、role"),
])
def test_a_wrong_game_input_names_its_field(data: dict[str, Any], field: str, message: str) -> None:
    refused = _refusal(GAME_FORM, data)
    assert refused.message == message
    assert refused.extra == {"field": field}
    assert refused.status_code == 400


@pytest.mark.parametrize("typed", ["13800138000", "138 0013 8000", "138-0013-8000", "+8613800138000",
                                   "008613800138000", "8613800138000"])
def test_a_phone_number_is_normalised_to_eleven_digits(typed: str) -> None:
    assert topup_input_clean(form=topup_form_clean(PHONE_FORM), data={"phone": typed}) == {"phone": "13800138000"}


@pytest.mark.parametrize("typed", ["1380013800", "138001380001", "12800138000", "23800138000", "1380013800a",
                                   "+8513800138000"])
def test_a_malformed_phone_number_is_refused(typed: str) -> None:
    refused = _refusal(PHONE_FORM, {"phone": typed})
    assert refused.message == "手机号格式不正确：请输入 11 位中国大陆手机号"
    assert refused.code == "topup_phone_invalid"


def test_a_number_of_another_carrier_is_refused_naming_both() -> None:
    refused = _refusal(PHONE_FORM, {"phone": "13012345678"})
    assert refused.message == "该商品仅支持中国移动号码，您输入的是中国联通号码"
    assert refused.code == "topup_carrier_mismatch"
    refused = _refusal([{**PHONE_FORM[0], "carriers": ["联通", "电信"]}], {"phone": "13812345678"})
    assert refused.message == "该商品仅支持中国联通、中国电信号码，您输入的是中国移动号码"


def test_a_number_whose_segment_is_unknown_is_refused_when_carriers_are_restricted() -> None:
    refused = _refusal(PHONE_FORM, {"phone": "14012345678"})
    assert refused.message == "无法识别该号码所属运营商，该商品仅支持中国移动号码"
    # Without a restriction any well-formed number is taken.
    unrestricted = [{"name": "phone", "label": "手机号", "kind": "phone"}]
    assert topup_input_clean(form=topup_form_clean(unrestricted), data={"phone": "14012345678"}) == {
        "phone": "14012345678"}


# --- carriers by segment ---


@pytest.mark.parametrize(("number", "carrier", "is_virtual"), [
    ("13400000000", MOBILE, False), ("13489999999", MOBILE, False),  # 1340–1348 移动
    ("13490000000", TELECOM, False),  # 1349 卫星, 电信
    ("13912345678", MOBILE, False), ("19812345678", MOBILE, False), ("19512345678", MOBILE, False),
    ("13012345678", UNICOM, False), ("18612345678", UNICOM, False), ("16612345678", UNICOM, False),
    ("13312345678", TELECOM, False), ("19912345678", TELECOM, False), ("19012345678", TELECOM, False),
    ("19212345678", BROADNET, False),
    ("17001234567", TELECOM, True), ("17021234567", TELECOM, True),
    ("17031234567", MOBILE, True), ("17051234567", MOBILE, True), ("17061234567", MOBILE, True),
    ("17041234567", UNICOM, True), ("17091234567", UNICOM, True),
    ("17112345678", UNICOM, True), ("16212345678", TELECOM, True), ("16512345678", MOBILE, True),
    ("16712345678", UNICOM, True),
])
def test_each_segment_answers_its_carrier(number: str, carrier: str, is_virtual: bool) -> None:
    info = carrier_of(number)
    assert info is not None
    assert (info.carrier, info.is_virtual) == (carrier, is_virtual)


@pytest.mark.parametrize("number", ["14012345678", "16012345678", "17412345678", "1381234567", "abc"])
def test_an_unallocated_or_malformed_number_has_no_carrier(number: str) -> None:
    assert carrier_of(number) is None


def test_a_virtual_mobile_number_passes_a_mobile_only_form() -> None:
    assert topup_input_clean(form=topup_form_clean(PHONE_FORM), data={"phone": "17051234567"}) == {
        "phone": "17051234567"}
    assert _refusal(PHONE_FORM, {"phone": "17041234567"}).message == (
        "该商品仅支持中国移动号码，您输入的是中国联通号码")
    assert phone_normalize(" +86 170-5123-4567 ") == "17051234567"


# --- stored and shown ---


def test_a_target_round_trips_and_is_shown_masked() -> None:
    target = {"account": "player_2024", "region": "QQ区"}
    assert topup_target_loads(topup_target_dumps(target)) == target
    assert topup_target_loads(None) == {}
    lines = topup_target_lines(form=topup_form_clean(GAME_FORM), target=target)
    assert [(line.label, line.value) for line in lines] == [("游戏账号", "pl*******24"), ("大区", "QQ区")]
    phone = topup_target_lines(form=topup_form_clean(PHONE_FORM), target={"phone": "13812341234"})
    assert [(line.label, line.value) for line in phone] == [("手机号", "138****1234")]


def test_a_value_the_form_no_longer_has_is_shown_masked_under_its_name() -> None:
    lines = topup_target_lines(form=topup_form_clean(PHONE_FORM), target={"old": "secret-account"})
    assert [(line.label, line.value) for line in lines] == [("old", "se**********nt")]


@pytest.mark.parametrize(("value", "masked"), [("a", "a*"), ("ab", "a*"), ("abc", "a*c"), ("abcdef", "a****f"),
                                               ("abcdefg", "ab***fg")])
def test_an_account_is_partly_masked(value: str, masked: str) -> None:
    assert mask_account(value) == masked
