"""What a direct top-up (直充) order's page shows of its progress: the step bar 已支付 → 正在向运营商发送请求 →
充值中 → 已到账, read from the order's status and its buyer-visible timeline (the events the supplier pipeline
writes: TOPUP_SUBMITTING, TOPUP_PROCESSING, TOPUP_SUCCEEDED with the operator's serial number), and the failure
and refund when it did not go through.

The page's progress block (web/_topup_progress.html) polls itself while the order moves and is swapped in place,
the status badge and the timeline with it (htmx out-of-band swaps): the buyer watches the steps without a reload.
The timeline marks the row of the step under way (`current_event_id`: 充值中 while the carrier works on it), and a
delivered top-up's badge says 已到账 (credited), not the card-key wording 已发货.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils.translation import gettext_noop as _

from kameng.catalog.models import DeliveryKind
from kameng.orders.models import Order, OrderEvent, OrderEventKind, OrderStatus
from kameng.orders.state import IN_PROGRESS

K = OrderEventKind
STEPS: tuple[str, ...] = (_("已支付"), _("正在向运营商发送请求"), _("充值中"), _("已到账"))
DONE, CURRENT, FAILED, TODO = "done", "current", "failed", "todo"
# Reached once the order is delivered (a top-up delivered without its TOPUP_SUCCEEDED row: staff, an old order).
_ARRIVED = frozenset({OrderStatus.DELIVERED, OrderStatus.COMPLETED, OrderStatus.AFTER_SALES,
                      OrderStatus.PARTIALLY_REFUNDED})
_FAILED = frozenset({OrderStatus.DELIVERY_FAILED, OrderStatus.REFUNDED})
_STEP_OF_EVENT: dict[str, int] = {K.TOPUP_SUBMITTING: 1, K.TOPUP_PROCESSING: 2, K.TOPUP_SUCCEEDED: 3}
# Timeline rows that are steps of the bar, not notes (TOPUP_PROCESSING changes no status but is no aside).
STEP_EVENT_KINDS: tuple[str, ...] = tuple(_STEP_OF_EVENT)


def is_topup_credited(order: Order) -> bool:
    """A delivered direct top-up: its badge says 已到账 where a card-key order's says 已发货."""
    return order.status == OrderStatus.DELIVERED and order.sku.product.delivery_kind == DeliveryKind.DIRECT_TOPUP


@dataclass(frozen=True)
class Step:
    label: str  # a msgid: translated in the template
    state: str  # done | current | failed | todo


@dataclass(frozen=True)
class TopupProgress:
    steps: list[Step]
    is_moving: bool  # still in progress: the block polls
    is_arrived: bool
    is_failed: bool
    operator_serial: str
    failure_reason: str
    refunded_amount: Decimal | None  # given back to the wallet, once refunded
    # The timeline row to highlight: while moving, the newest step row (正在向运营商发送请求, then 充值中); once
    # settled, the newest row (已到账, or the refund).
    current_event_id: int | None


def topup_progress(order: Order, events: Sequence[OrderEvent]) -> TopupProgress | None:
    """The progress of a paid direct top-up order (None before it is paid: the page shows the payment instead)."""
    if order.paid_at is None:
        return None
    reached = 0
    serial = reason = ""
    current_event_id = None
    for event in events:
        reached = max(reached, _STEP_OF_EVENT.get(event.kind, 0))
        if event.kind in _STEP_OF_EVENT or order.status not in IN_PROGRESS:
            current_event_id = event.pk
        if event.kind == K.TOPUP_SUCCEEDED:
            serial = str(event.params.get("operator_serial", ""))
        if event.kind == K.DELIVERY_FAILED:
            reason = str(event.params.get("reason", ""))
    is_arrived = order.status in _ARRIVED or (reached == 3 and order.status not in _FAILED)
    is_failed = order.status in _FAILED and not is_arrived
    if is_arrived:
        reached = 3
    steps = []
    current = max(reached, 1)  # paid: the request to the carrier is the step under way
    for index, label in enumerate(STEPS):
        if is_arrived or index < current:
            state = DONE
        elif index == current:
            state = FAILED if is_failed else CURRENT
        else:
            state = TODO
        steps.append(Step(label=label, state=state))
    refunded = order.refunded_amount if order.status == OrderStatus.REFUNDED and order.refunded_amount else None
    return TopupProgress(steps=steps, is_moving=order.status in IN_PROGRESS, is_arrived=is_arrived,
                         is_failed=is_failed, operator_serial=serial, failure_reason=reason,
                         refunded_amount=refunded, current_event_id=current_event_id)
