"""The routes of the Open API v1 (the exact contract of issue 11; other tools are built against these names).

- GET /products, GET /products/{sku_id}: SKUs on sale at the caller's price (the one price function, sales channel
  "openapi": the reseller's tier rule applies there), a card-key SKU's stock counting its upstream offers too
  (kameng.suppliers.upstream_cards.card_key_stock: what routing would sell at that price);
- GET /balance: the reseller's wallet;
- POST /orders: buy from the wallet, password-free by API key (the signature is the authorisation), idempotent by
  request_no (201 new, 200 the same request again, 409 the same request_no with another body);
- GET /orders/{order_no}, GET /orders?request_no=…: the reseller's own Open API orders only (404 otherwise).
Handlers validate, call one service and shape the answer; amounts are strings ("123.45").
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control
from ninja import Field, Query, Router, Schema, Status

from kameng.accounts.paypin import NO_PIN
from kameng.catalog.models import DeliveryKind
from kameng.catalog.pricing import SALES_CHANNEL_OPENAPI, sku_price
from kameng.catalog.selectors import products_on_sale, skus_for_sale, topup_form_for_sku
from kameng.catalog.topup_forms import form_primary_field
from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.core.http import client_address
from kameng.core.ids import DATABASE_ID_MAX, is_database_id
from kameng.inventory.selectors import secrets_for_order
from kameng.ledger.selectors import wallet_balance
from kameng.openapi.auth import Caller
from kameng.orders.models import Order
from kameng.orders.services import QUANTITY_INPUT_MAX
from kameng.orders.state import KEYS_VISIBLE
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from kameng.resellers.notify import order_notify_schedule
from kameng.resellers.openapi_orders import (
    NOTIFY_URL_MAX,
    notify_url_check,
    openapi_body_digest,
    openapi_order_by_number,
    openapi_order_by_request,
    openapi_order_conflict_check,
    openapi_order_record,
    openapi_request_find,
)
from kameng.suppliers.upstream_cards import card_key_stock

router = Router(tags=["open api v1"])

REQUEST_NO_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
REQUEST_NO_RULE = "只能包含字母、数字、_ 和 -，长度 1–64"
# What a 422 says of a field that breaks its rule, in place of its length or pattern (kameng.core.input_errors).
FIELD_RULES = {"request_no": REQUEST_NO_RULE}
RECHARGE_ACCOUNT_MAX = 200
# Made to order (direct top-up, manual delivery): no card-key stock to run out of.
ON_DEMAND_STOCK = 9999
PAYMENT = PaymentChoice(PayBy.WALLET, pin_settings=NO_PIN)  # password-free: the signed request authorises it


class ProductOut(Schema):
    sku_id: int
    product_name: str
    sku_name: str
    price: str = Field(..., description="您的单价（元，两位小数的字符串），按代理等级计算")
    stock: int = Field(..., description=(
        f"卡密商品为可售数量：平台库存卡密数加上游供货商按您的价格可供的数量；直充、人工发货等按需履约的商品为 "
        f"{ON_DEMAND_STOCK}"))
    delivery_kind: str = Field(..., description="card_key（卡密）| direct_topup（直充）| manual（人工发货）")


class BalanceOut(Schema):
    balance: str = Field(..., description="钱包余额（元，两位小数的字符串）")


class OrderIn(Schema):
    request_no: str = Field(..., min_length=1, max_length=64, pattern=REQUEST_NO_PATTERN, description=(
        "您的请求号（1–64 位字母、数字、_ 或 -），每个代理唯一：同一请求重发返回同一订单（200），"
        "同一 request_no 换了内容则 409 request_no_conflict"))
    sku_id: int = Field(..., strict=True, ge=1, le=DATABASE_ID_MAX)
    quantity: int = Field(..., strict=True, ge=1, le=QUANTITY_INPUT_MAX)
    recharge_account: str | None = Field(None, max_length=RECHARGE_ACCOUNT_MAX, description=(
        "直充商品的充值账号或手机号（商品充值表单的主字段）；卡密商品不要填写"))
    notify_url: str | None = Field(None, max_length=NOTIFY_URL_MAX, description=(
        "订单完成或失败时回调的地址（生产环境须为 https，且不能指向本机、内网或保留地址）"))


class OrderOut(Schema):
    order_no: str
    request_no: str
    sku_id: int
    quantity: int
    amount: str = Field(..., description="订单金额（元，两位小数的字符串），已从钱包扣除")
    status: str = Field(..., description=(
        "delivered（已发货）| paid / fulfilling（处理中）| delivery_failed（发货失败）| refunded 等"))
    keys: list[str] = Field(..., description="已发货的卡密明文；未发货时为空")


class ErrorOut(Schema):
    code: str
    message: str


ERRORS: dict[int, Any] = dict.fromkeys((400, 401, 403, 404, 422, 429), ErrorOut)


def _caller(request: HttpRequest) -> Caller:
    caller = request.auth  # type: ignore[attr-defined]  # set by SignedRequest on every route
    assert isinstance(caller, Caller)
    return caller


@router.get("/products", response={200: list[ProductOut], **ERRORS})
def list_products(request: HttpRequest) -> list[ProductOut]:
    """在售规格及您的价格、库存。"""
    sku_ids = [sku.pk for product in products_on_sale() for sku in product.skus.all()]
    return _products_out(_caller(request), sku_ids)


@router.get("/products/{sku_id}", response={200: ProductOut, **ERRORS})
def get_product(request: HttpRequest, sku_id: int) -> ProductOut:
    """一个在售规格。"""
    found = []
    if is_database_id(sku_id) and products_on_sale().filter(skus__pk=sku_id).exists():
        found = _products_out(_caller(request), [sku_id])
    if not found:
        raise NotFoundError("商品不存在或已下架", code="sku_not_found")
    return found[0]


def _products_out(caller: Caller, sku_ids: list[int]) -> list[ProductOut]:
    skus = skus_for_sale(sku_ids=sku_ids)
    prices: dict[int, Decimal] = {}
    for sku_id in sku_ids:
        sku = skus.get(sku_id)
        if sku is None:
            continue
        try:
            prices[sku_id] = sku_price(sku=sku, buyer_id=caller.user_id, quantity=1,
                                       sales_channel=SALES_CHANNEL_OPENAPI).unit_price
        except ApplicationError:  # no price the rules allow now: not buyable, so not listed
            continue
    # A card-key SKU's keys on the platform plus what its upstream offers sell at this caller's price.
    stock = card_key_stock(unit_prices={sku_id: price for sku_id, price in prices.items()
                                        if skus[sku_id].delivery_kind == DeliveryKind.CARD_KEY})
    return [ProductOut(sku_id=sku_id, product_name=skus[sku_id].product_name, sku_name=skus[sku_id].sku_name,
                       price=str(price), stock=stock.get(sku_id, ON_DEMAND_STOCK),
                       delivery_kind=skus[sku_id].delivery_kind) for sku_id, price in prices.items()]


@router.get("/balance", response={200: BalanceOut, **ERRORS})
def get_balance(request: HttpRequest, response: HttpResponse) -> BalanceOut:
    """钱包余额。"""
    _never_stored(response)
    return BalanceOut(balance=str(wallet_balance(user_id=_caller(request).user_id)))


@router.post("/orders", response={200: OrderOut, 201: OrderOut, 402: ErrorOut, 409: ErrorOut, **ERRORS})
def create_order(request: HttpRequest, response: HttpResponse, payload: OrderIn) -> Status:
    """下单并从钱包扣款（免密）。卡密商品有库存时立即返回卡密；余额不足 402 insufficient_balance，
    库存不足 409 sold_out。"""
    caller = _caller(request)
    _never_stored(response)
    notify_url = notify_url_check(payload.notify_url)
    digest = openapi_body_digest(sku_id=payload.sku_id, quantity=payload.quantity,
                                 recharge_account=payload.recharge_account, notify_url=notify_url)
    found = openapi_request_find(buyer_id=caller.user_id, request_no=payload.request_no)
    if found is not None and found.body_digest is not None:  # the same request again: no checkout
        openapi_order_conflict_check(found.body_digest, body_digest=digest)
        return Status(200, _order_out(Order.objects.get(pk=found.order_id)))
    try:
        result = purchase_create(
            buyer_id=caller.user_id, sku_id=payload.sku_id, quantity=payload.quantity, payment=PAYMENT,
            request_id=payload.request_no, sales_channel=SALES_CHANNEL_OPENAPI, client_ip=client_address(request),
            buyer_input=_buyer_input(payload), request_id_unused=found is None)
    except ConflictError as error:
        if error.code == "request_id_reused":
            raise ConflictError("该 request_no 已用于另一笔订单（请求内容不同）", code="request_no_conflict") from error
        raise
    created = openapi_order_record(order=result.order, reseller_id=caller.reseller_id, api_key_pk=caller.key.pk,
                                   request_no=payload.request_no, body_digest=digest, notify_url=notify_url)
    if created and notify_url:  # without a notify_url there is nothing to schedule: no query
        order_notify_schedule(order_id=result.order.pk)
    return Status(201 if result.created else 200, _order_out(result.order, result.secrets))


def _buyer_input(payload: OrderIn) -> dict[str, str] | None:
    """recharge_account as the direct top-up form's main field (as the storefront JSON API maps it)."""
    if payload.recharge_account is None:
        return None
    found = topup_form_for_sku(sku_id=payload.sku_id)
    if found is None:
        raise NotFoundError("商品不存在或已下架", code="sku_not_found")
    delivery_kind, form = found
    primary = form_primary_field(form) if delivery_kind == DeliveryKind.DIRECT_TOPUP else ""
    if not primary:
        if not payload.recharge_account.strip():
            return None
        raise ApplicationError("该商品不是直充商品，不需要填写 recharge_account", code="buyer_input_unexpected")
    return {primary: payload.recharge_account}


