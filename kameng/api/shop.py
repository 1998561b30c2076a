"""Storefront JSON: catalogue (with the buyer's own prices), checkout paid from the wallet (points may offset part
of it), order lookup (with its timeline), wallet balance, membership, points balance and statement.

A wallet checkout above the buyer's password-free limit takes the payment PIN in `pin` (kameng.accounts.paypin):
without it 403 `pin_required`, a wrong one 400 `pin_wrong` (`extra.tries_left`), a locked PIN 429 `pin_locked`
(`extra.retry_after`, `extra.unlocks_at`); nothing is written in any of these cases.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext
from ninja import Field, Router, Schema, Status

from kameng.accounts.models import User
from kameng.accounts.paypin import pin_settings_of
from kameng.catalog.pricing import POINTS_INPUT_MAX, SALES_CHANNEL_API, sku_price
from kameng.catalog.selectors import products_on_sale, skus_for_sale
from kameng.core.errors import ApplicationError, NotFoundError
from kameng.core.http import client_address
from kameng.core.ids import DATABASE_ID_MAX
from kameng.inventory.selectors import secrets_for_order, stock_by_sku
from kameng.ledger.selectors import wallet_balance
from kameng.membership.pricing import LevelInfo
from kameng.membership.selectors import membership_summary
from kameng.orders.models import Order, OrderStatus
from kameng.orders.selectors import order_of_buyer, order_timeline
from kameng.orders.services import QUANTITY_INPUT_MAX
from kameng.orders.state import KEYS_VISIBLE
from kameng.points.selectors import points_overview
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create

router = Router(tags=["shop"])


class SkuOut(Schema):
    id: int
    name: str
    price: Decimal = Field(..., description="零售价")
    your_price: Decimal = Field(..., description=(
        "您的单价（价格函数：会员价、最低售价保护）；未登录时为零售价"))
    stock: int


class ProductOut(Schema):
    id: int
    name: str
    category: str
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
    pin: str | None = Field(None, max_length=32, description=(
        "6 位支付密码：已设置支付密码的买家，钱包支付金额超过免密额度时必填；缺少时 403 pin_required，"
        "错误时 400 pin_wrong（extra.tries_left 为剩余次数），连续错误被锁定时 429 pin_locked"))


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


class OrderEventOut(Schema):
    kind: str
    text: str = Field(..., description="事件说明，按请求的语言（默认简体中文）呈现")
    from_status: str
    to_status: str
    created_at: datetime


class OrderDetailOut(OrderOut):
    timeline: list[OrderEventOut]


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
                    points_redeemed=order.points_redeemed, points_offset=order.points_offset, secrets=secrets)


@router.get("/products", response=list[ProductOut], auth=None)
def list_products(request: HttpRequest) -> list[ProductOut]:
    products = list(products_on_sale())
    sku_ids = [sku.pk for product in products for sku in product.skus.all()]
    stock = stock_by_sku(sku_ids)
    prices = _unit_prices(request, sku_ids)
    return [
        ProductOut(id=product.pk, name=product.name, category=product.category.name, skus=[
            SkuOut(id=sku.pk, name=sku.name, price=sku.price, your_price=prices.get(sku.pk, sku.price),
                   stock=stock.get(sku.pk, 0))
            for sku in product.skus.all()])
        for product in products
    ]


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
        sales_channel=SALES_CHANNEL_API, client_ip=client_address(request), points=payload.points)
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
