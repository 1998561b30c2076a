"""The order state machine: one transition table, one `transition()` that refuses illegal moves."""

from __future__ import annotations

from kameng.core.errors import ConflictError
from kameng.orders.aftercare import AftercareEvent, order_aftercare
from kameng.orders.events import KIND_ENTERING, OrderFact
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus

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

# Status groups: what the buyer's pages and the API decide by, one answer for all of them.
# The buyer holds the delivered keys: after delivery, while an after-sales report is handled, and after a partial
# refund (they keep the keys not refunded). Not once fully refunded: the money came back instead.
KEYS_VISIBLE: frozenset[str] = frozenset({S.DELIVERED, S.COMPLETED, S.AFTER_SALES, S.PARTIALLY_REFUNDED})
# Can still change on its own (payment elsewhere, expiry, fulfilment): pages poll these.
IN_PROGRESS: frozenset[str] = frozenset({S.PENDING_PAYMENT, S.PAID, S.UNDER_REVIEW, S.FULFILLING})
# Never paid: a gateway payment that reached such an order could not pay it and waits in the wallet.
UNPAID: frozenset[str] = frozenset({S.PENDING_PAYMENT, S.EXPIRED, S.CANCELLED})
# Entering these tells the aftercare listeners (membership, points, the delivery e-mail) after commit.
AFTERCARE: dict[str, AftercareEvent] = {S.DELIVERED: AftercareEvent.DELIVERED, S.REFUNDED: AftercareEvent.REFUNDED,
                                        S.PARTIALLY_REFUNDED: AftercareEvent.REFUNDED}


class IllegalTransitionError(ConflictError):
    pass


def can_transition(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())


def transition(order: Order, to_status: str, *, said: OrderFact | None = None) -> OrderEvent:
    """Move the order (already locked by the caller) to `to_status` and return the unsaved event row, which says
    `said` (by default what entering that status says, with no values).

    The caller saves the order and bulk-creates the events, so a checkout that passes through several states
    costs one UPDATE and one INSERT. Entering a status of `AFTERCARE` tells the aftercare listeners once the
    caller's transaction commits.
    """
    from_status = order.status
    if not can_transition(from_status, to_status):
        raise IllegalTransitionError(
            "订单状态为「%(from)s」，不能变为「%(to)s」", code="illegal_transition",
            extra={"from": from_status, "to": to_status},
            params={"from": str(OrderStatus(from_status).label), "to": str(OrderStatus(to_status).label)},
        )
    order.status = to_status
    if to_status in AFTERCARE:
        order_aftercare(order_ids=[order.pk], event=AFTERCARE[to_status])
    said = said or OrderFact(kind=KIND_ENTERING[to_status])
    return OrderEvent(order=order, from_status=from_status, to_status=to_status, kind=said.kind, params=said.params)


def created_event(order: Order) -> OrderEvent:
    return OrderEvent(order=order, from_status="", to_status=order.status, kind=OrderEventKind.CREATED, params={})
