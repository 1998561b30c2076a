"""What an order's timeline says: the facts written as `OrderEvent` rows (kind + params) and the one renderer that
turns them into text in the reader's language (Simplified Chinese by default, English with the switcher).

The msgids are the Chinese texts; the English catalog is kameng/orders/locale/en. Updating it (run inside
kameng/orders without DJANGO_SETTINGS_MODULE):
    django-admin makemessages -l en --no-obsolete --no-wrap && msgfmt --check -o locale/en/LC_MESSAGES/django.mo \
        locale/en/LC_MESSAGES/django.po
The compiled .mo is committed, so running the site never needs gettext.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_noop as _

from kameng.orders.models import OrderEventKind, OrderStatus

K = OrderEventKind

# Each kind's templates, the most specific first: an event is rendered with the first template whose every
# %(name)s it has a value for, so a row that lacks an optional value (an old row, a refund without a reason)
# still reads well. Each kind's last template names no value, so every event renders.
TEMPLATES: dict[str, tuple[str, ...]] = {
    K.CREATED: (_("订单已创建，等待支付"),),
    K.WALLET_PAID: (_("已使用钱包余额支付"),),
    K.PAID: (_("已通过%(channel)s支付 ¥%(amount)s"), _("已支付")),
    K.UNDER_REVIEW: (_("订单审核中"),),
    K.FULFILLING: (_("正在发货"),),
    K.FULFILLING_MANUALLY: (_("已支付，等待人工发货"),),
    K.DELIVERED: (_("已发货，卡密已到账"),),
    K.DELIVERED_MANUALLY: (_("已发货，发货说明：%(note)s"), _("已发货，请查看发货说明")),
    K.COMPLETED: (_("订单已完成"),),
    K.EXPIRED: (_("超时未支付，订单已关闭，库存已释放"),),
    K.CANCELLED: (_("订单已取消，库存已释放"),),
    K.DELIVERY_FAILED: (_("发货失败：%(reason)s"), _("发货失败")),
    K.OUT_OF_STOCK: (_("库存不足，无法发货"),),
    K.DELIVERY_FAILED_REFUNDED: (_("发货失败，¥%(amount)s 已退回钱包余额"), _("发货失败，已退回钱包余额")),
    K.REFUNDED: (_("已退款 ¥%(amount)s 到钱包余额（%(reason)s）"), _("已退款 ¥%(amount)s 到钱包余额"),
                 _("已退款到钱包余额")),
    K.PARTIALLY_REFUNDED: (_("已退款 ¥%(amount)s 到钱包余额（%(reason)s）"), _("已退款 ¥%(amount)s 到钱包余额"),
                           _("已部分退款")),
    K.AFTER_SALES: (_("已申请售后（%(reason)s），等待处理"), _("售后处理中")),
    K.AFTER_SALES_REJECTED: (_("售后申请未通过：%(reason)s"), _("售后申请未通过")),
    K.AFTER_SALES_WITHDRAWN: (_("售后申请已撤销"),),
    K.REFUNDED_TO_CHANNEL: (_("¥%(amount)s 已原路退回%(channel)s"), _("已原路退款")),
    K.CHANNEL_REFUND_FAILED: (_("原路退款失败（%(reason)s），¥%(amount)s 已留在您的钱包余额"),
                              _("原路退款失败，款项已留在您的钱包余额")),
    K.PAYMENT_TO_WALLET: (_("%(channel)s付款 ¥%(amount)s 已到账，但订单未能完成（%(reason)s），"
                            "款项已存入您的钱包余额"),
                          _("付款已到账，但订单未能完成，款项已存入您的钱包余额")),
    K.POINTS_PAID: (_("已使用积分兑换"),),
    K.POINTS_REFUNDED: (_("已退款，%(points)s 积分已退回"), _("已退款，积分已退回")),
    K.ROUTED: (_("已分配供货商 %(supplier)s（供货价 ¥%(price)s，%(reason)s）"), _("已分配供货商")),
    K.TOPUP_SUBMITTING: (_("正在向运营商发送请求"),),
    K.TOPUP_PROCESSING: (_("充值中"),),
    K.TOPUP_SUCCEEDED: (_("已到账，运营商流水号 %(operator_serial)s"), _("已到账")),
    K.TOPUP_FAILED_OVER: (_("供货商未能完成（%(reason)s），已换供货商重试"), _("已换供货商重试")),
    K.TOPUP_REVIEWED: (_("%(staff)s 核查 %(supplier)s 的直充结果：%(outcome)s，运营商流水号 %(operator_serial)s"
                         "（%(reason)s）"),
                       _("%(staff)s 核查 %(supplier)s 的直充结果：%(outcome)s（%(reason)s）"),
                       _("人工核查直充结果")),
    K.TOPUP_NO_ROUTE: (_("没有可用的供货商：%(detail)s"), _("没有可用的供货商")),
    K.RESERVATION_RELEASED: (_("支付时间将到，预留的库存已让给已付款的买家；如仍需购买，付款时将从现有库存重新分配"),),
}
_NAMES = re.compile(r"%\((\w+)\)s")

# The kind of the event a transition writes when its caller says nothing more specific.
KIND_ENTERING: dict[str, OrderEventKind] = {
    OrderStatus.PENDING_PAYMENT: K.CREATED,
    OrderStatus.PAID: K.PAID,
    OrderStatus.UNDER_REVIEW: K.UNDER_REVIEW,
    OrderStatus.FULFILLING: K.FULFILLING,
    OrderStatus.DELIVERED: K.DELIVERED,
    OrderStatus.COMPLETED: K.COMPLETED,
    OrderStatus.EXPIRED: K.EXPIRED,
    OrderStatus.CANCELLED: K.CANCELLED,
    OrderStatus.DELIVERY_FAILED: K.DELIVERY_FAILED,
    OrderStatus.REFUNDED: K.REFUNDED,
    OrderStatus.PARTIALLY_REFUNDED: K.PARTIALLY_REFUNDED,
    OrderStatus.AFTER_SALES: K.AFTER_SALES,
}


@dataclass(frozen=True)
class OrderFact:
    """What one timeline event will say: its kind and the values its text needs (strings, see `fact`)."""

    kind: OrderEventKind
    params: dict[str, Any] = field(default_factory=dict)


def fact(kind: OrderEventKind, **values: Decimal | int | str | Mapping[str, Any] | None) -> OrderFact:
    """An `OrderFact`, its values stored as JSON-safe strings (amounts as "25.00"); empty values are left out."""
    params: dict[str, Any] = {}
    for name, value in values.items():
        if value is None or value == "":
            continue
        if isinstance(value, Mapping):
            params[name] = {key: str(item) for key, item in value.items()}
        else:
            params[name] = str(value)
    return OrderFact(kind=kind, params=params)


@dataclass(frozen=True)
class GatewayPayment:
    """A payment at a gateway that pays an order (through the wallet it landed in first)."""

    channel: str  # the channel's name, as the buyer saw it when paying
    amount: Decimal
    number: str

    def paid(self) -> OrderFact:
        return fact(K.PAID, channel=self.channel, amount=self.amount, payment=self.number)

    def not_taken(self, *, reason: str, reason_params: Mapping[str, Any] | None = None) -> OrderFact:
        """The money arrived but the order could not take it (`reason` a service error's template): it stays in
        the wallet."""
        return fact(K.PAYMENT_TO_WALLET, channel=self.channel, amount=self.amount, payment=self.number,
                    reason=reason, reason_params=reason_params or None)


def note(text: str) -> OrderFact:
    """A plain note, shown as it is."""
    return fact(K.NOTE, text=text)


def event_text(*, kind: str, params: Mapping[str, Any]) -> str:
    """The event's text in the active language."""
    templates = TEMPLATES.get(kind)
    if templates is None:  # a note, or a kind this code does not know (yet): its text as it is
        return _translated(str(params.get("text", "")))
    present = {name for name, value in params.items() if value not in (None, "")}
    template = next(template for template in templates if _names(template) <= present)
    return gettext(template) % {name: _value(name, params) for name in _names(template)}


@cache
def _names(template: str) -> frozenset[str]:
    return frozenset(_NAMES.findall(template))


def _value(name: str, params: Mapping[str, Any]) -> str:
    """A value as the reader sees it: a reason that is a service error is translated, then filled in (as the
    storefront shows errors); a catalog text (a status label) is translated; anything else goes in as it is."""
    value = str(params[name])
    reason_params = params.get("reason_params")
    if name == "reason" and isinstance(reason_params, Mapping):
        try:
            return gettext(value) % {key: _translated(str(item)) for key, item in reason_params.items()}
        except (KeyError, ValueError, TypeError):  # a template and values that do not fit: show it unfilled
            return value
    return _translated(value)


def _translated(text: str) -> str:
    # gettext("") answers the catalog's header.
    return gettext(text) if text else ""
