"""The form a direct top-up (直充) product asks its buyer to fill in: its template (`Product.topup_form`), the check
of the template when staff edit it, the check of a buyer's input against it, and the masked display of that input.

A template is a JSON list of fields, each an object:

    {"name": "phone",            # the key in the buyer's input: [a-z][a-z0-9_]*, unique in the form
     "label": "手机号",           # what the buyer reads; the error messages name the field by it
     "kind": "phone",            # phone | text | select
     "required": true,           # optional, default true
     "options": ["微信区", "QQ区"],  # select only, required there: the values the buyer picks from
     "max_length": 32,           # text only, optional (default and ceiling TEXT_MAX_LENGTH)
     "pattern": "[0-9]{5,12}",   # text only, optional: a regular expression the whole value must match
     "pattern_message": "…",     # optional: said when the pattern does not match (default "<label>格式不正确")
     "carriers": ["移动"]}        # phone only, optional: the carriers (移动/联通/电信/广电) the product tops up

A phone field takes an 11-digit mainland mobile number (spaces, dashes and +86 dropped); with `carriers` its
number segment must belong to one of them (kameng.catalog.carriers). A direct top-up product saved without a
template asks for one required text field, "account" / 充值账号 (`DEFAULT_TOPUP_FORM`).

The buyer's input is cleaned into a dict of strings (field name → value, empty optional fields left out), which the
order keeps encrypted (`Order.topup_target`). Every refusal is an ApplicationError whose message names the field
("请填写游戏账号") and whose `extra["field"]` is its name, so a page can show it next to the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kameng.catalog.carriers import CARRIER_NAMES, CARRIERS, MOBILE_NUMBER, carrier_of, phone_normalize
from kameng.catalog.models import DeliveryKind
from kameng.core.errors import ApplicationError
from kameng.core.masking import mask_phone

PHONE = "phone"
TEXT = "text"
SELECT = "select"
KINDS: tuple[str, ...] = (PHONE, TEXT, SELECT)
TEXT_MAX_LENGTH = 100  # a game account, a role name: the ceiling of any text field
FIELDS_MAX = 10
OPTIONS_MAX = 200
LABEL_MAX = 30
PATTERN_MAX = 200
NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
KEYS: frozenset[str] = frozenset({"name", "label", "kind", "required", "options", "max_length", "pattern",
                                  "pattern_message", "carriers"})

DEFAULT_TOPUP_FORM: list[dict[str, Any]] = [
    {"name": "account", "label": "充值账号", "kind": TEXT, "required": True, "max_length": 64},
]


class TopupInputError(ApplicationError):
    """The buyer's input does not fit the product's form: `extra["field"]` names the field."""


@dataclass(frozen=True)
class TargetLine:
    """One line of a top-up target as pages show it: the field's label and its value masked."""

    name: str
    label: str
    value: str


# --- The template ------------------------------------------------------------------------------------------------

def topup_form_errors(template: Any) -> list[str]:
    """What is wrong with a template, one message per problem ([] when it is good)."""
    if not isinstance(template, list):
        return ["充值表单必须是 JSON 数组（[...]），每个元素是一个字段对象"]
    if len(template) > FIELDS_MAX:
        return [f"充值表单最多 {FIELDS_MAX} 个字段"]
    errors: list[str] = []
    seen: set[str] = set()
    for position, field in enumerate(template, start=1):
        if not isinstance(field, dict):
            errors.append(f"第 {position} 个字段必须是 JSON 对象（{{\"name\": ..., \"label\": ..., \"kind\": ...}}）")
            continue
        where = f"第 {position} 个字段" + (f"（{field['name']}）" if isinstance(field.get("name"), str) else "")
        errors += [f"{where}：{problem}" for problem in _field_errors(field, seen)]
    return errors


def _field_errors(field: dict[str, Any], seen: set[str]) -> list[str]:
    problems: list[str] = []
    unknown = sorted(set(field) - KEYS)
    if unknown:
        problems.append(f"不认识的属性 {', '.join(unknown)}；可用属性：{', '.join(sorted(KEYS))}")
    name = field.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        problems.append("name 必填，只能用小写英文字母、数字和下划线，以字母开头，最长 32 个字符（如 account、phone）")
    elif name in seen:
        problems.append(f"name「{name}」重复：每个字段的 name 必须不同")
    else:
        seen.add(name)
    label = field.get("label")
    if not isinstance(label, str) or not label.strip() or len(label) > LABEL_MAX:
        problems.append(f"label 必填（买家看到的名称，如「游戏账号」），最多 {LABEL_MAX} 个字符")
    kind = field.get("kind")
    if kind not in KINDS:
        problems.append(f"未知的类型 kind「{kind}」；可选：{', '.join(KINDS)}")
        return problems
    if "required" in field and not isinstance(field["required"], bool):
        problems.append("required 只能是 true 或 false")
    problems += _kind_errors(kind, field)
    return problems


