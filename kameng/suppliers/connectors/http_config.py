"""The generic HTTP connector's configuration: the presets staff pick with one key, how a supplier's
`connector_config` is laid over them, and the two signers (PROTOCOLS.md §4).

Signers:
- `md5_sorted` — every parameter but the signature field and empty values, sorted by key, joined raw as
  `k=v&k=v`, then `&key=<secret>` appended; MD5, lowercase hex, sent in the body under `sign_field` ("sign").
  A nested value (an object or a list, e.g. JSON `buy_params`) is signed as its compact JSON text.
- `yile` (亿乐 SUP) — headers `AppId`, `AppTimestamp` (Unix seconds) and `AppToken = sha1(AppId + AppSecret + path
  + timestamp)`, where `path` is the request URL's path (or the operation's configured path with
  `"yile_token_path": "operation"`); the body is JSON and carries no signature.
- `none` — nothing is signed (an upstream on a private network that checks the caller's address).

The full schema is in kameng/suppliers/connectors/http.py.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from kameng.core.errors import ApplicationError

# 亿乐 SUP: token in the headers, JSON body, replies {code: 0, message, data}, no callback (the worker polls).
YILE_PRESET: dict[str, Any] = {
    "encoding": "json",
    "signer": "yile",
    "has_callbacks": False,
    "paths": {"submit": "Goods/Buy", "query": "Order/Show", "goods": "Goods/List", "goods_detail": "Goods/Show"},
    "request_fields": {"upstream_product_id": "goods_id", "quantity": "buy_number",
                       "customer_order_no": "out_trade_no", "charge_account": "account"},
    # The buyer's inputs (account, region, server, role…) go into the `buy_params` object Goods/Show describes.
    "extra_field": "buy_params",
    "account_in_extra": True,
    "query_fields": {"customer_order_no": "ids"},
    "reply": {"code_path": "code", "ok_codes": ["0"], "message_path": "message"},
    "submit_reply": {"order_path": "data", "supplier_order_id": "id", "status": "status",
                     "operator_serial": "serial", "cards": "cards"},
    # Order/Show answers a list of the orders asked for; an empty list means it has none with this number.
    "query_reply": {"order_path": "data.0", "supplier_order_id": "id", "status": "status",
                    "operator_serial": "serial", "cards": "cards"},
    "status_map": {
        "0": "processing", "2": "processing",  # 提单中
        "1": "processing",  # 已付款
        "3": "processing",  # 处理中
        "4": "processing",  # 补单中
        "5": "processing",  # 退单中: not over yet, the refund may still be refused
        "6": "succeeded",  # 已完成
        "7": "failed",  # 已退单
        "8": "failed",  # 已退款
        "10": "failed",  # 下单失败
        "9": "unknown",  # 处理异常: staff look at it with the upstream
    },
    "goods": {"list_path": "data", "product_id": "id", "name": "name", "price": "price", "stock": "stock",
              "face_value": "face_value", "form_path": "data.buy_params", "detail_field": "goods_id"},
}

# The common 卡盟 shape: form POST, md5 over the sorted parameters + `&key=`, replies {code: 0, msg, data}, signed
# form callbacks answered "success".
MD5_FORM_PRESET: dict[str, Any] = {
    "encoding": "form",
    "signer": "md5_sorted",
    "sign_field": "sign",
    "timestamp_field": "timestamp",
    "has_callbacks": True,
    "paths": {"submit": "order/submit", "query": "order/query", "goods": "goods/list"},
    "request_fields": {"customer_order_no": "out_trade_no", "upstream_product_id": "product_id",
                       "quantity": "num", "charge_account": "account", "face_value": "face_value",
                       "max_price": "max_price", "notify_url": "notify_url"},
    "extra_field": "",
    "query_fields": {"customer_order_no": "out_trade_no"},
    "reply": {"code_path": "code", "ok_codes": ["0"], "message_path": "msg"},
    "submit_reply": {"order_path": "data", "supplier_order_id": "order_id", "status": "status",
                     "operator_serial": "serial", "cards": "cards"},
    "query_reply": {"order_path": "data", "supplier_order_id": "order_id", "status": "status",
                    "operator_serial": "serial", "cards": "cards"},
    "status_map": {"success": "succeeded", "processing": "processing", "waiting": "processing",
                   "failed": "failed"},
    "goods": {"list_path": "data", "product_id": "id", "name": "name", "price": "price", "stock": "stock",
              "face_value": "face_value"},
    "callback": {"order_no_field": "out_trade_no", "status_field": "status", "supplier_order_id_field": "order_id",
                 "operator_serial_field": "serial", "reply": "success"},
}

PRESETS: dict[str, dict[str, Any]] = {"yile": YILE_PRESET, "md5_form": MD5_FORM_PRESET}

BASE_DEFAULTS: dict[str, Any] = {
    "method": "POST",
    "encoding": "json",
    "signer": "none",
    "sign_field": "sign",
    "timestamp_field": "",
    "timeout_seconds": 10,
    "has_callbacks": False,
    "paths": {},
    "static_params": {},
    "request_fields": {"customer_order_no": "customer_order_no", "upstream_product_id": "product_id",
                       "quantity": "quantity", "charge_account": "charge_account"},
    "extra_field": "",
    "account_in_extra": False,
    "query_fields": {"customer_order_no": "customer_order_no"},
    "reply": {"code_path": "code", "ok_codes": ["0"], "message_path": "message", "not_found_codes": [],
              "refused_codes": [], "failed_codes": []},
    "submit_reply": {"order_path": "data"},
    "query_reply": {"order_path": "data"},
    "status_map": {},
    "goods": {"list_path": "data", "product_id": "id", "name": "name", "price": "price"},
    "callback": {},
}

SIGNERS = ("md5_sorted", "yile", "none")
OUTCOME_NAMES = ("succeeded", "processing", "failed", "unknown")


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping) and key not in ("status_map",
                                                                                               "static_params"):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def http_config_resolve(config: Mapping[str, Any]) -> dict[str, Any]:
    """The defaults, then the preset named by `preset`, then the supplier's own keys: the result every call reads.
    Raises ApplicationError (in Chinese, for staff) when what is left cannot work."""
    preset_name = str(config.get("preset") or "")
    if preset_name and preset_name not in PRESETS:
        raise ApplicationError("未知的接口预设「%(preset)s」，可选：yile、md5_form", code="connector_config_invalid",
                               params={"preset": preset_name})
    resolved = _merged(_merged(BASE_DEFAULTS, PRESETS.get(preset_name, {})), config)
    if not str(resolved.get("base_url") or "").startswith(("http://", "https://")):
        raise ApplicationError("通用 HTTP 接口缺少 base_url（以 http:// 或 https:// 开头）",
                               code="connector_config_invalid")
    if resolved["signer"] not in SIGNERS:
        raise ApplicationError("未知的签名方式「%(signer)s」，可选：md5_sorted、yile、none",
                               code="connector_config_invalid", params={"signer": resolved["signer"]})
    if resolved["signer"] == "md5_sorted" and not str(resolved.get("key") or ""):
        raise ApplicationError("md5_sorted 签名需要密钥 key", code="connector_config_invalid")
    if resolved["signer"] == "yile" and not (resolved.get("app_id") and resolved.get("app_secret")):
        raise ApplicationError("亿乐签名需要 app_id 与 app_secret", code="connector_config_invalid")
    if resolved["encoding"] not in ("json", "form"):
        raise ApplicationError("encoding 只能是 json 或 form", code="connector_config_invalid")
    for upstream_value, outcome in resolved["status_map"].items():
        if outcome not in OUTCOME_NAMES:
            raise ApplicationError("状态映射「%(value)s」的结果必须是 succeeded、processing、failed 或 unknown",
                                   code="connector_config_invalid", params={"value": upstream_value})
    return resolved


def canonical_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return str(value)


def md5_sorted_canonical(params: Mapping[str, Any], *, sign_field: str = "sign") -> str:
    pairs = sorted((key, canonical_value(value)) for key, value in params.items()
                   if key != sign_field and value is not None and canonical_value(value) != "")
    return "&".join(f"{key}={value}" for key, value in pairs)


def md5_sorted_sign(params: Mapping[str, Any], *, key: str, sign_field: str = "sign") -> str:
    text = md5_sorted_canonical(params, sign_field=sign_field) + f"&key={key}"
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - the upstream protocol's MD5


def md5_sorted_verify(params: Mapping[str, Any], *, key: str, sign_field: str = "sign") -> bool:
    received = str(params.get(sign_field) or "").lower()
    expected = md5_sorted_sign(params, key=key, sign_field=sign_field)
    return bool(received) and hmac.compare_digest(received.encode("utf-8", "replace"), expected.encode())


def yile_token(*, app_id: str, app_secret: str, path: str, timestamp: str) -> str:
    return hashlib.sha1((app_id + app_secret + path + timestamp).encode()).hexdigest()  # noqa: S324 - the protocol's


def decimal_or_none(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value).strip())
    except ArithmeticError:
        return None
    return amount if amount.is_finite() else None
