"""Reads of orders for the buyer and staff: the buyer's timeline leaves out the staff-only events, and a direct
top-up's target is only ever shown masked."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db.models import Q, QuerySet, Sum

from kameng.catalog.topup_forms import TargetLine, topup_form_of, topup_target_lines, topup_target_loads
from kameng.core.errors import ApplicationError
from kameng.core.ids import is_public_number
from kameng.core.money import ZERO, money
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus

# Timeline events for staff only: which supplier an order was routed to, at what cost and why, a failover to the
# next one, why no supplier could take it, and staff's settling of an attempt flagged for review. The buyer's pages
# and API never show them (the admin's order page does, from the rows themselves).
STAFF_ONLY_EVENT_KINDS: frozenset[str] = frozenset({OrderEventKind.ROUTED, OrderEventKind.TOPUP_FAILED_OVER,
                                                    OrderEventKind.TOPUP_REVIEWED, OrderEventKind.TOPUP_NO_ROUTE})


def orders_of_buyer(*, buyer_id: int) -> QuerySet[Order]:
    return Order.objects.filter(buyer_id=buyer_id).select_related("sku__product").order_by("-id")


def order_of_buyer(*, buyer_id: int, number: str) -> Order | None:
    if not is_public_number(number):
        return None
    return Order.objects.filter(buyer_id=buyer_id, number=number).select_related("sku__product").first()


def order_timeline(*, order_id: int) -> QuerySet[OrderEvent]:
    """The order's timeline as its buyer sees it: without the staff-only events."""
    return OrderEvent.objects.filter(order_id=order_id).exclude(kind__in=STAFF_ONLY_EVENT_KINDS).order_by("id")


def order_last_event_id(*, order_id: int) -> int:
    """The id of the order's newest timeline event the buyer sees (0 if none): a page showing the timeline knows
    from it whether the order moved on since it was drawn."""
    return order_timeline(order_id=order_id).order_by("-id").values_list("id", flat=True).first() or 0


def order_topup_target_lines(*, order: Order) -> list[TargetLine]:
    """A direct top-up order's target as pages, lists and the back office show it: masked (138****1234, a game
    account partly), labelled by its product's form ([] for other orders)."""
    target = topup_target_loads(order.topup_target)
    if not target:
        return []
    product = order.sku.product
    try:
        form = topup_form_of(delivery_kind=product.delivery_kind, template=product.topup_form)
    except ApplicationError:  # a template broken since: the values are still shown, under their names
        form = []
    return topup_target_lines(form=form, target=target)


def buyer_game_goods_spent(*, buyer_id: int, since: datetime) -> Decimal:
    """What the buyer spent on game goods (游戏类商品) since `since`, for the minors' monthly limits (kameng.risk):
    orders paid since then, plus orders created since then still waiting for payment (they will be paid without
    another order check). Refunds do not give the allowance back. One query on the buyer's orders index."""
    total = (Order.objects.filter(buyer_id=buyer_id, sku__product__is_game_goods=True)
             .filter(Q(paid_at__gte=since) | Q(status=OrderStatus.PENDING_PAYMENT, created_at__gte=since))
             .aggregate(total=Sum("total_amount"))["total"])
    return money(total) if total is not None else ZERO
