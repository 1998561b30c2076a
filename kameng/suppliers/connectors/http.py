"""The generic HTTP upstream connector (通用 HTTP 接口): any supplier API that takes an order by an HTTP call, with
pluggable signing and field mapping, set by the supplier's `connector_config` (a JSON object, encrypted at rest).

Staff rarely write the mapping by hand: `"preset": "yile"` (亿乐 SUP: header token, JSON, polled) or
`"preset": "md5_form"` (form POST, MD5 over the sorted parameters + `&key=`, signed callbacks) fills it in, and any
key given beside the preset overrides the preset's value (objects are merged key by key).

Config schema (every key optional unless marked):
    preset            "yile" | "md5_form"
    base_url          (required) the upstream's API root, e.g. "https://sup.example.com/api/"
    paths             {"submit", "query", "goods", "goods_detail"}: each joined to base_url
    method            "POST" (default) or "GET" (parameters in the query string)
    encoding          "json" | "form": how the body is written
    timeout_seconds   per call (default 10); a timeout is UNKNOWN, never FAILED
    signer            "md5_sorted" | "yile" | "none" (kameng/suppliers/connectors/http_config.py)
    key               md5_sorted: the secret appended as `&key=<key>`
    sign_field        md5_sorted: the parameter carrying the signature (default "sign")
    timestamp_field   md5_sorted: add the Unix time under this name ("" = none)
    app_id, app_secret  yile: the AppId and AppSecret
    yile_token_path   yile: "url" (default, the request URL's path) or "operation" (the configured path)
    static_params     parameters sent (and signed) with every call: {"merchant_id": "10001"}
    request_fields    our TopupRequest field → the upstream's parameter name, for customer_order_no,
                      upstream_product_id, quantity, charge_account, face_value, max_price, notify_url
                      (merged over the preset's: map a field to "" to leave it out)
    extra_field       where the buyer's other inputs (region, server, role…) go: an object under this name
                      ("buy_params"), or "" for top-level parameters named as the product form names them
    account_in_extra  also put charge_account into the extra object under "account"
    query_fields      {"customer_order_no": "<name>"}: how the query names our order number
    reply             {"code_path", "ok_codes", "message_path", "not_found_codes", "refused_codes",
                      "failed_codes"}: the envelope; a code not in ok_codes is UNKNOWN on submit (query first)
                      unless listed as refused (FAILED, safe to try the next supplier) or failed (FAILED), and
                      UNKNOWN on query unless listed as not found (NOT_FOUND)
    submit_reply,     {"order_path", "supplier_order_id", "status", "operator_serial", "cards"}: dotted paths
    query_reply       (list indexes allowed: "data.0") to the order object and, inside it, to each value
    status_map        the upstream's status value (as text) → succeeded | processing | failed | unknown; a value
                      not listed is UNKNOWN; a submit reply without a status is PROCESSING (accepted)
    has_callbacks     whether the upstream calls back (otherwise the worker polls with the query)
    callback          {"order_no_field", "status_field", "supplier_order_id_field", "operator_serial_field",
                      "reply"}: the upstream's callback fields; verified with md5_sorted and `key`
    goods             {"list_path", "product_id", "name", "price", "stock", "face_value", "page_field",
                      "page_size_field", "page_size", "max_pages", "form_path", "detail_field"}: the goods list
                      and, for 亿乐, Goods/Show's `buy_params` form (goods_form)
    push_secret       the secret of signed price/stock pushes (kameng/suppliers/sync.py)
    webhook_url, webhook_secret, notify_email   where restock requests go (kameng/suppliers/restock.py)

The connector never raises for what the upstream answers (base.py): a timeout, a broken connection, an HTTP error
or a reply it cannot read is UNKNOWN. The buyer's account and the cards are never logged.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx

from kameng.core.masking import mask_text
from kameng.suppliers.connectors.base import (
    CallbackRejectedError,
    CallbackResult,
    Outcome,
    TopupAnswer,
    TopupKind,
    TopupRequest,
    UpstreamGoods,
)
from kameng.suppliers.connectors.http_config import (
    decimal_or_none,
    http_config_resolve,
    md5_sorted_sign,
    md5_sorted_verify,
    yile_token,
)

logger = logging.getLogger(__name__)

# The httpx transport every call goes through; None means the network. Tests put an httpx.MockTransport here.
http_transport: httpx.BaseTransport | None = None

_MISSING = object()


class UpstreamUnavailableError(Exception):
    """The goods list could not be read (timeout, HTTP error, an answer that is not the expected JSON)."""


class UpstreamReplyError(Exception):
    """The reply is not JSON of the expected shape."""


def unix_time() -> str:
    return str(int(time.time()))


def value_at(data: Any, path: str, default: Any = None) -> Any:
    """`value_at({"data": [{"id": 7}]}, "data.0.id")` → 7; `default` when any step is missing."""
    if not path:
        return data
    current = data
    for step in path.split("."):
        if isinstance(current, Mapping) and step in current:
            current = current[step]
        elif isinstance(current, list) and step.isdigit() and int(step) < len(current):
            current = current[int(step)]
        else:
            return default
    return current


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


class HttpConnector:
    kind = "http"

    def __init__(self, config: Mapping[str, Any], *, transport: httpx.BaseTransport | None = None) -> None:
        self.config = http_config_resolve(config)
        self.has_callbacks = bool(self.config["has_callbacks"])
        self.transport = transport

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> HttpConnector:
        return cls(config)

    # --- the calls -----------------------------------------------------------------------------------------

    def _url(self, operation: str) -> str:
        path = str(self.config["paths"].get(operation) or "")
        if not path:
            raise UpstreamReplyError(f"no path configured for {operation}")
        return urljoin(str(self.config["base_url"]).rstrip("/") + "/", path.lstrip("/"))

    def _signed(self, operation: str, url: str, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        config = self.config
        body = {**config["static_params"], **params}
        headers: dict[str, str] = {}
        if config["signer"] == "md5_sorted":
            if config["timestamp_field"]:
                body[config["timestamp_field"]] = unix_time()
            body[config["sign_field"]] = md5_sorted_sign(body, key=str(config["key"]),
                                                         sign_field=config["sign_field"])
        elif config["signer"] == "yile":
            timestamp = unix_time()
            path = (str(config["paths"][operation]) if config.get("yile_token_path") == "operation"
                    else urlsplit(url).path)
            headers = {"AppId": str(config["app_id"]), "AppTimestamp": timestamp,
                       "AppToken": yile_token(app_id=str(config["app_id"]), app_secret=str(config["app_secret"]),
                                              path=path, timestamp=timestamp)}
        return body, headers

    def _call(self, operation: str, params: dict[str, Any]) -> Any:
        """The parsed JSON reply (numbers with decimals as Decimal). Raises httpx.HTTPError on a network failure
        or an HTTP error status, UpstreamReplyError on an unreadable body."""
        url = self._url(operation)
        body, headers = self._signed(operation, url, params)
        config = self.config
        request_options: dict[str, Any] = {"headers": headers}
        if config["method"].upper() == "GET":
            request_options["params"] = {key: _form_value(value) for key, value in body.items()}
        elif config["encoding"] == "form":
            request_options["data"] = {key: _form_value(value) for key, value in body.items()}
        else:
            request_options["content"] = json.dumps(body, ensure_ascii=False, default=str).encode()
            headers["Content-Type"] = "application/json; charset=utf-8"
        with httpx.Client(transport=self.transport or http_transport,
                          timeout=float(config["timeout_seconds"])) as client:
            response = client.request(config["method"].upper(), url, **request_options)
            response.raise_for_status()
        try:
            return json.loads(response.content, parse_float=Decimal)
        except ValueError as error:
            raise UpstreamReplyError("reply is not JSON") from error

    # --- top-up ----------------------------------------------------------------------------------------------

    def _request_params(self, request: TopupRequest) -> dict[str, Any]:
        config = self.config
        ours: dict[str, Any] = {
            "customer_order_no": request.customer_order_no,
            "upstream_product_id": request.upstream_product_id,
            "quantity": request.quantity,
            "charge_account": request.charge_account,
            "face_value": request.face_value,
            "max_price": request.max_price,
            "notify_url": request.notify_url,
        }
        params: dict[str, Any] = {}
        for field_name, upstream_name in config["request_fields"].items():
            value = ours.get(field_name)
            if upstream_name and value not in (None, ""):
                params[str(upstream_name)] = _text(value) if isinstance(value, Decimal) else value
        extra = {str(key): str(value) for key, value in request.extra.items()}
        if config["account_in_extra"] and request.charge_account:
            extra.setdefault("account", request.charge_account)
        if config["extra_field"]:
            if extra or request.kind == TopupKind.DIRECT:
                params[str(config["extra_field"])] = extra
        else:
            for key, value in extra.items():
                params.setdefault(key, value)
        return params

    def _refusal(self, *, code: str, message: str, for_query: bool) -> TopupAnswer:
        """The answer to an envelope whose code is not a success code."""
        envelope = self.config["reply"]

        def listed(name: str) -> bool:
            return code in [str(item) for item in envelope.get(name) or []]

        if for_query and listed("not_found_codes"):
            return TopupAnswer(outcome=Outcome.NOT_FOUND, code=code, message=message)
        if not for_query and listed("refused_codes"):
            return TopupAnswer(outcome=Outcome.FAILED, code=code, message=message, may_try_next=True)
        if not for_query and listed("failed_codes"):  # a query's own error says nothing about the order
            return TopupAnswer(outcome=Outcome.FAILED, code=code, message=message)
        return TopupAnswer(outcome=Outcome.UNKNOWN, code=code, message=message)

    def _answer(self, reply: Any, *, mapping: Mapping[str, Any], for_query: bool) -> TopupAnswer:
        envelope = self.config["reply"]
        code = _text(value_at(reply, str(envelope.get("code_path") or ""), ""))
        # The upstream's words are stored and shown to staff: masked of phone numbers and accounts.
        message = mask_text(_text(value_at(reply, str(envelope.get("message_path") or ""), "")))[:200]
        if envelope.get("code_path") and code not in [str(item) for item in envelope.get("ok_codes") or []]:
            return self._refusal(code=code, message=message, for_query=for_query)
        order = value_at(reply, str(mapping.get("order_path") or ""), _MISSING)
        if order is _MISSING or order is None or order == []:
            if for_query:
                return TopupAnswer(outcome=Outcome.NOT_FOUND, code=code, message=message)
            order = {}
        if not isinstance(order, Mapping):
            return TopupAnswer(outcome=Outcome.UNKNOWN, code=code, message="上游回复无法识别")
        status_path = str(mapping.get("status") or "")
        status_value = value_at(order, status_path, None) if status_path else None
        if status_value is None or status_value == "":
            # Accepted without saying more (a submit); a query must say where the order is.
            outcome = Outcome.UNKNOWN if for_query else Outcome.PROCESSING
        else:
            outcome = Outcome(self.config["status_map"].get(_text(status_value), Outcome.UNKNOWN))
        cards_value = value_at(order, str(mapping.get("cards") or ""), None) if mapping.get("cards") else None
        cards: tuple[str, ...] = ()
        if isinstance(cards_value, list):
            cards = tuple(_card_text(card) for card in cards_value)
        elif cards_value:
            cards = (str(cards_value),)
        return TopupAnswer(
            outcome=outcome,
            supplier_order_id=_text(value_at(order, str(mapping.get("supplier_order_id") or ""), ""))
            if mapping.get("supplier_order_id") else "",
            operator_serial=_text(value_at(order, str(mapping.get("operator_serial") or ""), ""))
            if mapping.get("operator_serial") else "",
            cards=cards, code=code, message=message,
        )

    def topup_submit(self, request: TopupRequest) -> TopupAnswer:
        try:
            reply = self._call("submit", self._request_params(request))
        except (httpx.HTTPError, UpstreamReplyError) as error:
            logger.warning("http upstream submit %s: no usable answer (%s)", request.customer_order_no,
                           type(error).__name__)
            return TopupAnswer(outcome=Outcome.UNKNOWN, message="上游无应答或应答无法识别，待查询")
        return self._answer(reply, mapping=self.config["submit_reply"], for_query=False)

    def topup_query(self, customer_order_no: str) -> TopupAnswer:
        params = {str(name): customer_order_no
                  for field_name, name in self.config["query_fields"].items() if field_name == "customer_order_no"}
        try:
            reply = self._call("query", params)
        except (httpx.HTTPError, UpstreamReplyError) as error:
            logger.warning("http upstream query %s: no usable answer (%s)", customer_order_no, type(error).__name__)
            return TopupAnswer(outcome=Outcome.UNKNOWN, message="上游无应答或应答无法识别，稍后再查")
        return self._answer(reply, mapping=self.config["query_reply"], for_query=True)

    def callback_verify(self, *, body: bytes, headers: Mapping[str, str]) -> CallbackResult:
        """A signed callback of an md5_sorted upstream (form or JSON body). Any other signer has no callbacks."""
        config = self.config
        callback = config["callback"]
        if not config["has_callbacks"] or config["signer"] != "md5_sorted" or not callback:
            raise CallbackRejectedError("this upstream does not call back")
        params = _callback_params(body, headers)
        if not md5_sorted_verify(params, key=str(config["key"]), sign_field=config["sign_field"]):
            raise CallbackRejectedError("signature does not verify")
        order_no = _text(params.get(str(callback.get("order_no_field") or ""), ""))
        if not order_no:
            raise CallbackRejectedError("no order number")
        status = _text(params.get(str(callback.get("status_field") or ""), ""))
        outcome = Outcome(config["status_map"].get(status, Outcome.UNKNOWN))
        answer = TopupAnswer(
            outcome=outcome,
            supplier_order_id=_text(params.get(str(callback.get("supplier_order_id_field") or ""), "")),
            operator_serial=_text(params.get(str(callback.get("operator_serial_field") or ""), "")),
        )
        return CallbackResult(customer_order_no=order_no, answer=answer, reply=str(callback.get("reply") or "success"))

    # --- goods -----------------------------------------------------------------------------------------------

    def goods_list(self) -> list[UpstreamGoods]:
        goods_config = self.config["goods"]
        page_field = str(goods_config.get("page_field") or "")
        page_size = int(goods_config.get("page_size") or 100)
        goods: list[UpstreamGoods] = []
        last_page = int(goods_config.get("max_pages") or 50) if page_field else 1
        for page in range(1, last_page + 1):
            params: dict[str, Any] = {}
            if page_field:
                params = {page_field: page, str(goods_config.get("page_size_field") or "limit"): page_size}
            items = self._goods_page(params)
            goods.extend(item for item in (self._goods_item(raw) for raw in items) if item is not None)
            if not page_field or len(items) < page_size:
                break
        return goods

    def _goods_page(self, params: dict[str, Any]) -> list[Any]:
        try:
            reply = self._call("goods", params)
        except (httpx.HTTPError, UpstreamReplyError) as error:
            raise UpstreamUnavailableError(f"goods list unavailable ({type(error).__name__})") from error
        envelope = self.config["reply"]
        code = _text(value_at(reply, str(envelope.get("code_path") or ""), ""))
        if envelope.get("code_path") and code not in [str(item) for item in envelope.get("ok_codes") or []]:
            raise UpstreamUnavailableError(f"goods list refused (code {code})")
        items = value_at(reply, str(self.config["goods"].get("list_path") or ""), None)
        if isinstance(items, Mapping):  # a page object: {"list": [...], "total": n}
            items = items.get("list") or items.get("items") or []
        if not isinstance(items, list):
            raise UpstreamUnavailableError("goods list is not a list")
        return items

    def _goods_item(self, raw: Any) -> UpstreamGoods | None:
        goods_config = self.config["goods"]
        if not isinstance(raw, Mapping):
            return None
        product_id = _text(value_at(raw, str(goods_config["product_id"]), ""))
        price = decimal_or_none(value_at(raw, str(goods_config["price"]), None))
        if not product_id or price is None or price <= 0:
            return None  # an entry without a code or a price cannot be synced; the others still are
        stock_raw = value_at(raw, str(goods_config.get("stock") or ""), None) if goods_config.get("stock") else None
        stock = decimal_or_none(stock_raw)
        face_path = str(goods_config.get("face_value") or "")
        return UpstreamGoods(
            product_id=product_id,
            name=_text(value_at(raw, str(goods_config.get("name") or ""), ""))[:120],
            price=price,
            stock=max(int(stock), 0) if stock is not None else None,
            face_value=decimal_or_none(value_at(raw, face_path, None)) if face_path else None,
            is_available=stock is None or stock > 0,
        )

    def goods_form(self, product_id: str) -> list[dict[str, Any]]:
        """亿乐 Goods/Show's `buy_params`, as a product form template (Product.topup_form): what the buyer must
        fill in for this upstream product. Raises UpstreamUnavailableError when it cannot be read."""
        goods_config = self.config["goods"]
        try:
            reply = self._call("goods_detail", {str(goods_config.get("detail_field") or "goods_id"): product_id})
        except (httpx.HTTPError, UpstreamReplyError) as error:
            raise UpstreamUnavailableError(f"goods detail unavailable ({type(error).__name__})") from error
        params = value_at(reply, str(goods_config.get("form_path") or "data.buy_params"), None)
        if not isinstance(params, list):
            raise UpstreamUnavailableError("goods detail has no buy_params list")
        return [field for field in (_form_field(item) for item in params) if field is not None]


def _form_value(value: Any) -> str:
    if isinstance(value, Mapping | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return _text(value)


def _card_text(card: Any) -> str:
    if isinstance(card, Mapping):
        number, secret = _text(card.get("card_no") or card.get("number")), _text(card.get("card_pwd")
                                                                                  or card.get("secret"))
        return f"{number} {secret}".strip()
    return _text(card)


def _callback_params(body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    content_type = next((value for key, value in headers.items() if key.lower() == "content-type"), "")
    text = body.decode("utf-8", errors="replace")
    if "json" in content_type or text.lstrip().startswith("{"):
        try:
            parsed = json.loads(text, parse_float=Decimal)
        except ValueError as error:
            raise CallbackRejectedError("body is not JSON") from error
        if not isinstance(parsed, dict):
            raise CallbackRejectedError("body is not a JSON object")
        return parsed
    return dict(parse_qsl(text, keep_blank_values=True))


def _form_field(item: Any) -> dict[str, Any] | None:
    """One 亿乐 buy_params entry ({name, title, type, required, options}) as a product form field."""
    if not isinstance(item, Mapping):
        return None
    name = _text(item.get("name") or item.get("key") or item.get("field"))
    if not name:
        return None
    options = item.get("options") or item.get("values") or []
    kind = "select" if options else ("phone" if "phone" in name.lower() or "mobile" in name.lower() else "text")
    field: dict[str, Any] = {"name": name, "label": _text(item.get("title") or item.get("label") or name),
                             "kind": kind, "required": bool(item.get("required", True))}
    if options:
        field["options"] = [_text(option.get("value") if isinstance(option, Mapping) else option)
                            for option in options]
    return field
