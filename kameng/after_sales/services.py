"""After-sales requests (售后申请): the buyer asks, withdraws; staff agree (the order is refunded through the one
refund service, kameng.payments.refunds.order_refund) or refuse with a reason.

- Who may ask: the order's buyer, for an order delivered (已发货) within KAMENG_AFTER_SALES_WINDOW_DAYS of its
  delivery (exactly that long after still counts), with a reason and a note of at most 500 characters (the note is
  needed for 其他). One request per order is pending at a time; the order waits in 售后中 meanwhile (the supplier's
  售后 page and rating read that state), and goes back to 已发货 when the request is refused or withdrawn.
- Risk control: the refund checkpoint (kameng.payments.refunds.refund_risk_check) runs when the buyer asks, before
  anything is written, with the buyer as subject and the amount left to refund; refund frequency rules count the
  buyer's requests in the window (withdrawn ones excepted) and the order refunds made without one. A block is the
  engine's RiskBlockedError (403), a rule that errors its RiskUnavailableError (503); a review decision is stored
  by the engine and linked to the request, so staff see it in the queue. Agreeing runs the checkpoint again, inside
  order_refund, as every refund does.
- Money: agreeing refunds what is left of the order (total less refunded) to the wallet or the original channel,
  under the request id `after-sales-<number>`: order_refund is idempotent on it, so an agreement retried after a
  crash, or two at once, moves the money once. A second agreement of a decided request is refused (409).

Locks: the order (kameng.orders.locks.order_lock), then the request row; never across the refund's gateway call.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from kameng.after_sales.models import (
    NOTE_MAX_LENGTH,
    STAFF_REPLY_MAX_LENGTH,
    AfterSalesReason,
    AfterSalesRequest,
    AfterSalesStatus,
)
from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.core.ids import public_number
from kameng.core.money import ZERO
from kameng.orders.events import fact
from kameng.orders.locks import order_lock
from kameng.orders.models import Order, OrderEventKind, OrderStatus
from kameng.orders.refunds import order_refundable_amount
from kameng.orders.selectors import order_of_buyer
from kameng.orders.state import transition
from kameng.payments.models import Refund, RefundDestination
from kameng.payments.refunds import buyer_refunds_count, order_refund, refund_risk_check
from kameng.risk.models import Decision

logger = logging.getLogger(__name__)

# The order states a buyer may ask from. A partially refunded order was already dealt with by staff: the buyer
# contacts them again rather than opening a second round here.
REQUESTABLE = frozenset({OrderStatus.DELIVERED})

REASON_REQUIRED_MESSAGE = "请选择售后原因"
NOTE_TOO_LONG_MESSAGE = "补充说明最多 %(max)s 个字"
NOTE_REQUIRED_MESSAGE = "选择「其他」时请填写补充说明"
ORDER_NOT_FOUND_MESSAGE = "订单不存在"
ALREADY_OPEN_MESSAGE = "该订单已有一个待处理的售后申请，请等待客服处理或先撤销"
NOT_REQUESTABLE_MESSAGE = "订单状态为「%(status)s」，不能申请售后"
WINDOW_PASSED_MESSAGE = "已超过售后期限：发货后 %(days)s 天内可申请售后"
NOTHING_TO_REFUND_MESSAGE = "该订单没有可退金额"
REQUEST_NOT_FOUND_MESSAGE = "售后申请不存在"
NOT_PENDING_MESSAGE = "售后申请当前状态为「%(status)s」，不能再处理"
REPLY_REQUIRED_MESSAGE = "请填写拒绝原因（买家可见）"


def after_sales_window() -> timedelta:
    return timedelta(days=int(settings.KAMENG_AFTER_SALES_WINDOW_DAYS))


def after_sales_deadline(order: Order) -> datetime | None:
    """Until when the buyer may ask (None: never delivered)."""
    delivered_at = order.delivered_at or order.paid_at
    return delivered_at + after_sales_window() if delivered_at is not None else None


def after_sales_refusal(order: Order, *, now: datetime | None = None) -> ApplicationError | None:
    """Why the buyer may not ask about `order` now (None: they may). Read without locks: the service checks again
    under the order's lock."""
    if AfterSalesRequest.objects.filter(open_order_id=order.pk).exists():
        return ConflictError(ALREADY_OPEN_MESSAGE, code="after_sales_open")
    if order.status not in REQUESTABLE:
        return ConflictError(NOT_REQUESTABLE_MESSAGE, code="after_sales_not_allowed",
                             params={"status": OrderStatus(order.status).label})
    deadline = after_sales_deadline(order)
    if deadline is None or (now or timezone.now()) > deadline:
        return ConflictError(WINDOW_PASSED_MESSAGE, code="after_sales_window_passed",
                             params={"days": int(settings.KAMENG_AFTER_SALES_WINDOW_DAYS)})
    if order_refundable_amount(order) <= ZERO:
        return ConflictError(NOTHING_TO_REFUND_MESSAGE, code="nothing_to_refund")
    return None


