"""The 福禄 (Fulu) open-platform connector: 话费, 直充 and 卡密 orders, order queries, signed callbacks, goods list.

What was checked against public material (PROTOCOLS.md §4 and the SDKs and integrations it cites):

* One gateway for every method, POST JSON: production `https://openapi.fulu.com/api/getway` (sic, "getway"), the
  sandbox `http://pre.openapi.fulu.com/api/getway` — both as written in Fulu's own SDK samples (PHP/Java/Go/Node
  clients published on GitHub). The gateway is configurable (`gateway_url`), so the same code talks to the
  simulator (kameng/simulators/supplier) or to the sandbox.
* Envelope `app_key, method, timestamp ("Y-m-d H:i:s", Asia/Shanghai), version "2.0", format "json", charset
  "utf-8", sign_type "md5", app_auth_token, biz_content (a JSON string), sign`.
* Signature: the object without `sign` as compact JSON (unicode and slashes unescaped, as PHP's
  `json_encode(…, 320)`), its characters sorted, joined, the secret appended, MD5 in lowercase hex. Sorting the
  characters makes the key order irrelevant. The answer `{code, message, result (a JSON string), sign}` is signed
  the same way over the `result` string (Fulu's Go SDK verifies it so); code 0 means the call succeeded.
* Callback (JSON POST to the URL set in the merchant's Fulu console): `order_id, charge_finish_time,
  customer_order_no, order_status success|failed, recharge_description, product_id, price, buy_num,
  operator_serial_number, sign`, verified the same way, answered `success`.
* Error codes 3001–3005 and 3008 mean "this product cannot be bought now": clients switch to the next product
  (the Go SDK's LoopCodeList), so the order certainly was not taken and failing over is safe.

Not verified against Fulu's own documents (behind a login): the codes for a signature error, an unknown app key
and a duplicate `customer_order_no`, the wording of "order not found", and whether `card_pwd` comes encrypted.
The connector therefore reads them defensively: a duplicate number is recognised by code (`order_exists_codes`,
configurable) or by its message ("已存在"/"重复"), and is UNKNOWN — the caller queries. Anything it cannot read
is UNKNOWN, never FAILED: the order may exist upstream. Only 3001–3005/3008 and the configured `refused_codes`
fail a submit; only the configured `order_missing_codes` or a message saying the ORDER is missing make a query
NOT_FOUND; an "untreated" order is in progress. An answer carrying a result must be signed.

Phone numbers are masked in logs, card secrets never logged.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import logging
import threading
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import aiohttp
import httpx

from kameng.core.errors import ApplicationError
from kameng.core.masking import mask_phone, mask_text
from kameng.suppliers.connectors.base import (
    CallbackRejectedError,
    CallbackResult,
    Outcome,
    TopupAnswer,
    TopupKind,
    TopupRequest,
    UpstreamGoods,
)

logger = logging.getLogger("kameng.suppliers.fulu")

KIND = "fulu"
GATEWAY_URL = "https://openapi.fulu.com/api/getway"
SANDBOX_GATEWAY_URL = "http://pre.openapi.fulu.com/api/getway"
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5.0
SHANGHAI = ZoneInfo("Asia/Shanghai")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
CALLBACK_REPLY = "success"

METHOD_GOODS_LIST = "fulu.goods.list.get"
METHOD_MOBILE_ADD = "fulu.order.mobile.add"
METHOD_DIRECT_ADD = "fulu.order.direct.add"
METHOD_CARD_ADD = "fulu.order.card.add"
METHOD_ORDER_GET = "fulu.order.info.get"

# "This product cannot be had now" (no stock, off sale, price above the ceiling…): try the next supplier.
TRY_NEXT_CODES = frozenset({"3001", "3002", "3003", "3004", "3005", "3008"})
DEFAULT_ORDER_EXISTS_CODES = ("3007",)
ORDER_EXISTS_WORDS = ("已存在", "重复")
# Words of the ORDER missing (a bare "不存在" may be about the app key: "app_key不存在").
ORDER_MISSING_WORDS = ("订单不存在", "订单未找到", "订单号不存在")

# The form fields of a game top-up (TopupRequest.extra) → Fulu's direct-order fields.
DIRECT_EXTRA_FIELDS = {
    "game_name": "charge_game_name",
    "region": "charge_game_region",
    "server": "charge_game_srv",
    "role": "charge_game_role",
    "password": "charge_password",
    "charge_type": "charge_type",
    "ip": "charge_ip",
}

# One connection pool per (timeout, connect timeout) for the whole process: httpx.Client is thread-safe, and the
# top-up workers call from many threads at once. Every connection may stay alive (keep-alive as large as the pool):
# with fewer, a dispatcher with more threads in flight than kept-alive connections closed and reopened connections
# on every call.
_clients: dict[tuple[float, float], httpx.Client] = {}
_clients_lock = threading.Lock()
POOL_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=256, keepalive_expiry=30)


def shared_client(*, timeout: float, connect_timeout: float) -> httpx.Client:
    key = (timeout, connect_timeout)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = httpx.Client(timeout=httpx.Timeout(timeout, connect=connect_timeout), limits=POOL_LIMITS)
            _clients[key] = client
        return client


JSON_CONTENT_TYPE = "application/json; charset=utf-8"
JSON_HEADERS = {"Content-Type": JSON_CONTENT_TYPE}

# The coroutines' HTTP client: one aiohttp session per event loop (the dispatcher's) and timeouts, its connector
# as large as the dispatcher's calls in flight (KAMENG_TOPUP_DISPATCH_THREADS), so no call waits for a connection.
# aiohttp's C parser and plain asyncio transports cost a fraction of httpx/httpcore/anyio per call (bench/README.md,
# "Direct top-ups as production runs them"). It never resends a POST (aiohttp retries a dropped kept-alive
# connection for idempotent methods only); TLS is verified with the default context; no cookies are kept. The proxy
# the environment names (HTTP(S)_PROXY, NO_PROXY) is read once per connector: aiohttp's `trust_env` would read the
# environment and ~/.netrc in a worker thread on every call. A connection idle for KEEPALIVE_SECONDS is closed,
# before the server's own keep-alive timeout is likely to close it under a request.
KEEPALIVE_SECONDS = 20.0
_sessions: dict[tuple[int, float, float], aiohttp.ClientSession] = {}


def _calls_in_flight() -> int:
    from django.conf import settings

    return int(getattr(settings, "KAMENG_TOPUP_DISPATCH_THREADS", 256))


def shared_session(*, timeout: float, connect_timeout: float) -> aiohttp.ClientSession:
    """The running event loop's session for these timeouts (made and used in that loop's thread). `timeout` bounds
    the wait for each part of the answer, connect plus timeout the whole call."""
    key = (id(asyncio.get_running_loop()), timeout, connect_timeout)
    session = _sessions.get(key)
    if session is None or session.closed:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=_calls_in_flight(), keepalive_timeout=KEEPALIVE_SECONDS),
            timeout=aiohttp.ClientTimeout(total=connect_timeout + timeout, connect=connect_timeout,
                                          sock_read=timeout),
            headers={"Accept": "application/json", "User-Agent": "kameng"}, cookie_jar=aiohttp.DummyCookieJar())
        _sessions[key] = session
    return session


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTP_PROXY/HTTPS_PROXY unless NO_PROXY covers its host)."""
    parts = urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return proxy


