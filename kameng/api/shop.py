"""Storefront JSON: catalogue (with the buyer's own prices, and a direct top-up's form), checkout paid from the
wallet (points may offset part of it; a direct top-up takes `recharge_account` and/or `topup`), order lookup (with
its timeline, the top-up target masked), after-sales requests (售后: ask, withdraw, list; kameng.after_sales),
wallet balance, membership, points balance and statement.

A wallet checkout above the buyer's password-free limit takes the payment PIN in `pin` (kameng.accounts.paypin):
without it 403 `pin_required`, a wrong one 400 `pin_wrong` (`extra.tries_left`), a locked PIN 429 `pin_locked`
(`extra.retry_after`, `extra.unlocks_at`); nothing is written in any of these cases.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext
from ninja import Field, Router, Schema, Status

from kameng.accounts.models import User
from kameng.accounts.paypin import pin_settings_of
from kameng.after_sales.models import NOTE_MAX_LENGTH, AfterSalesReason, AfterSalesRequest, AfterSalesStatus
from kameng.after_sales.selectors import after_sales_requests_of_buyer
from kameng.after_sales.services import after_sales_request_create, after_sales_request_withdraw
from kameng.catalog.models import DeliveryKind, Product
from kameng.catalog.pricing import POINTS_INPUT_MAX, SALES_CHANNEL_API, sku_price
from kameng.catalog.selectors import products_on_sale, skus_for_sale, topup_form_for_sku
from kameng.catalog.topup_forms import form_primary_field, topup_form_of
from kameng.core.device import risk_device_id
from kameng.core.errors import ApplicationError, NotFoundError
from kameng.core.http import client_address
from kameng.core.ids import DATABASE_ID_MAX, is_database_id
from kameng.inventory.selectors import secrets_for_order
from kameng.ledger.selectors import wallet_balance
from kameng.membership.pricing import LevelInfo
from kameng.membership.selectors import membership_summary
from kameng.orders.models import Order, OrderStatus
from kameng.orders.selectors import order_of_buyer, order_timeline, order_topup_target_lines
from kameng.orders.services import QUANTITY_INPUT_MAX
from kameng.orders.state import KEYS_VISIBLE
from kameng.points.selectors import points_overview
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from kameng.suppliers.upstream_cards import card_key_stock

router = Router(tags=["shop"])


class SkuOut(Schema):
    id: int
    name: str
    price: Decimal = Field(..., description="零售价")
    your_price: Decimal = Field(..., description=(
        "您的单价（价格函数：会员价、最低售价保护）；未登录时为零售价"))
    stock: int = Field(..., description=(
        "卡密商品：平台库存卡密数加上游供货商按您的价格可供的数量；直充、人工发货等按需履约的商品不计库存（0）"))


class TopupFieldOut(Schema):
    """One field of a direct top-up product's form (kameng.catalog.topup_forms): render it, send its value in
    `topup` under `name`."""

    name: str
    label: str
    kind: str = Field(..., description="phone（11 位中国大陆手机号）| text | select")
    required: bool
    options: list[str] | None = Field(None, description="select 的可选值")
    max_length: int | None = Field(None, description="text 的最大长度")
    pattern: str | None = Field(None, description="text 须整体匹配的正则表达式")
    carriers: list[str] | None = Field(None, description="phone 仅支持的运营商：移动、联通、电信、广电")


class ProductOut(Schema):
    id: int
    name: str
    category: str
    delivery_kind: str = Field(..., description="card_key（卡密）| direct_topup（直充）| manual（人工发货）")
    topup_form: list[TopupFieldOut] = Field(..., description=(
        "直充商品下单时要填写的字段（topup 对象的键）；其他商品为空"))
    skus: list[SkuOut]


class CheckoutIn(Schema):
    sku_id: int = Field(..., ge=1, le=DATABASE_ID_MAX)
    quantity: int = Field(1, ge=1, le=QUANTITY_INPUT_MAX)
    request_id: str | None = Field(None, max_length=64, description=(
        "客户端请求号：重复提交返回同一订单（200）；同一请求号换了规格或数量则 409 request_id_reused"))
    pay_with_wallet: bool = Field(True, description=(
        "false：订单待支付并保留库存；每位买家同时最多 KAMENG_UNPAID_ORDERS_PER_BUYER 笔，"
        "超出则 409 unpaid_orders_limit"))
    points: int = Field(0, ge=0, le=POINTS_INPUT_MAX, description=(
        "用积分抵扣现金（默认 100 积分 = ¥1，最多抵扣订单金额的 KAMENG_POINTS_REDEEM_MAX_SHARE）：多给的不会扣；"
        "须余额支付（pay_with_wallet=false 时 400 points_need_wallet），积分不足 400 insufficient_points"))
    recharge_account: str | None = Field(None, max_length=200, description=(
        "直充：充值账号或手机号，即商品表单的主字段（第一个 phone 字段，否则第一个字段）；也可放在 topup 里"))
    topup: dict[str, str] | None = Field(None, max_length=20, description=(
        "直充：商品表单（GET /products/{id} 的 topup_form）各字段的值，键为字段 name；填写有误时 400，"
        "extra.field 为出错的字段。卡密等其他商品不能带此项（400 buyer_input_unexpected）"))
    pin: str | None = Field(None, max_length=32, description=(
        "6 位支付密码：已设置支付密码的买家，钱包支付金额超过免密额度时必填；缺少时 403 pin_required，"
        "错误时 400 pin_wrong（extra.tries_left 为剩余次数），连续错误被锁定时 429 pin_locked"))


class TopupTargetOut(Schema):
    name: str
    label: str
    value: str = Field(..., description="已脱敏：手机号 138****1234，账号仅显示首尾")


class OrderOut(Schema):
    number: str
    status: str
    status_display: str
    title: str
    quantity: int
    total_amount: Decimal
    points_redeemed: int
    points_offset: Decimal
    secrets: list[str]
    topup_target: list[TopupTargetOut] = Field(..., description="直充订单的充值信息（已脱敏）；其他订单为空")


class OrderEventOut(Schema):
    kind: str
    text: str = Field(..., description=(
        "事件说明，按请求的语言（默认简体中文）呈现；直充的进度为 topup_submitting（正在向运营商发送请求）、"
        "topup_processing（充值中）、topup_succeeded（已到账，含运营商流水号）"))
    from_status: str
    to_status: str
    created_at: datetime


class OrderDetailOut(OrderOut):
    timeline: list[OrderEventOut]


class AfterSalesIn(Schema):
    reason: str = Field(..., max_length=20, description=(
        "售后原因：key_invalid（卡密无效）| key_used（卡密已被使用）| not_credited（充值未到账）| "
        "other（其他，须填 note）"))
    note: str = Field("", max_length=NOTE_MAX_LENGTH, description="补充说明，最多 500 字")


class AfterSalesOut(Schema):
    number: str
    order_number: str
    reason: str
    reason_display: str
    note: str
    amount: Decimal = Field(..., description="申请时订单的可退金额")
    status: str = Field(..., description="pending（待处理）| approved（已同意，已退款）| rejected（已拒绝）| "
                                         "withdrawn（已撤销）")
    status_display: str
    staff_reply: str = Field(..., description="客服的拒绝原因（买家可见）")
    refund_number: str = Field(..., description="同意后的退款单号；未退款为空")
    refunded_amount: Decimal | None
    created_at: datetime
    decided_at: datetime | None


class WalletOut(Schema):
    balance: Decimal


class PointsMovementOut(Schema):
    created_at: datetime
    kind: str = Field(..., description="记账类型代码：points_earn, points_earn_reversal, points_redeem, ...")
    kind_display: str
    order_number: str = Field(..., description="所属订单号；积分过期等不属于订单的为空")
    points: int = Field(..., description="正数为增加，负数为减少")


class PointsOut(Schema):
    balance: int
    statement: list[PointsMovementOut]


class MemberLevelOut(Schema):
    rank: int
    name: str
    threshold: Decimal = Field(..., description="累计消费门槛（元）")
    discount_rate: Decimal = Field(..., description="折扣率，0.95 即 95 折")
    benefits: list[str]


class MembershipOut(Schema):
    level: MemberLevelOut | None
    spend: Decimal = Field(..., description="累计消费（已完成订单，扣除退款）")
    next_level: MemberLevelOut | None
    to_next_level: Decimal = Field(..., description="升到下一级还需消费的金额")
    progress_percent: int
    levels: list[MemberLevelOut]


def _user(request: HttpRequest) -> User:
    user = request.user  # authenticated on these routes (django_auth), loaded by it: reading it costs no query
    assert isinstance(user, User)
    return user


def _user_id(request: HttpRequest) -> int:
    # Every route here except the catalogue requires a session (django_auth), so the user is authenticated.
    user_id = request.user.pk
    assert user_id is not None
    return int(user_id)


def _order_out(order: Order, secrets: list[str]) -> OrderOut:
    return OrderOut(number=order.number, status=order.status, status_display=OrderStatus(order.status).label,
                    title=order.title, quantity=order.quantity, total_amount=order.total_amount,
                    points_redeemed=order.points_redeemed, points_offset=order.points_offset, secrets=secrets,
                    topup_target=[TopupTargetOut(name=line.name, label=line.label, value=line.value)
                                  for line in order_topup_target_lines(order=order)])


@router.get("/products", response=list[ProductOut], auth=None)
def list_products(request: HttpRequest) -> list[ProductOut]:
    return _products_out(request, list(products_on_sale()))


@router.get("/products/{product_id}", response=ProductOut, auth=None)
def get_product(request: HttpRequest, product_id: int) -> ProductOut:
    """One product on sale, with the top-up form a direct top-up asks for (an app renders it from this)."""
    product = products_on_sale().filter(pk=product_id).first() if is_database_id(product_id) else None
    if product is None:
        raise NotFoundError("商品不存在或已下架", code="product_not_found")
    return _products_out(request, [product])[0]


def _products_out(request: HttpRequest, products: list[Product]) -> list[ProductOut]:
    sku_ids = [sku.pk for product in products for sku in product.skus.all()]
    prices = _unit_prices(request, sku_ids)
    # A card-key SKU's keys on the platform plus what its upstream offers sell at this buyer's price (a visitor's:
    # retail), as the checkout would route them; made-to-order kinds hold no stock.
    card_skus = [sku.pk for product in products if product.delivery_kind == DeliveryKind.CARD_KEY
                 for sku in product.skus.all()]
    stock = card_key_stock(unit_prices={sku_id: prices.get(sku_id) for sku_id in card_skus})
    return [
        ProductOut(id=product.pk, name=product.name, category=product.category.name,
                   delivery_kind=product.delivery_kind,
                   topup_form=[TopupFieldOut(**field) for field in _topup_form(product)], skus=[
            SkuOut(id=sku.pk, name=sku.name, price=sku.price, your_price=prices.get(sku.pk, sku.price),
                   stock=stock.get(sku.pk, 0))
            for sku in product.skus.all()])
        for product in products
    ]


def _topup_form(product: Product) -> list[dict[str, Any]]:
    form = topup_form_of(delivery_kind=product.delivery_kind, template=product.topup_form)
    return [{key: value for key, value in field.items() if key != "pattern_message"} for field in form]


def _buyer_input(payload: CheckoutIn) -> dict[str, str] | None:
    """The direct top-up input of a checkout: `topup`, with `recharge_account` as its form's main field. None when
    neither is given (a card-key checkout costs no look-up of the product's form)."""
    if payload.recharge_account is None and payload.topup is None:
        return None
    buyer_input = dict(payload.topup or {})
    if payload.recharge_account is not None:
        found = topup_form_for_sku(sku_id=payload.sku_id)
        primary = form_primary_field(found[1]) if found else ""
        if not primary:
            raise ApplicationError("该商品不需要填写充值信息", code="buyer_input_unexpected")
        given = buyer_input.get(primary)
        if given is not None and given.strip() != payload.recharge_account.strip():
            raise ApplicationError("recharge_account 与 topup.%(field)s 不一致，请只填写一处",
                                   code="recharge_account_conflict", extra={"field": primary},
                                   params={"field": primary})
        buyer_input[primary] = payload.recharge_account
    return buyer_input


def _unit_prices(request: HttpRequest, sku_ids: list[int]) -> dict[int, Decimal]:
    """One unit of each SKU for the logged-in buyer, from the price function (none for a visitor)."""
    if not request.user.is_authenticated:
        return {}
    buyer_id = _user_id(request)
    prices = {}
    for sku_id, sku in skus_for_sale(sku_ids=sku_ids).items():
        try:
            prices[sku_id] = sku_price(sku=sku, buyer_id=buyer_id, quantity=1,
                                       sales_channel=SALES_CHANNEL_API).unit_price
        except ApplicationError:  # not buyable at any price now: the order would say why
            continue
    return prices


@router.post("/orders", response={200: OrderOut, 201: OrderOut})
def create_order(request: HttpRequest, response: HttpResponse, payload: CheckoutIn) -> Status:
    result = purchase_create(
        buyer_id=_user_id(request), sku_id=payload.sku_id, quantity=payload.quantity, request_id=payload.request_id,
        payment=PaymentChoice(PayBy.WALLET if payload.pay_with_wallet else PayBy.RESERVE, pin=payload.pin,
                              pin_settings=pin_settings_of(_user(request))),
        sales_channel=SALES_CHANNEL_API, client_ip=client_address(request), points=payload.points,
        device_id=risk_device_id(request),
        buyer_input=_buyer_input(payload))
    _never_stored(response)
    return Status(201 if result.created else 200, _order_out(result.order, result.secrets))


@router.get("/orders/{number}", response=OrderDetailOut)
def get_order(request: HttpRequest, response: HttpResponse, number: str) -> OrderDetailOut:
    order = order_of_buyer(buyer_id=_user_id(request), number=number)
    if order is None:
        raise NotFoundError("订单不存在", code="order_not_found")
    secrets = secrets_for_order(order_id=order.pk) if order.status in KEYS_VISIBLE else []
    timeline = [OrderEventOut(kind=event.kind, text=event.message, from_status=event.from_status,
                              to_status=event.to_status, created_at=event.created_at)
                for event in order_timeline(order_id=order.pk)]
    _never_stored(response)
    return OrderDetailOut(**_order_out(order, secrets).model_dump(), timeline=timeline)


def _after_sales_out(row: AfterSalesRequest, order_number: str) -> AfterSalesOut:
    refund = row.refund
    return AfterSalesOut(number=row.number, order_number=order_number, reason=row.reason,
                         reason_display=gettext(AfterSalesReason(row.reason).label), note=row.note,
                         amount=row.amount, status=row.status,
                         status_display=gettext(AfterSalesStatus(row.status).label), staff_reply=row.staff_reply,
                         refund_number=refund.number if refund else "",
                         refunded_amount=refund.amount if refund else None, created_at=row.created_at,
                         decided_at=row.decided_at)


@router.post("/orders/{number}/after-sales", response={201: AfterSalesOut})
def create_after_sales(request: HttpRequest, number: str, payload: AfterSalesIn) -> Status:
    """申请售后 on one of the buyer's delivered orders (another buyer's order is 404). Refused: 409
    `after_sales_open` (one pending per order), `after_sales_window_passed`, `after_sales_not_allowed`; 400
    `reason_required`, `note_required`, `note_too_long`; risk control 403 `risk_blocked` (503 `risk_unavailable`)."""
    row = after_sales_request_create(
        buyer_id=_user_id(request), order_number=number, reason=payload.reason, note=payload.note,
        client_ip=client_address(request), device_id=risk_device_id(request))
    return Status(201, _after_sales_out(row, number))


@router.post("/orders/{number}/after-sales/withdraw", response=AfterSalesOut)
def withdraw_after_sales(request: HttpRequest, number: str) -> AfterSalesOut:
    """撤销 the pending after-sales request of the buyer's order (409 `after_sales_none_open` if there is none)."""
    return _after_sales_out(after_sales_request_withdraw(buyer_id=_user_id(request), order_number=number), number)


@router.get("/after-sales", response=list[AfterSalesOut])
def list_after_sales(request: HttpRequest) -> list[AfterSalesOut]:
    """我的售后: the buyer's requests, newest first (at most 100), with staff's answer."""
    return [_after_sales_out(row, row.order.number)
            for row in after_sales_requests_of_buyer(buyer_id=_user_id(request))[:100]]


def _never_stored(response: HttpResponse) -> None:
    """An order answer may carry card keys: no browser, proxy or CDN may keep a copy."""
    patch_cache_control(response, no_store=True, private=True)


@router.get("/wallet", response=WalletOut)
def get_wallet(request: HttpRequest) -> WalletOut:
    return WalletOut(balance=wallet_balance(user_id=_user_id(request)))


@router.get("/points", response=PointsOut)
def get_points(request: HttpRequest) -> PointsOut:
    overview = points_overview(user_id=_user_id(request))
    return PointsOut(balance=overview.balance, statement=[
        PointsMovementOut(created_at=row["created_at"], kind=row["journal_kind"], kind_display=gettext(row["kind"]),
                          order_number=row["order_number"], points=row["points"])
        for row in overview.statement])


def _level_out(level: LevelInfo) -> MemberLevelOut:
    return MemberLevelOut(rank=level.rank, name=level.name, threshold=level.threshold,
                          discount_rate=level.discount_rate,
                          benefits=[line.strip() for line in level.benefits.splitlines() if line.strip()])


@router.get("/membership", response=MembershipOut)
def get_membership(request: HttpRequest) -> MembershipOut:
    """The buyer's level, cumulative spend, progress to the next level and every level's benefits."""
    summary = membership_summary(user_id=_user_id(request))
    return MembershipOut(level=_level_out(summary.level) if summary.level else None, spend=summary.spend,
                         next_level=_level_out(summary.next_level) if summary.next_level else None,
                         to_next_level=summary.to_next_level, progress_percent=summary.progress_percent,
                         levels=[_level_out(level) for level in summary.levels])