def _clean_input(reason: str, note: str) -> str:
    if reason not in AfterSalesReason.values:
        raise ApplicationError(REASON_REQUIRED_MESSAGE, code="reason_required")
    note = note.strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise ApplicationError(NOTE_TOO_LONG_MESSAGE, code="note_too_long", params={"max": NOTE_MAX_LENGTH})
    if reason == AfterSalesReason.OTHER and not note:
        raise ApplicationError(NOTE_REQUIRED_MESSAGE, code="note_required")
    return note


def after_sales_refunds_since(*, buyer_id: int, since: datetime) -> int:
    """The refund frequency rules' count at a buyer's request: their requests since `since` that they did not
    withdraw, plus the refunds of their orders since then that no request led to (a staff refund)."""
    requests = AfterSalesRequest.objects.filter(buyer_id=buyer_id, created_at__gte=since).exclude(
        status=AfterSalesStatus.WITHDRAWN).count()
    from_requests = AfterSalesRequest.objects.filter(buyer_id=buyer_id, refund__isnull=False).values("refund_id")
    return requests + buyer_refunds_count(buyer_id=buyer_id, since=since, exclude_refund_ids=from_requests)


def after_sales_request_create(*, buyer_id: int, order_number: str, reason: str, note: str = "",
                               client_ip: str = "", device_id: str = "") -> AfterSalesRequest:
    """The buyer asks about their own order (another buyer's is 404). See the module docstring for the rules."""
    note = _clean_input(reason, note)
    order = order_of_buyer(buyer_id=buyer_id, number=order_number)
    if order is None:
        raise NotFoundError(ORDER_NOT_FOUND_MESSAGE, code="order_not_found")
    refusal = after_sales_refusal(order)
    if refusal is not None:
        raise refusal
    risk = refund_risk_check(
        buyer_id=buyer_id, amount=order_refundable_amount(order), client_ip=client_ip, device_id=device_id,
        refunds_since=lambda since: after_sales_refunds_since(buyer_id=buyer_id, since=since))
    try:
        with transaction.atomic():
            order = order_lock(order_id=order.pk)
            refusal = after_sales_refusal(order)  # again, under the lock: a second tab may have asked meanwhile
            if refusal is not None:
                raise refusal
            request = AfterSalesRequest.objects.create(
                number=public_number("S"), order=order, buyer_id=buyer_id, reason=reason, note=note,
                amount=order_refundable_amount(order), open_order_id=order.pk,
                risk_decision_id=risk.decision_id if risk.decision == Decision.REVIEW else None)
            event = transition(order, OrderStatus.AFTER_SALES, said=fact(
                OrderEventKind.AFTER_SALES, reason=AfterSalesReason(reason).label, request=request.number))
            order.save(update_fields=["status", "updated_at"])
            event.save()
    except IntegrityError as error:  # the unique open request, on a database that does not lock (SQLite)
        raise ConflictError(ALREADY_OPEN_MESSAGE, code="after_sales_open") from error
    return request


