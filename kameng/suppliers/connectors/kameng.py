"""Site-to-site docking (对接): another kameng site's Open API v1 as an upstream supplier.

Config (the supplier's encrypted connector_config): `base_url` (the other site's Open API root, e.g.
"https://up.example.com/openapi/v1"), `key_id` and `secret` (an API key of our reseller account there), optional
`timeout` (seconds, default 10).

Every call is signed with the v1 header scheme (kameng.core.openapi_signing) over the path with query of the URL
called. What it does with the contract (issue 11, "The Open API v1"):

- goods: `GET /products` → `{sku_id, product_name, sku_name, price, stock, delivery_kind}` at our price there; the
  upstream's `sku_id` is the offer's `upstream_product_id` (kameng.suppliers.sync applies the list).
- submit: `POST /orders` with `{request_no, sku_id, quantity, recharge_account?, notify_url}`: `request_no` is the
  attempt's `customer_order_no` (our order number and attempt sequence), the upstream's idempotency key — the same
  number again returns the same order, so a NOT_FOUND query followed by a resubmit can never buy twice;
  `notify_url` is our supplier callback URL. Only the account travels (`recharge_account`): the v1 contract has no
  field for a game's region, server or role.
- the answer's `status` is the upstream order's status: delivered/completed (and the later after-sales states) →
  SUCCEEDED with the `keys` as the cards of a card-key order; paid/fulfilling/under review → PROCESSING;
  refunded/delivery failed/cancelled/expired → FAILED (confirmed: its money came back to our wallet there).
- refusals that certainly created nothing (400, 401, 402, 403, 404, 422, 429, and 409 `sold_out` /
  `insufficient_balance`) are FAILED with `may_try_next`; a timeout, a dropped connection, a 5xx, another 409 or
  an unreadable answer is UNKNOWN — queried (`GET /orders?request_no=`), never resubmitted blind. A query's 404
  with a JSON error body is NOT_FOUND.
- callbacks: the upstream POSTs `{order_no, request_no, status, keys?, operator_serial?}` to
  /suppliers/callback/<supplier id>/ signed with the same headers and OUR key's secret over that path; the key id
  must be ours, the timestamp within 300 s, the nonce unseen (kept 10 minutes). A verified callback is believed
  (HMAC-SHA256 over the whole body, unlike Fulu's sorted characters).

Card secrets and the recharge account are never logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from django.core.cache import cache

from kameng.core.errors import ApplicationError
from kameng.core.masking import mask_text
from kameng.core.openapi_signing import (
    HEADER_KEY,
    HEADER_NONCE,
    SKEW_SECONDS,
    openapi_signature_matches,
    openapi_signed_headers,
)
from kameng.suppliers.connectors.base import (
    CallbackRejectedError,
    CallbackResult,
    Outcome,
    TopupAnswer,
    TopupKind,
    TopupRequest,
    UpstreamGoods,
)
from kameng.suppliers.connectors.fulu import shared_client

logger = logging.getLogger("kameng.suppliers.kameng")

KIND = "kameng"
DEFAULT_TIMEOUT_SECONDS = 10.0
CALLBACK_REPLY = "success"
SUCCEEDED_STATUSES = frozenset({"delivered", "completed", "after_sales", "partially_refunded"})
PROCESSING_STATUSES = frozenset({"paid", "fulfilling", "under_review", "pending_payment"})
FAILED_STATUSES = frozenset({"refunded", "delivery_failed", "cancelled", "expired"})
# Answers that certainly created no order upstream: the next supplier may be tried.
REFUSED_HTTP = frozenset({400, 401, 402, 403, 404, 422, 429})
REFUSED_CONFLICT_CODES = frozenset({"sold_out", "insufficient_balance"})
NONCE_MEMORY_SECONDS = 2 * SKEW_SECONDS + 60

# The httpx transport of every kameng connector; None means the network. Tests put an httpx.MockTransport here.
transport: httpx.BaseTransport | None = None


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except (InvalidOperation, ValueError):
        return None


class _UnreadableError(Exception):
    pass


class KamengConnector:
    """A supplier that is another kameng site, reached through its Open API v1."""

    kind = KIND
    has_callbacks = True

    def __init__(self, config: Mapping[str, Any], *, client: httpx.Client | None = None) -> None:
        self.base_url = str(config.get("base_url") or "").rstrip("/")
        self.key_id = str(config.get("key_id") or "")
        self.secret = str(config.get("secret") or "")
        self.supplier_id = config.get("_supplier_id")
        timeout = float(config.get("timeout") or DEFAULT_TIMEOUT_SECONDS)
        if client is None and transport is not None:
            client = httpx.Client(transport=transport, timeout=timeout)
        self.client = client or shared_client(timeout=timeout, connect_timeout=min(timeout, 5.0))

    def _config_problem(self) -> str:
        missing = [name for name, value in (("key_id", self.key_id), ("secret", self.secret)) if not value]
        if not self.base_url.startswith(("https://", "http://")):
            missing.append("有效的 base_url")
        return "、".join(missing)

    # --- calls ----------------------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, query: Mapping[str, str] | None = None,
                 payload: Mapping[str, Any] | None = None) -> httpx.Response:
        """One signed call; httpx errors propagate (the caller decides what they mean)."""
        url = self.base_url + path + (f"?{urlencode(query)}" if query else "")
        parts = urlsplit(url)
        path_with_query = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() if payload is not None else b""
        headers = openapi_signed_headers(key_id=self.key_id, secret=self.secret, method=method,
                                         path_with_query=path_with_query, body=body)
        if payload is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        return self.client.request(method, url, content=body, headers=headers)

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as error:
            raise _UnreadableError(f"应答不是 JSON（HTTP {response.status_code}）") from error

    # --- orders ---------------------------------------------------------------------------------------------------

    def topup_submit(self, request: TopupRequest) -> TopupAnswer:
        missing = self._config_problem()
        if missing:
            return TopupAnswer(Outcome.FAILED, code="connector_config_invalid", may_try_next=True,
                               message=f"对接站点配置缺少 {missing}")
        sku_id: int | str = (int(request.upstream_product_id) if request.upstream_product_id.isdigit()
                             else request.upstream_product_id)
        payload: dict[str, Any] = {"request_no": request.customer_order_no, "sku_id": sku_id,
                                   "quantity": request.quantity}
        if request.kind != TopupKind.CARD and request.charge_account:
            payload["recharge_account"] = request.charge_account
        if request.notify_url:
            payload["notify_url"] = request.notify_url
        try:
            response = self._request("POST", "/orders", payload=payload)
        except httpx.TimeoutException as error:
            return TopupAnswer(Outcome.UNKNOWN, message=f"对接站点超时：{type(error).__name__}")
        except httpx.HTTPError as error:
            return TopupAnswer(Outcome.UNKNOWN, message=f"对接站点连接失败：{type(error).__name__}")
        logger.info("kameng upstream POST /orders %s → HTTP %s", request.customer_order_no, response.status_code)
        try:
            data = self._json(response)
        except _UnreadableError as error:
            return TopupAnswer(Outcome.UNKNOWN, message=str(error))
        if response.status_code in (200, 201):
            return self._order_answer(data, request_no=request.customer_order_no)
        return self._refusal(response.status_code, data)

    def _refusal(self, status_code: int, data: Any) -> TopupAnswer:
        code = str(data.get("code") or "") if isinstance(data, dict) else ""
        message = mask_text(str(data.get("message") or "") if isinstance(data, dict) else "")[:200]
        text = f"对接站点拒绝下单（HTTP {status_code} {code}）：{message}"
        if status_code in REFUSED_HTTP or (status_code == 409 and code in REFUSED_CONFLICT_CODES):
            return TopupAnswer(Outcome.FAILED, code=code or str(status_code), message=text, may_try_next=True)
        # A 5xx, or a 409 such as "this request_no with another body": the order may exist there. Query first.
        return TopupAnswer(Outcome.UNKNOWN, code=code or str(status_code), message=text)

    def topup_query(self, customer_order_no: str) -> TopupAnswer:
        missing = self._config_problem()
        if missing:
            return TopupAnswer(Outcome.UNKNOWN, code="connector_config_invalid", message=f"对接站点配置缺少 {missing}")
        try:
            response = self._request("GET", "/orders", query={"request_no": customer_order_no})
        except httpx.HTTPError as error:
            return TopupAnswer(Outcome.UNKNOWN, message=f"对接站点查单失败：{type(error).__name__}")
        logger.info("kameng upstream GET /orders?request_no=%s → HTTP %s", customer_order_no, response.status_code)
        try:
            data = self._json(response)
        except _UnreadableError as error:
            return TopupAnswer(Outcome.UNKNOWN, message=str(error))
        if response.status_code == 200:
            return self._order_answer(data, request_no=customer_order_no)
        if response.status_code == 404 and isinstance(data, dict) and data.get("code"):
            return TopupAnswer(Outcome.NOT_FOUND, code=str(data.get("code")), message="对接站点没有这个订单")
        return TopupAnswer(Outcome.UNKNOWN, message=f"对接站点查单失败（HTTP {response.status_code}）")

    def _order_answer(self, data: Any, *, request_no: str) -> TopupAnswer:
        if isinstance(data, list) and len(data) == 1:  # a list answer to `?request_no=`: the one order
            data = data[0]
        if not isinstance(data, dict) or str(data.get("request_no") or "") != request_no:
            return TopupAnswer(Outcome.UNKNOWN, message="对接站点应答缺少订单或请求号不符")
        status = str(data.get("status") or "")
        order_no = str(data.get("order_no") or "")
        if status in SUCCEEDED_STATUSES:
            keys = data.get("keys") or []
            cards = tuple(str(key) for key in keys if key not in (None, "")) if isinstance(keys, list) else ()
            return TopupAnswer(Outcome.SUCCEEDED, supplier_order_id=order_no, cards=cards,
                               operator_serial=str(data.get("operator_serial") or ""))
        if status in PROCESSING_STATUSES:
            return TopupAnswer(Outcome.PROCESSING, supplier_order_id=order_no)
        if status in FAILED_STATUSES:
            return TopupAnswer(Outcome.FAILED, supplier_order_id=order_no, code=status,
                               message=f"对接站点订单失败（{status}）")
        return TopupAnswer(Outcome.UNKNOWN, supplier_order_id=order_no, message=f"对接站点订单状态未知：{status[:20]}")

    # --- callbacks ------------------------------------------------------------------------------------------------

    def callback_path(self) -> str:
        from kameng.suppliers.dispatch import topup_notify_url

        if self.supplier_id is None:
            raise CallbackRejectedError("对接站点回调：不知道本供货商的回调地址")
        parts = urlsplit(topup_notify_url(supplier_id=int(self.supplier_id)))
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def callback_verify(self, *, body: bytes, headers: Mapping[str, str]) -> CallbackResult:
        lowered = {key.lower(): value for key, value in headers.items()}
        if not self.secret or lowered.get(HEADER_KEY.lower(), "") != self.key_id:
            raise CallbackRejectedError("对接站点回调的密钥 ID 不符")
        if not openapi_signature_matches(secret=self.secret, method="POST", path_with_query=self.callback_path(),
                                         headers=dict(lowered), body=body):
            raise CallbackRejectedError("对接站点回调签名不符或已过期")
        nonce = lowered.get(HEADER_NONCE.lower(), "")
        if not cache.add(f"suppliers:kameng-nonce:{self.supplier_id}:{nonce}", 1, NONCE_MEMORY_SECONDS):
            raise CallbackRejectedError("对接站点回调重放")
        try:
            data = json.loads(body)
        except ValueError as error:
            raise CallbackRejectedError("对接站点回调不是 JSON") from error
        request_no = str(data.get("request_no") or "") if isinstance(data, dict) else ""
        if not request_no:
            raise CallbackRejectedError("对接站点回调缺少 request_no")
        answer = self._order_answer(data, request_no=request_no)
        if answer.outcome == Outcome.UNKNOWN:
            raise CallbackRejectedError("对接站点回调的状态无法识别")
        return CallbackResult(customer_order_no=request_no, answer=answer, reply=CALLBACK_REPLY)

    # --- goods ----------------------------------------------------------------------------------------------------

    def goods_list(self) -> list[UpstreamGoods]:
        missing = self._config_problem()
        if missing:
            raise ApplicationError("对接站点配置缺少 %(missing)s", code="connector_config_invalid",
                                   params={"missing": missing})
        try:
            response = self._request("GET", "/products")
            data = self._json(response)
        except (httpx.HTTPError, _UnreadableError) as error:
            raise ApplicationError("读取对接站点商品失败：%(reason)s", code="connector_goods_unavailable",
                                   params={"reason": type(error).__name__}) from error
        items = data.get("items") if isinstance(data, dict) else data
        if response.status_code != 200 or not isinstance(items, list):
            raise ApplicationError("读取对接站点商品失败：HTTP %(status)s", code="connector_goods_unavailable",
                                   params={"status": response.status_code})
        return [goods for item in items if isinstance(item, dict) and (goods := _goods_of(item)) is not None]


def _goods_of(item: Mapping[str, Any]) -> UpstreamGoods | None:
    sku_id = str(item.get("sku_id") or "")
    price = _decimal(item.get("price"))
    if not sku_id or price is None or price <= 0:
        return None
    stock_raw = item.get("stock")
    stock = stock_raw if isinstance(stock_raw, int) and not isinstance(stock_raw, bool) and stock_raw >= 0 else None
    name = " ".join(str(item.get(key) or "") for key in ("product_name", "sku_name")).strip() or sku_id
    return UpstreamGoods(product_id=sku_id, name=name, price=price, stock=stock, is_available=stock != 0)