async def async_clients_close() -> None:
    """Close the running loop's sessions (the dispatcher's loop, stopping)."""
    loop_id = id(asyncio.get_running_loop())
    for key in [key for key in _sessions if key[0] == loop_id]:
        await _sessions.pop(key).close()


def _transport_failure(error: httpx.HTTPError) -> tuple[str, str, Any]:
    if isinstance(error, httpx.TimeoutException):
        return "", f"福禄接口超时：{type(error).__name__}", None
    return "", f"福禄接口连接失败：{type(error).__name__}", None


async def _ready(answer: TopupAnswer) -> TopupAnswer:
    """An answer known without a call, as a coroutine (a request that cannot be sent)."""
    return answer


def compact_json(value: Any) -> str:
    """Compact JSON with unicode and slashes as they are (Python never escapes `/`)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def sign_text(text: str, secret: str) -> str:
    """Fulu's MD5 signature of a serialised text: its characters sorted, the secret appended."""
    return hashlib.md5(("".join(sorted(text)) + secret).encode("utf-8")).hexdigest()  # noqa: S324 - the protocol


def sign_object(payload: Mapping[str, Any], secret: str) -> str:
    """The signature of a request or callback object: every field but `sign`."""
    return sign_text(compact_json({key: value for key, value in payload.items() if key != "sign"}), secret)


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