@router.get("/orders/{order_no}", response={200: OrderOut, **ERRORS})
def get_order(request: HttpRequest, response: HttpResponse, order_no: str) -> OrderOut:
    """按订单号查询自己的订单。"""
    _never_stored(response)
    order = openapi_order_by_number(buyer_id=_caller(request).user_id, order_no=order_no)
    if order is None:
        raise NotFoundError("订单不存在", code="order_not_found")
    return _order_out(order)


class OrderQuery(Schema):
    request_no: str = Field(..., min_length=1, max_length=64, pattern=REQUEST_NO_PATTERN)


@router.get("/orders", response={200: OrderOut, **ERRORS})
def find_order(request: HttpRequest, response: HttpResponse, query: Query[OrderQuery]) -> OrderOut:
    """按 request_no 查询自己的订单。"""
    _never_stored(response)
    order = openapi_order_by_request(buyer_id=_caller(request).user_id, request_no=query.request_no)
    if order is None:
        raise NotFoundError("订单不存在", code="order_not_found")
    return _order_out(order)


def _order_out(order: Order, keys: list[str] | None = None) -> OrderOut:
    if keys is None:
        keys = secrets_for_order(order_id=order.pk) if order.status in KEYS_VISIBLE else []
    return OrderOut(order_no=order.number, request_no=order.request_id or "", sku_id=order.sku_id,
                    quantity=order.quantity, amount=str(order.total_amount), status=order.status, keys=keys)


def _never_stored(response: HttpResponse) -> None:
    """An answer may carry card keys or a balance: no proxy or cache may keep a copy."""
    patch_cache_control(response, no_store=True, private=True)
