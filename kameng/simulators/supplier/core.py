"""The simulated supplier's state and protocol decisions, without I/O: the ASGI app (app.py) adds latency, lost
replies and the callback sender around it, tests call it directly.

Gateway answers are `{code, message, result, sign}`: code 0 with `result` a JSON string signed like a request;
any other code with an empty result. The simulator's own error codes (Fulu's are not public): 1000 bad request,
1001 unknown app_key, 1002 bad signature, 1003 unknown method, 1004 bad charge account; 3001 no such product,
3002 off sale, 3003 out of stock, 3004 price above customer_price, 3005 refused (the `refuse_rate` knob),
3007 customer_order_no already exists, 3010 order does not exist (query).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import secrets
import string
import threading
from collections import Counter
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from kameng.simulators.supplier.catalog import (
    GOODS,
    ORDER_TYPES,
    PRODUCT_TYPES,
    Goods,
    GoodsKind,
    goods_by_id,
    price_for,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
PHONE = re.compile(r"1[3-9]\d{9}")
SUBMIT_METHODS = {"fulu.order.mobile.add": GoodsKind.MOBILE, "fulu.order.direct.add": GoodsKind.DIRECT,
                  "fulu.order.card.add": GoodsKind.CARD}
ENVELOPE_FIELDS = ("app_key", "method", "timestamp", "version", "format", "charset", "sign_type", "biz_content",
                   "sign")


def fulu_sign(text: str, secret: str) -> str:
    """Characters of the text sorted, the secret appended, MD5 lowercase (written apart from the connector's)."""
    characters = list(text)
    characters.sort()
    return hashlib.md5(("".join(characters) + secret).encode("utf-8")).hexdigest()  # noqa: S324 - the protocol


def fulu_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def now_text() -> str:
    return datetime.now(tz=SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Knobs:
    latency_ms: float = 0.0  # added to every gateway answer
    latency_jitter_ms: float = 0.0  # uniform 0..jitter on top
    refuse_rate: float = 0.0  # submit refused with 3005 (never accepted: the platform may try the next supplier)
    fail_rate: float = 0.0  # accepted, then fails (callback / query say failed)
    unknown_rate: float = 0.0  # accepted, but the reply is lost (see unknown_mode)
    unknown_mode: str = "504"  # 504: answer 504; hang: wait hang_seconds then 504; garbled: 200 with a non-JSON body
    hang_seconds: float = 30.0
    process_ms: float = 300.0  # from acceptance to the final state
    callback_delay_ms: float = 0.0  # late callbacks: wait this long after the final state
    callback_duplicates: int = 0  # extra copies of each callback
    callback_retries: int = 5  # further tries when the platform does not answer "success"
    callback_retry_ms: float = 1000.0  # the n-th retry waits n times this
    callbacks_enabled: bool = True

    def update(self, values: dict[str, Any]) -> list[str]:
        """Set the known knobs from `values` (types as declared); returns the unknown names."""
        names = {item.name: item.type for item in fields(self)}
        unknown = [name for name in values if name not in names]
        for name, value in values.items():
            if name in names:
                current = getattr(self, name)
                setattr(self, name, type(current)(value) if not isinstance(current, bool) else _bool(value))
        return unknown


def _bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")


@dataclass
class Merchant:
    app_key: str
    app_secret: str
    name: str = ""
    notify_url: str = ""
    price_factor: Decimal = Decimal("1")
    prices: dict[str, Decimal] = field(default_factory=dict)  # product_id → price, overriding the factor
    stock: dict[str, int | None] = field(default_factory=dict)  # product_id → units left (None: unlimited)
    # This merchant's own refuse_rate / fail_rate / unknown_rate, overriding the global knobs (one supplier of the
    # demo misbehaving while the other works).
    rates: dict[str, float] = field(default_factory=dict)

    def price(self, goods: Goods) -> Decimal:
        return price_for(goods, price_factor=self.price_factor, override=self.prices.get(goods.product_id))

    def public(self) -> dict[str, Any]:
        return {"app_key": self.app_key, "name": self.name, "notify_url": self.notify_url,
                "price_factor": str(self.price_factor), "stock": self.stock, "rates": self.rates,
                "prices": {goods.product_id: str(self.price(goods)) for goods in GOODS}}


@dataclass
class Order:
    order_id: str
    merchant: str
    customer_order_no: str
    goods: Goods
    charge_account: str
    buy_num: int
    price: Decimal  # total
    create_time: str
    will_fail: bool
    state: str = "processing"
    finish_time: str = ""
    operator_serial_number: str = ""
    cards: list[dict[str, str]] = field(default_factory=list)
    callbacks_sent: int = 0
    callbacks_acknowledged: int = 0

    def result(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id, "product_id": self.goods.product_id, "product_name": self.goods.name,
            "charge_account": self.charge_account, "customer_order_no": self.customer_order_no,
            "create_time": self.create_time, "buy_num": self.buy_num, "order_price": float(self.price),
            "order_state": self.state, "finish_time": self.finish_time, "order_type": ORDER_TYPES[self.goods.kind],
            "operator_serial_number": self.operator_serial_number,
            "cards": self.cards if self.state == "success" else [],
        }


class RefusedError(Exception):
    """The gateway answers this code and message (no result)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class GatewayAnswer:
    status: int
    body: dict[str, Any]
    accepted: Order | None = None  # a submit that created this order
    lost: bool = False  # the order was accepted but this reply must be lost (unknown_rate)


class SupplierSimulator:
    """All merchants, orders and counters. Thread-safe (one lock): the ASGI app runs it on one event loop, tests
    may call it from threads."""

    def __init__(self, *, merchants: list[Merchant] | None = None, knobs: Knobs | None = None,
                 seed: int | None = None) -> None:
        self.knobs = knobs or Knobs()
        self.merchants: dict[str, Merchant] = {}
        self.orders: dict[tuple[str, str], Order] = {}
        self.submissions: Counter[str] = Counter()  # customer_order_no → submit calls (signed, any answer)
        self.requests: Counter[str] = Counter()  # method → calls
        self.random = random.Random(seed)  # noqa: S311 - simulation, not security
        self._lock = threading.Lock()
        self._sequence = 0
        for merchant in merchants or []:
            self.merchant_set(merchant)

    def merchant_set(self, merchant: Merchant) -> None:
        with self._lock:
            for goods in GOODS:
                merchant.stock.setdefault(goods.product_id, goods.stock)
            self.merchants[merchant.app_key] = merchant

    def reset(self) -> None:
        with self._lock:
            self.orders.clear()
            self.submissions.clear()
            self.requests.clear()

    # --- the gateway ----------------------------------------------------------------------------------------------

    def gateway(self, raw: bytes) -> GatewayAnswer:
        try:
            merchant, method, biz = self._verified(raw)
            with self._lock:
                self.requests[method] += 1
                if method == "fulu.goods.list.get":
                    return self._ok(merchant, [self._goods_row(merchant, goods) for goods in GOODS])
                if method == "fulu.order.info.get":
                    order = self.orders.get((merchant.app_key, str(biz.get("customer_order_no") or "")))
                    if order is None:
                        raise RefusedError(3010, "订单不存在")
                    return self._ok(merchant, order.result())
                if method in SUBMIT_METHODS:
                    return self._submit(merchant, SUBMIT_METHODS[method], biz)
            raise RefusedError(1003, "接口方法不存在")
        except RefusedError as refusal:
            return GatewayAnswer(200, {"code": refusal.code, "message": refusal.message, "result": "", "sign": ""})

    def _verified(self, raw: bytes) -> tuple[Merchant, str, dict[str, Any]]:
        try:
            envelope = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            raise RefusedError(1000, "请求不是 JSON") from error
        if not isinstance(envelope, dict) or any(not isinstance(envelope.get(name), str) for name in ENVELOPE_FIELDS):
            raise RefusedError(1000, "缺少公共参数")
        merchant = self.merchants.get(envelope["app_key"])
        if merchant is None:
            raise RefusedError(1001, "app_key 无效")
        unsigned = {key: value for key, value in envelope.items() if key != "sign"}
        if fulu_sign(fulu_json(unsigned), merchant.app_secret) != envelope["sign"]:
            raise RefusedError(1002, "签名验证失败")
        try:
            biz = json.loads(envelope["biz_content"] or "{}")
        except ValueError as error:
            raise RefusedError(1000, "biz_content 不是 JSON") from error
        if not isinstance(biz, dict):
            raise RefusedError(1000, "biz_content 不是 JSON 对象")
        return merchant, envelope["method"], biz

    def _rate(self, merchant: Merchant, name: str) -> float:
        rate = merchant.rates.get(name)
        return float(getattr(self.knobs, name)) if rate is None else rate

    def _ok(self, merchant: Merchant, result: Any) -> GatewayAnswer:
        text = fulu_json(result)
        return GatewayAnswer(200, {"code": 0, "message": "接口调用成功", "result": text,
                                   "sign": fulu_sign(text, merchant.app_secret)})

    def _goods_row(self, merchant: Merchant, goods: Goods) -> dict[str, Any]:
        stock = merchant.stock.get(goods.product_id)
        return {"product_id": goods.product_id, "product_name": goods.name,
                "product_type": PRODUCT_TYPES[goods.kind], "face_value": float(goods.face_value),
                "purchase_price": float(merchant.price(goods)), "sales_status": "上架",
                "stock_status": "断货" if stock == 0 else "充足", "stock_num": stock, "template_id": ""}

    def _submit(self, merchant: Merchant, kind: str, biz: dict[str, Any]) -> GatewayAnswer:
        number = str(biz.get("customer_order_no") or "")
        if not number:
            raise RefusedError(1000, "缺少 customer_order_no")
        self.submissions[number] += 1
        if (merchant.app_key, number) in self.orders:
            raise RefusedError(3007, "外部订单号已存在")
        goods, account, quantity = _order_goods(kind, biz)
        stock = merchant.stock.get(goods.product_id)
        if stock is not None and stock < quantity:
            raise RefusedError(3003, "库存不足")
        unit_price = merchant.price(goods)
        ceiling = _decimal(biz.get("customer_price"))
        if ceiling is not None and unit_price > ceiling:
            raise RefusedError(3004, "商品价格高于限价")
        if self.random.random() < self._rate(merchant, "refuse_rate"):
            raise RefusedError(3005, "渠道维护，暂停下单")
        if stock is not None:
            merchant.stock[goods.product_id] = stock - quantity
        self._sequence += 1
        order = Order(
            order_id=f"{datetime.now(tz=SHANGHAI):%y%m%d%H%M%S}{self._sequence:08d}", merchant=merchant.app_key,
            customer_order_no=number, goods=goods, charge_account=account, buy_num=quantity,
            price=unit_price * quantity, create_time=now_text(),
            will_fail=self.random.random() < self._rate(merchant, "fail_rate"),
        )
        self.orders[(merchant.app_key, number)] = order
        lost = self.random.random() < self._rate(merchant, "unknown_rate")
        answer = self._ok(merchant, order.result())
        return GatewayAnswer(answer.status, answer.body, accepted=order, lost=lost)

    # --- after acceptance -----------------------------------------------------------------------------------------

    def order_finish(self, order: Order) -> dict[str, Any] | None:
        """Give the order its final state; returns the signed callback to send (None when callbacks are off or the
        merchant has no notify URL)."""
        with self._lock:
            if order.state == "processing":
                order.finish_time = now_text()
                if order.will_fail:
                    order.state = "failed"
                else:
                    order.state = "success"
                    order.operator_serial_number = "SIM" + "".join(
                        self.random.choice(string.digits) for _ in range(24))
                    if order.goods.kind == GoodsKind.CARD:
                        order.cards = [_card() for _ in range(order.buy_num)]
            merchant = self.merchants.get(order.merchant)
            if merchant is None or not merchant.notify_url or not self.knobs.callbacks_enabled:
                return None
            return self.callback_body(order, merchant)

    def callback_body(self, order: Order, merchant: Merchant) -> dict[str, Any]:
        body: dict[str, Any] = {
            "order_id": order.order_id, "charge_finish_time": order.finish_time,
            "customer_order_no": order.customer_order_no, "order_status": order.state,
            "recharge_description": "充值成功" if order.state == "success" else "充值失败",
            "product_id": order.goods.product_id, "price": f"{order.price:.4f}", "buy_num": str(order.buy_num),
            "operator_serial_number": order.operator_serial_number,
        }
        body["sign"] = fulu_sign(fulu_json(body), merchant.app_secret)
        return body

    def submissions_report(self) -> dict[str, Any]:
        with self._lock:
            states = Counter(order.state for order in self.orders.values())
            return {
                "submissions": dict(self.submissions),
                "total_submits": sum(self.submissions.values()),
                "distinct_numbers": len(self.submissions),
                "resubmitted": sorted(number for number, count in self.submissions.items() if count > 1),
                "orders": len(self.orders),
                "order_states": dict(states),
                "requests": dict(self.requests),
                "callbacks_sent": sum(order.callbacks_sent for order in self.orders.values()),
                "callbacks_acknowledged": sum(order.callbacks_acknowledged for order in self.orders.values()),
            }

    def order_report(self, customer_order_no: str) -> dict[str, Any] | None:
        with self._lock:
            for order in self.orders.values():
                if order.customer_order_no == customer_order_no:
                    return {**order.result(), "merchant": order.merchant, "callbacks_sent": order.callbacks_sent,
                            "callbacks_acknowledged": order.callbacks_acknowledged,
                            "submissions": self.submissions[customer_order_no]}
            return None


def _order_goods(kind: str, biz: dict[str, Any]) -> tuple[Goods, str, int]:
    """The goods, charge account and quantity of a submit, or the refusal."""
    if kind == GoodsKind.MOBILE:
        phone, value = str(biz.get("charge_phone") or ""), _decimal(biz.get("charge_value"))
        if not PHONE.fullmatch(phone):
            raise RefusedError(1004, "充值号码格式错误")
        goods = next((item for item in GOODS if item.kind == kind and item.face_value == value), None)
        if goods is None:
            raise RefusedError(3001, "没有这个面值的话费商品")
        return goods, phone, 1
    found = goods_by_id().get(str(biz.get("product_id") or ""))
    if found is None or found.kind != kind:
        raise RefusedError(3001, "商品不存在")
    try:
        quantity = int(biz.get("buy_num") or 1)
    except (TypeError, ValueError) as error:
        raise RefusedError(1000, "buy_num 不是整数") from error
    if not 1 <= quantity <= 100:
        raise RefusedError(1000, "buy_num 超出范围")
    account = str(biz.get("charge_account") or "")
    if kind == GoodsKind.DIRECT and not account:
        raise RefusedError(1004, "缺少充值账号")
    return found, account, quantity


def _decimal(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _card() -> dict[str, str]:
    number = "".join(secrets.choice(string.digits) for _ in range(16))
    password = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(12))
    return {"card_number": number, "card_pwd": password, "card_deadline": "2099-12-31 23:59:59"}