def _pending_locked(*, request_id: int) -> tuple[AfterSalesRequest, Order]:
    """Lock the request's order, then the request; refuse one that is no longer pending."""
    order_id = AfterSalesRequest.objects.filter(pk=request_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise NotFoundError(REQUEST_NOT_FOUND_MESSAGE, code="after_sales_not_found")
    order = order_lock(order_id=order_id)
    request = AfterSalesRequest.objects.select_for_update().get(pk=request_id)
    if request.status != AfterSalesStatus.PENDING:
        raise ConflictError(NOT_PENDING_MESSAGE, code="after_sales_decided",
                            params={"status": AfterSalesStatus(request.status).label},
                            extra={"status": request.status})
    return request, order


def _close(request: AfterSalesRequest, order: Order, *, status: str, said_kind: OrderEventKind,
           staff_id: int | None = None, reply: str = "") -> None:
    """A refused or withdrawn request: the order goes back to 已发货 (if staff refunded it from the order page
    meanwhile it stays as it is, with the line on its timeline all the same)."""
    request.status = status
    request.open_order_id = None
    request.staff_reply = reply
    request.decided_by_id = staff_id
    request.decided_at = timezone.now()
    request.save(update_fields=["status", "open_order_id", "staff_reply", "decided_by", "decided_at"])
    said = fact(said_kind, reason=reply, request=request.number)
    if order.status == OrderStatus.AFTER_SALES:
        event = transition(order, OrderStatus.DELIVERED, said=said)
        order.save(update_fields=["status", "updated_at"])
        event.save()
    else:
        order.events.create(from_status=order.status, to_status=order.status, kind=said.kind, params=said.params)


def after_sales_request_withdraw(*, buyer_id: int, order_number: str) -> AfterSalesRequest:
    """The buyer withdraws the pending request of their order (撤销)."""
    order = order_of_buyer(buyer_id=buyer_id, number=order_number)
    if order is None:
        raise NotFoundError(ORDER_NOT_FOUND_MESSAGE, code="order_not_found")
    request_id = AfterSalesRequest.objects.filter(open_order_id=order.pk).values_list("pk", flat=True).first()
    if request_id is None:
        raise ConflictError("该订单没有待处理的售后申请", code="after_sales_none_open")
    with transaction.atomic():
        request, locked_order = _pending_locked(request_id=request_id)
        _close(request, locked_order, status=AfterSalesStatus.WITHDRAWN,
               said_kind=OrderEventKind.AFTER_SALES_WITHDRAWN)
    return request


def after_sales_request_reject(*, request_id: int, staff_id: int | None, reply: str) -> AfterSalesRequest:
    """Staff refuse, with a reason the buyer reads."""
    reply = reply.strip()
    if not reply:
        raise ApplicationError(REPLY_REQUIRED_MESSAGE, code="reply_required")
    if len(reply) > STAFF_REPLY_MAX_LENGTH:
        raise ApplicationError("拒绝原因最多 %(max)s 个字", code="reply_too_long",
                               params={"max": STAFF_REPLY_MAX_LENGTH})
    with transaction.atomic():
        request, order = _pending_locked(request_id=request_id)
        _close(request, order, status=AfterSalesStatus.REJECTED, said_kind=OrderEventKind.AFTER_SALES_REJECTED,
               staff_id=staff_id, reply=reply)
    return request


def after_sales_refund_request_id(request: AfterSalesRequest) -> str:
    """The refund's idempotency key: one request, one refund, however often staff press 同意."""
    return f"after-sales-{request.number}"


def after_sales_request_approve(*, request_id: int, staff_id: int | None,
                                destination: str = RefundDestination.WALLET) -> AfterSalesRequest:
    """Staff agree: the order's remaining amount is refunded through order_refund (outside any transaction here:
    an original-channel refund calls the gateway after its own commit), then the request is marked agreed."""
    request = AfterSalesRequest.objects.filter(pk=request_id).select_related("order").first()
    if request is None:
        raise NotFoundError(REQUEST_NOT_FOUND_MESSAGE, code="after_sales_not_found")
    if request.status != AfterSalesStatus.PENDING:
        raise ConflictError(NOT_PENDING_MESSAGE, code="after_sales_decided",
                            params={"status": AfterSalesStatus(request.status).label},
                            extra={"status": request.status})
    key = after_sales_refund_request_id(request)
    refund = Refund.objects.filter(order_id=request.order_id, request_id=key).first()
    if refund is None:  # not refunded yet (otherwise an earlier agreement refunded it and stopped before marking)
        amount = order_refundable_amount(request.order)
        if amount <= ZERO:
            raise ConflictError(NOTHING_TO_REFUND_MESSAGE, code="nothing_to_refund")
        refund = order_refund(order_id=request.order_id, amount=amount, destination=destination,
                              reason=AfterSalesReason(request.reason).label, staff_id=staff_id,
                              request_id=key)
    with transaction.atomic():
        try:
            request, _order = _pending_locked(request_id=request.pk)
        except ConflictError:
            return AfterSalesRequest.objects.get(pk=request_id)  # a concurrent agreement marked it first
        request.status = AfterSalesStatus.APPROVED
        request.open_order_id = None
        request.refund = refund
        request.decided_by_id = staff_id
        request.decided_at = timezone.now()
        request.save(update_fields=["status", "open_order_id", "refund", "decided_by", "decided_at"])
    logger.info("after-sales %s agreed by staff #%s: refund %s of %s", request.number, staff_id, refund.number,
                refund.amount)
    return request