class _UnreadableAnswerError(Exception):
    """The gateway's answer cannot be read or trusted: the call's outcome is unknown."""


class FuluConnector:
    """A supplier reached through the Fulu protocol. `config` is the supplier's decrypted connector_config."""

    kind = KIND
    has_callbacks = True
    # The callback's signature (MD5 of the sorted characters) verifies any permutation of a genuine one: a callback
    # only makes the platform query the order (kameng.suppliers.callbacks).
    callbacks_prompt_query = True

    def __init__(self, config: Mapping[str, Any], *, client: httpx.Client | None = None) -> None:
        self.gateway_url = str(config.get("gateway_url") or GATEWAY_URL)
        self.app_key = str(config.get("app_key") or "")
        self.app_secret = str(config.get("app_secret") or "")
        self.app_auth_token = str(config.get("app_auth_token") or "")
        self.order_exists_codes = frozenset(str(code) for code in
                                            config.get("order_exists_codes", DEFAULT_ORDER_EXISTS_CODES))
        # Codes that certainly refused a submit (signature, app key, balance…: staff list them from Fulu's
        # documents); any other code is UNKNOWN. And the codes of "no such order" in a query.
        self.refused_codes = frozenset(str(code) for code in config.get("refused_codes", ()))
        self.order_missing_codes = frozenset(str(code) for code in config.get("order_missing_codes", ()))
        self.timeout = float(config.get("timeout") or DEFAULT_TIMEOUT_SECONDS)
        self.connect_timeout = float(config.get("connect_timeout")
                                     or min(self.timeout, DEFAULT_CONNECT_TIMEOUT_SECONDS))
        self.client = client or shared_client(timeout=self.timeout, connect_timeout=self.connect_timeout)
        self.proxy = environment_proxy(self.gateway_url)
        # The dispatcher awaits `topup_submit_async`/`topup_query_async` on its event loop (no thread per call);
        # a connector given its own client (tests) is called through the synchronous methods.
        self.is_async = client is None

    # --- the envelope ---------------------------------------------------------------------------------------------

    def envelope(self, method: str, biz: Mapping[str, Any], *, now: datetime | None = None) -> dict[str, str]:
        moment = (now or datetime.now(tz=SHANGHAI)).astimezone(SHANGHAI)
        payload = {
            "app_key": self.app_key,
            "method": method,
            "timestamp": moment.strftime(TIMESTAMP_FORMAT),
            "version": "2.0",
            "format": "json",
            "charset": "utf-8",
            "sign_type": "md5",
            "app_auth_token": self.app_auth_token,
            "biz_content": compact_json(dict(biz)),
        }
        payload["sign"] = sign_object(payload, self.app_secret)
        return payload

    def _config_problem(self) -> str:
        missing = [name for name, value in (("app_key", self.app_key), ("app_secret", self.app_secret)) if not value]
        if not self.gateway_url.startswith(("https://", "http://")):
            missing.append("有效的 gateway_url")
        return "、".join(missing)

    def _call(self, method: str, biz: Mapping[str, Any]) -> tuple[str, str, Any]:
        """(code, message, result) of one gateway call; code "" with result None when the answer cannot be read
        or trusted (timeout, dropped connection, HTTP error, garbled or wrongly signed body)."""
        try:
            response = self.client.post(self.gateway_url, content=self._body(method, biz), headers=JSON_HEADERS)
        except httpx.HTTPError as error:
            return _transport_failure(error)
        return self._answer_of(response.status_code, response.content)

    async def _post_async(self, body: bytes) -> tuple[str, str, Any]:
        """`_call` of a signed body (`_body`) on this event loop's shared aiohttp session (the dispatcher's)."""
        session = shared_session(timeout=self.timeout, connect_timeout=self.connect_timeout)
        try:
            async with session.post(self.gateway_url, data=body, headers=JSON_HEADERS,
                                    proxy=self.proxy) as response:
                status, content = response.status, await response.read()
        except TimeoutError as error:  # aiohttp's timeouts are TimeoutErrors (some also ClientErrors)
            return "", f"福禄接口超时：{type(error).__name__}", None
        except (aiohttp.ClientError, OSError, ValueError) as error:
            return "", f"福禄接口连接失败：{type(error).__name__}", None
        return self._answer_of(status, content)

    def _body(self, method: str, biz: Mapping[str, Any]) -> bytes:
        return compact_json(self.envelope(method, biz)).encode("utf-8")

    def _answer_of(self, status: int, content: bytes) -> tuple[str, str, Any]:
        try:
            return self._read(status, content)
        except _UnreadableAnswerError as error:
            return "", str(error), None

    def _read(self, status: int, content: bytes) -> tuple[str, str, Any]:
        if status != 200:
            raise _UnreadableAnswerError(f"福禄接口 HTTP {status}")
        try:
            answer = json.loads(content)
            code, message = str(answer["code"]), str(answer.get("message") or "")
        except (ValueError, KeyError, TypeError) as error:
            raise _UnreadableAnswerError("福禄接口应答无法解析") from error
        if code != "0":
            return code, message, None
        raw_result, signature = answer.get("result"), str(answer.get("sign") or "")
        if not isinstance(raw_result, str):
            return code, message, raw_result
        # An answer with a result must be signed: an unsigned "success" is unreadable, not believed.
        if not hmac.compare_digest(sign_text(raw_result, self.app_secret).encode(),
                                   signature.encode("utf-8", "replace")):
            raise _UnreadableAnswerError("福禄接口应答签名不符")
        try:
            return code, message, json.loads(raw_result) if raw_result else None
        except ValueError as error:
            raise _UnreadableAnswerError("福禄接口应答 result 无法解析") from error

    # --- orders ---------------------------------------------------------------------------------------------------

    def _submit_biz(self, request: TopupRequest) -> tuple[str, dict[str, Any]]:
        biz: dict[str, Any] = {"customer_order_no": request.customer_order_no}
        if request.kind == TopupKind.MOBILE:
            biz["charge_phone"] = request.charge_account
            biz["charge_value"] = _number(request.face_value or Decimal(0))
            method = METHOD_MOBILE_ADD
        elif request.kind == TopupKind.DIRECT:
            biz.update(product_id=request.upstream_product_id, charge_account=request.charge_account,
                       buy_num=request.quantity)
            for name, value in request.extra.items():
                if value not in ("", None):
                    biz[DIRECT_EXTRA_FIELDS.get(name, name)] = value
            method = METHOD_DIRECT_ADD
        else:
            biz.update(product_id=request.upstream_product_id, buy_num=request.quantity)
            method = METHOD_CARD_ADD
        if request.max_price is not None:
            biz["customer_price"] = _number(request.max_price)
        return method, biz

    def _unsendable(self, request: TopupRequest) -> TopupAnswer | None:
        """Why this request cannot be sent at all (nothing reaches the upstream: the next supplier may try)."""
        missing = self._config_problem()
        if missing:
            return TopupAnswer(Outcome.FAILED, code="connector_config_invalid", may_try_next=True,
                               message=f"福禄对接配置缺少 {missing}")
        if request.kind == TopupKind.MOBILE and not request.face_value:
            return TopupAnswer(Outcome.FAILED, code="request_invalid", may_try_next=True,
                               message="话费充值缺少面值（规格的面值）")
        return None

    def topup_submit(self, request: TopupRequest) -> TopupAnswer:
        unsendable = self._unsendable(request)
        if unsendable is not None:
            return unsendable
        method, biz = self._submit_biz(request)
        return self._submit_answer(request, method, *self._call(method, biz))

    async def topup_submit_async(self, request: TopupRequest) -> TopupAnswer:
        """`topup_submit` without a thread: the dispatcher awaits many at once on one event loop."""
        return await self.topup_submit_prepared(request)()

    def topup_submit_prepared(self, request: TopupRequest) -> Callable[[], Awaitable[TopupAnswer]]:
        """`topup_submit_async` in two halves: the body built and signed now, in the caller's thread (the
        dispatcher's claim thread), and a coroutine function that sends it. The event loop then does only the HTTP,
        so its calls wait less behind one another's JSON and MD5 (bench/README.md)."""
        unsendable = self._unsendable(request)
        if unsendable is not None:
            return functools.partial(_ready, unsendable)
        method, biz = self._submit_biz(request)
        body = self._body(method, biz)

        async def send() -> TopupAnswer:
            return self._submit_answer(request, method, *await self._post_async(body))

        return send

    def _submit_answer(self, request: TopupRequest, method: str, code: str, message: str, result: Any) -> TopupAnswer:
        account = mask_phone(request.charge_account) if request.charge_account else "-"
        logger.info("%s %s account=%s → code=%s %s", method, request.customer_order_no, account,
                    code or "?", mask_text(message))
        if code == "":
            return TopupAnswer(Outcome.UNKNOWN, message=message)
        if code != "0":
            return self._refusal(code, message)
        if not isinstance(result, dict):
            return TopupAnswer(Outcome.UNKNOWN, message="福禄下单应答缺少订单信息")
        answer = self._order_answer(result)
        # An accepted order not yet looked at ("untreated") is in progress, not missing.
        if answer.outcome == Outcome.NOT_FOUND:
            return TopupAnswer(Outcome.PROCESSING, supplier_order_id=answer.supplier_order_id)
        return answer

    def _refusal(self, code: str, message: str) -> TopupAnswer:
        text = mask_text(message)
        if code in self.order_exists_codes or any(word in message for word in ORDER_EXISTS_WORDS):
            # Ours from an earlier try whose answer was lost: the query tells what became of it.
            return TopupAnswer(Outcome.UNKNOWN, code=code, message=f"福禄：订单号已存在（{text}）")
        if code in TRY_NEXT_CODES:
            return TopupAnswer(Outcome.FAILED, code=code, message=text, may_try_next=True)
        if code.startswith("5") and len(code) == 4:
            # A server-side error of the upstream: it may or may not have taken the order.
            return TopupAnswer(Outcome.UNKNOWN, code=code, message=text)
        if code in self.refused_codes:
            # Signature, app key, parameters, balance… as configured: refused before anything was accepted.
            return TopupAnswer(Outcome.FAILED, code=code, message=f"福禄拒绝下单（{code}）：{text}", may_try_next=True)
        # A code we cannot read may hide an accepted order: query before anything else, never fail over blindly.
        return TopupAnswer(Outcome.UNKNOWN, code=code, message=f"福禄应答（{code}）：{text}")

    def topup_query(self, customer_order_no: str) -> TopupAnswer:
        missing = self._config_problem()
        if missing:
            return TopupAnswer(Outcome.UNKNOWN, code="connector_config_invalid",
                               message=f"福禄对接配置缺少 {missing}")
        biz = {"customer_order_no": customer_order_no}
        return self._query_answer(customer_order_no, *self._call(METHOD_ORDER_GET, biz))

    async def topup_query_async(self, customer_order_no: str) -> TopupAnswer:
        return await self.topup_query_prepared(customer_order_no)()

    def topup_query_prepared(self, customer_order_no: str) -> Callable[[], Awaitable[TopupAnswer]]:
        """`topup_query_async` in two halves, as `topup_submit_prepared`."""
        missing = self._config_problem()
        if missing:
            return functools.partial(_ready, TopupAnswer(Outcome.UNKNOWN, code="connector_config_invalid",
                                                         message=f"福禄对接配置缺少 {missing}"))
        body = self._body(METHOD_ORDER_GET, {"customer_order_no": customer_order_no})

        async def send() -> TopupAnswer:
            return self._query_answer(customer_order_no, *await self._post_async(body))

        return send

    def _query_answer(self, customer_order_no: str, code: str, message: str, result: Any) -> TopupAnswer:
        logger.info("%s %s → code=%s", METHOD_ORDER_GET, customer_order_no, code or "?")
        if code == "":
            return TopupAnswer(Outcome.UNKNOWN, message=message)
        if code != "0":
            if code in self.order_missing_codes or any(word in message for word in ORDER_MISSING_WORDS):
                return TopupAnswer(Outcome.NOT_FOUND, code=code, message=mask_text(message))
            # A refused query says nothing about the order.
            return TopupAnswer(Outcome.UNKNOWN, code=code, message=f"福禄查单失败（{code}）：{mask_text(message)}")
        if not isinstance(result, dict) or not result:
            return TopupAnswer(Outcome.NOT_FOUND, message="福禄没有这个订单")
        return self._order_answer(result)

    def _order_answer(self, result: Mapping[str, Any]) -> TopupAnswer:
        state = str(result.get("order_state") or "")
        order_id = str(result.get("order_id") or "")
        if state == "success":
            return TopupAnswer(Outcome.SUCCEEDED, supplier_order_id=order_id,
                               operator_serial=str(result.get("operator_serial_number") or ""),
                               cards=_cards_of(result.get("cards")))
        if state == "processing":
            return TopupAnswer(Outcome.PROCESSING, supplier_order_id=order_id)
        if state == "failed":
            return TopupAnswer(Outcome.FAILED, supplier_order_id=order_id, code="order_failed",
                               message="福禄订单充值失败")
        if state == "untreated":  # accepted, not yet looked at: in progress (resubmitting would duplicate it)
            return TopupAnswer(Outcome.PROCESSING, supplier_order_id=order_id, message="福禄订单未处理")
        return TopupAnswer(Outcome.UNKNOWN, supplier_order_id=order_id, message=f"福禄订单状态未知：{state[:20]}")

    # --- callbacks ------------------------------------------------------------------------------------------------

    def callback_verify(self, *, body: bytes, headers: Mapping[str, str]) -> CallbackResult:
        """A verified callback's result. A card order's callback carries no cards: `topup_query` brings them."""
        try:
            payload = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            raise CallbackRejectedError("福禄回调不是 JSON") from error
        if not isinstance(payload, dict):
            raise CallbackRejectedError("福禄回调不是 JSON 对象")
        signature = str(payload.get("sign") or "")
        if not self.app_secret or not signature:
            raise CallbackRejectedError("福禄回调没有签名")
        unsigned = {key: value for key, value in payload.items() if key != "sign"}
        # The rule's serialisation (unicode unescaped); a sender escaping non-ASCII (\uXXXX) is accepted too.
        # Both are keyed by the secret: accepting either forges nothing.
        candidates = (compact_json(unsigned), json.dumps(unsigned, separators=(",", ":")))
        if not any(hmac.compare_digest(sign_text(text, self.app_secret).encode(), signature.encode("utf-8", "replace"))
                   for text in candidates):
            raise CallbackRejectedError("福禄回调签名不符")
        customer_order_no = str(payload.get("customer_order_no") or "")
        status = str(payload.get("order_status") or "")
        order_id = str(payload.get("order_id") or "")
        if not customer_order_no or status not in ("success", "failed"):
            raise CallbackRejectedError("福禄回调缺少订单号或状态")
        if status == "success":
            answer = TopupAnswer(Outcome.SUCCEEDED, supplier_order_id=order_id,
                                 operator_serial=str(payload.get("operator_serial_number") or ""))
        else:
            answer = TopupAnswer(Outcome.FAILED, supplier_order_id=order_id, code="order_failed",
                                 message=mask_text(str(payload.get("recharge_description") or "福禄订单充值失败")))
        return CallbackResult(customer_order_no=customer_order_no, answer=answer, reply=CALLBACK_REPLY)

    # --- goods ----------------------------------------------------------------------------------------------------

    def goods_list(self) -> list[UpstreamGoods]:
        missing = self._config_problem()
        if missing:
            raise ApplicationError("福禄对接配置缺少 %(missing)s", code="connector_config_invalid",
                                   params={"missing": missing})
        code, message, result = self._call(METHOD_GOODS_LIST, {})
        if code != "0" or not isinstance(result, list):
            raise ApplicationError("读取福禄商品列表失败：%(reason)s", code="connector_goods_unavailable",
                                   params={"reason": mask_text(message) or "应答无法解析"})
        return [goods for item in result if isinstance(item, dict) and (goods := _goods_of(item)) is not None]


def _cards_of(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw else []
        except ValueError:
            return ()
    if not isinstance(raw, list):
        return ()
    cards = []
    for card in raw:
        if not isinstance(card, dict):
            continue
        number, password = str(card.get("card_number") or ""), str(card.get("card_pwd") or "")
        cards.append(f"{number} {password}".strip())
    return tuple(card for card in cards if card)


def _goods_of(item: Mapping[str, Any]) -> UpstreamGoods | None:
    price = _decimal(item.get("purchase_price"))
    product_id = str(item.get("product_id") or "")
    if price is None or not product_id:
        return None
    stock_raw = item.get("stock_num")
    stock = int(stock_raw) if isinstance(stock_raw, int | str) and str(stock_raw).isdigit() else None
    on_sale = str(item.get("sales_status") or "上架") in ("上架", "1", "on_sale")
    in_stock = str(item.get("stock_status") or "") not in ("断货", "0", "out_of_stock")
    return UpstreamGoods(product_id=product_id, name=str(item.get("product_name") or product_id), price=price,
                         stock=stock, face_value=_decimal(item.get("face_value")),
                         is_available=on_sale and in_stock and stock != 0)


def fulu_connector_create(config: dict[str, Any]) -> FuluConnector:
    return FuluConnector(config)
