"""The order state machine: one transition table, one `transition()` that refuses illegal moves."""

from __future__ import annotations

from kameng.core.errors import ConflictError
from kameng.orders.models import Order, OrderEvent, OrderStatus

S = OrderStatus

TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING_PAYMENT: frozenset({S.PAID, S.EXPIRED, S.CANCELLED}),
    S.PAID: frozenset({S.UNDER_REVIEW, S.FULFILLING, S.DELIVERED, S.DELIVERY_FAILED}),
    S.UNDER_REVIEW: frozenset({S.FULFILLING, S.DELIVERED, S.DELIVERY_FAILED, S.REFUNDED}),
    S.FULFILLING: frozenset({S.DELIVERED, S.DELIVERY_FAILED}),
    S.DELIVERED: frozenset({S.COMPLETED, S.AFTER_SALES, S.PARTIALLY_REFUNDED, S.REFUNDED}),
    S.AFTER_SALES: frozenset({S.DELIVERED, S.REFUNDED, S.PARTIALLY_REFUNDED}),
    S.DELIVERY_FAILED: frozenset({S.REFUNDED}),
    # A second partial refund stays partially refunded.
    S.PARTIALLY_REFUNDED: frozenset({S.PARTIALLY_REFUNDED, S.REFUNDED, S.COMPLETED}),
    S.COMPLETED: frozenset(),
    S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}

# What the buyer reads on the timeline when the order enters each state.
DEFAULT_MESSAGES: dict[str, str] = {
    S.PENDING_PAYMENT: "订单已创建，等待支付",
    S.PAID: "已支付",
    S.UNDER_REVIEW: "订单审核中",
    S.FULFILLING: "正在发货",
    S.DELIVERED: "已发货，卡密已到账",
    S.COMPLETED: "订单已完成",
    S.EXPIRED: "超时未支付，订单已关闭，库存已释放",
    S.CANCELLED: "订单已取消，库存已释放",
    S.DELIVERY_FAILED: "发货失败",
    S.REFUNDED: "已退款到钱包余额",
    S.PARTIALLY_REFUNDED: "已部分退款",
    S.AFTER_SALES: "售后处理中",
}


class IllegalTransitionError(ConflictError):
    pass


def can_transition(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())


def transition(order: Order, to_status: str, *, message: str | None = None) -> OrderEvent:
    """Move the order (already locked by the caller) to `to_status` and return the unsaved event row.

    The caller saves the order and bulk-creates the events, so a checkout that passes through several states
    costs one UPDATE and one INSERT.
    """
    from_status = order.status
    if not can_transition(from_status, to_status):
        raise IllegalTransitionError(
            f"订单状态为「{OrderStatus(from_status).label}」，不能变为「{OrderStatus(to_status).label}」",
            code="illegal_transition", extra={"from": from_status, "to": to_status},
        )
    order.status = to_status
    return OrderEvent(order=order, from_status=from_status, to_status=to_status,
                      message=message or DEFAULT_MESSAGES[to_status])


def created_event(order: Order) -> OrderEvent:
    return OrderEvent(order=order, from_status="", to_status=order.status, message=DEFAULT_MESSAGES[order.status])