def _kind_errors(kind: str, field: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for key, kinds in (("options", {SELECT}), ("max_length", {TEXT}), ("pattern", {TEXT}),
                       ("pattern_message", {TEXT}), ("carriers", {PHONE})):
        if key in field and kind not in kinds:
            problems.append(f"{key} 只能用于 {'/'.join(sorted(kinds))} 类型的字段")
    if kind == SELECT:
        options = field.get("options")
        if not isinstance(options, list) or not options:
            problems.append("select 类型必须有 options（选项列表，如 [\"微信区\", \"QQ区\"]）")
        elif len(options) > OPTIONS_MAX or not all(isinstance(option, str) and option.strip()
                                                     and len(option) <= TEXT_MAX_LENGTH for option in options):
            problems.append(f"options 最多 {OPTIONS_MAX} 项，每项是不为空的文字（最多 {TEXT_MAX_LENGTH} 个字符）")
        elif len(set(options)) != len(options):
            problems.append("options 中有重复的选项")
    if kind == TEXT and "max_length" in field:
        max_length = field["max_length"]
        if not isinstance(max_length, int) or isinstance(max_length, bool) or not 1 <= max_length <= TEXT_MAX_LENGTH:
            problems.append(f"max_length 必须是 1–{TEXT_MAX_LENGTH} 的整数")
    if kind == TEXT and "pattern" in field:
        problems += _pattern_errors(field["pattern"])
    if kind == TEXT and "pattern_message" in field and not isinstance(field["pattern_message"], str):
        problems.append("pattern_message 必须是文字")
    if kind == PHONE and "carriers" in field:
        carriers = field["carriers"]
        if (not isinstance(carriers, list) or not carriers
                or not all(isinstance(carrier, str) and carrier in CARRIERS for carrier in carriers)):
            problems.append(f"carriers 必须是运营商列表，可选：{'、'.join(CARRIERS)}（如 [\"移动\"]）")
    return problems


def _pattern_errors(pattern: Any) -> list[str]:
    if not isinstance(pattern, str) or not pattern or len(pattern) > PATTERN_MAX:
        return [f"pattern 必须是不为空的正则表达式，最多 {PATTERN_MAX} 个字符"]
    try:
        re.compile(pattern)
    except re.error as error:
        return [f"pattern 不是有效的正则表达式：{error}"]
    return []


def topup_form_clean(template: Any) -> list[dict[str, Any]]:
    """The template with its defaults filled in (`required` true), or ApplicationError `topup_form_invalid`
    listing every problem in `extra["errors"]`."""
    errors = topup_form_errors(template)
    if errors:
        raise ApplicationError("充值表单有误：" + "；".join(errors), code="topup_form_invalid",
                               extra={"errors": errors})
    return [{**field, "required": field.get("required", True)} for field in template]


def topup_form_of(*, delivery_kind: str, template: Any) -> list[dict[str, Any]]:
    """The form a product asks for: its template, the default for a direct top-up saved without one, none for
    other delivery kinds. A template broken in the database (edited around the admin) is refused, not guessed."""
    if delivery_kind != DeliveryKind.DIRECT_TOPUP:
        return []
    if not template:
        return [dict(field) for field in DEFAULT_TOPUP_FORM]
    return topup_form_clean(template)


def form_primary_field(form: Sequence[Mapping[str, Any]]) -> str:
    """The field a single "recharge account" fills: the first phone field, else the first field."""
    for field in form:
        if field["kind"] == PHONE:
            return str(field["name"])
    return str(form[0]["name"]) if form else ""


# --- The buyer's input -------------------------------------------------------------------------------------------

def topup_input_clean(*, form: Sequence[Mapping[str, Any]], data: Mapping[str, Any]) -> dict[str, str]:
    """The buyer's input checked against the (clean) form: field name → value, optional fields left empty left
    out. Raises TopupInputError for the first field in the form's order that is wrong, naming it; a name the form
    does not have is refused too (an API client's typo must not be silently dropped)."""
    names = {str(field["name"]) for field in form}
    unknown = sorted(str(name) for name in data if name not in names)
    if unknown:
        raise TopupInputError("该商品没有充值字段「%(name)s」，可填写：%(names)s", code="topup_field_unknown",
                              extra={"field": unknown[0]},
                              params={"name": unknown[0], "names": "、".join(str(field["name"]) for field in form)})
    cleaned: dict[str, str] = {}
    for field in form:
        value = _field_value(field, data.get(field["name"]))
        if value:
            cleaned[str(field["name"])] = value
    return cleaned


def _refuse(field: Mapping[str, Any], template: str, code: str, **params: Any) -> TopupInputError:
    return TopupInputError(template, code=code, extra={"field": field["name"]},
                           params={"label": field["label"], **params})


def _field_value(field: Mapping[str, Any], raw: Any) -> str:
    if raw is None:
        raw = ""
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        raise _refuse(field, "%(label)s必须是文字", "topup_input_invalid")
    value = str(raw).strip()
    if not value:
        if field.get("required", True):
            verb = "请选择%(label)s" if field["kind"] == SELECT else "请填写%(label)s"
            raise _refuse(field, verb, "topup_input_required")
        return ""
    if not value.isprintable():
        raise _refuse(field, "%(label)s含有不可见字符，请重新输入", "topup_input_invalid")
    if field["kind"] == PHONE:
        return _phone_value(field, value)
    if field["kind"] == SELECT:
        if value not in field["options"]:
            raise _refuse(field, "%(label)s的选项无效，请从列表中选择", "topup_input_invalid")
        return value
    max_length = int(field.get("max_length", TEXT_MAX_LENGTH))
    if len(value) > max_length:
        raise _refuse(field, "%(label)s最多 %(max)s 个字符", "topup_input_too_long", max=max_length)
    if field.get("pattern") and not re.fullmatch(str(field["pattern"]), value):
        raise _refuse(field, str(field.get("pattern_message") or "%(label)s格式不正确，请检查后重新输入"),
                      "topup_input_invalid")
    return value


def _phone_value(field: Mapping[str, Any], value: str) -> str:
    number = phone_normalize(value)
    if not MOBILE_NUMBER.fullmatch(number):
        raise _refuse(field, "%(label)s格式不正确：请输入 11 位中国大陆手机号", "topup_phone_invalid")
    allowed = field.get("carriers") or []
    if allowed:
        info = carrier_of(number)
        wanted = "、".join(CARRIER_NAMES[carrier] for carrier in allowed)
        if info is None:
            raise _refuse(field, "无法识别该号码所属运营商，该商品仅支持%(wanted)s号码", "topup_carrier_unknown",
                          wanted=wanted)
        if info.carrier not in allowed:
            raise _refuse(field, "该商品仅支持%(wanted)s号码，您输入的是%(actual)s号码", "topup_carrier_mismatch",
                          wanted=wanted, actual=info.name)
    return number


# --- Stored and shown --------------------------------------------------------------------------------------------

def topup_target_dumps(target: Mapping[str, str]) -> str:
    """The text an order stores (encrypted) for a cleaned input."""
    return json.dumps(dict(target), ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def topup_target_loads(text: object) -> dict[str, str]:
    """The input an order stored (`Order.topup_target`, decrypted when loaded); {} for none."""
    if not isinstance(text, str) or not text:
        return {}
    value = json.loads(text)
    return {str(name): str(item) for name, item in value.items()} if isinstance(value, dict) else {}


def mask_account(value: str) -> str:
    """A game account partly hidden: enough for its owner to recognise it (player123456 → pl********56)."""
    if len(value) <= 2:
        return value[0] + "*" if value else ""
    if len(value) <= 6:
        return value[0] + "*" * (len(value) - 2) + value[-1]
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


def topup_target_lines(*, form: Sequence[Mapping[str, Any]], target: Mapping[str, str]) -> list[TargetLine]:
    """The target as pages, lists and the back office show it, masked: phone numbers 138****1234, accounts partly,
    choices (region, server) as they are. Values the form no longer has are shown (masked) under their name."""
    by_name = {str(field["name"]): field for field in form}
    lines = []
    for name in [str(field["name"]) for field in form if field["name"] in target] + [
            name for name in target if name not in by_name]:
        field = by_name.get(name, {"kind": TEXT, "label": name})
        value = target[name]
        if field["kind"] == PHONE:
            shown = mask_phone(value)
        elif field["kind"] == SELECT:
            shown = value
        else:
            shown = mask_account(value)
        lines.append(TargetLine(name=name, label=str(field["label"]), value=shown))
    return lines


def topup_target_summary(lines: Sequence[TargetLine]) -> str:
    """One line for lists: the masked values, the first (the account or phone) first."""
    return " · ".join(line.value for line in lines)
