"""Refunding orders to the buyer's wallet, fully or in part, and notes on an order's timeline.

Refunds to the original payment channel are orchestrated by kameng.payments.refunds, which calls in here for the
order side (state, refunded amount, journal) and handles the gateway.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from kameng.core.errors import ApplicationError, ConflictError
from kameng.core.money import ZERO, money
from kameng.ledger import recipes
from kameng.ledger.services import journal_draft_post
from kameng.orders.events import OrderFact, fact
from kameng.orders.locks import order_lock
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.orders.state import transition

REFUNDABLE = {OrderStatus.DELIVERED, OrderStatus.PARTIALLY_REFUNDED, OrderStatus.AFTER_SALES}


def order_note(*, order_id: int, said: OrderFact) -> OrderEvent:
    """A buyer-readable fact on the timeline that does not change the order's state."""
    order = Order.objects.only("status").get(pk=order_id)
    return OrderEvent.objects.create(order_id=order_id, from_status=order.status, to_status=order.status,
                                     kind=said.kind, params=said.params)


def order_refundable_amount(order: Order) -> Decimal:
    return money(order.total_amount - order.refunded_amount)


def order_refund_to_wallet(*, order_id: int, amount: Decimal, reference: str, reason: str = "") -> Order:
    """Give `amount` of a delivered order back to the buyer's wallet (one journal) and move the order to
    refunded or partially refunded. Runs in the caller's transaction when there is one."""
    amount = money(amount)
    if amount <= ZERO:
        raise ApplicationError("退款金额必须大于 0", code="invalid_amount")
    with transaction.atomic():
        order = order_lock(order_id=order_id)
        if order.status not in REFUNDABLE:
            raise ConflictError(f"订单状态为「{order.get_status_display()}」，不能退款", code="not_refundable")
        remaining = order_refundable_amount(order)
        if amount > remaining:
            raise ConflictError(f"退款金额超过可退金额 ¥{remaining}", code="refund_exceeds_paid",
                                extra={"refundable": str(remaining)})
        journal_draft_post(draft=recipes.order_refund_to_wallet(
            reference=reference, memo=f"退款 {order.title}"[:200], buyer_id=order.buyer_id, amount=amount))
        order.refunded_amount = money(order.refunded_amount + amount)
        is_full = order.refunded_amount == order.total_amount
        event = transition(
            order, OrderStatus.REFUNDED if is_full else OrderStatus.PARTIALLY_REFUNDED,
            said=fact(OrderEventKind.REFUNDED if is_full else OrderEventKind.PARTIALLY_REFUNDED, amount=amount,
                      reason=reason, refund=reference),
        )
        order.save(update_fields=["status", "refunded_amount", "updated_at"])
        event.save()
    return order
