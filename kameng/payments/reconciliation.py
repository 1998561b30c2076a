"""Recovering lost notifications, and closing the payments that can no longer pay anything (the beat job
kameng.payments.tasks.redrive_pending_payments, every minute).

A pending payment older than a minute is one of two kinds:

- It can still pay: its order waits for payment, or it is a top-up within the reconciliation window. The gateway
  is asked about it; paid → credited (payment_credit); failed beyond doubt (QueryResult.is_failed: UnionPay's
  origRespCode refusing it) → CLOSED as 支付失败, so the buyer may pay again; otherwise it waits for the next run.
- It can no longer pay anything: its order expired, was cancelled or was paid another way, or it is a top-up
  still unpaid after the window. It gets one final query: paid → credited as above (an order that cannot take the
  money leaves it in the wallet, and its timeline says so); otherwise the trade is closed at the gateway where the
  protocol has a close call (Alipay, WeChat Pay: its QR code or cashier can no longer be paid), and the payment
  becomes CLOSED with its reason. Epay has no close call: a payment made there later is still notified.

A CLOSED payment that a notification, a return URL or a query later proves paid is still credited, exactly once:
payment_credit moves it on to SUCCEEDED under the same locks and the same ledger reference as a pending one.

No gateway is called inside a transaction: query and close first, then the short transaction that closes the
payment (its order locked first, kameng.payments.locks). A gateway that cannot be reached leaves the payment
pending for the next run; past CLOSE_WITHOUT_ANSWER_AFTER it is closed without the gateway's word (the detail says
so), so an unreachable gateway does not keep it in the job for ever.

Each pending payment is asked on a schedule of its own: 1, 2, 5, 10 and 30 minutes after it was created, then
every hour (Payment.next_query_at, set after every question). A run takes the payments that are due, the most
overdue first, up to its limit; one just asked waits for its next point. So a backlog of abandoned cashiers (asked
rarely once they are old) never keeps a newer payment whose notification was lost from being asked within minutes:
every pending payment is reached, however many there are.

Payments of a channel missing a credential its protocol needs are skipped (nothing could be asked with it) until
the channel is completed, and that is logged once per channel, not every minute.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from kameng.core.errors import ApplicationError
from kameng.orders.models import OrderStatus
from kameng.payments.gateways.base import CloseStatus, GatewayError, PaymentGateway, QueryResult
from kameng.payments.gateways.registry import gateway_for
from kameng.payments.locks import payment_lock
from kameng.payments.models import (
    ChannelKind,
    NotificationOutcome,
    Payment,
    PaymentChannel,
    PaymentCloseReason,
    PaymentStatus,
)
from kameng.payments.services import payment_credit
from kameng.risk.services import risk_event_record

logger = logging.getLogger(__name__)

RECONCILE_WINDOW_HOURS = 24
# Past this age a payment that can no longer pay is closed even if the gateway never answered its final query:
# both Alipay (~25 h) and WeChat (~24 h) have long stopped retrying their notifications by then.
CLOSE_WITHOUT_ANSWER_AFTER = timedelta(hours=72)
SKIPPED_CHANNEL_CACHE_KEY = "payments:reconcile-skipped-channel:{pk}"
# Every order status but pending_payment: its payments can no longer pay it (expired, cancelled, paid another way).
ORDER_CLOSED_STATUSES = tuple(status for status in OrderStatus if status != OrderStatus.PENDING_PAYMENT)

# When a pending payment is asked, counted from its creation; then every QUERY_INTERVAL_AFTER_SCHEDULE.
QUERY_SCHEDULE = tuple(timedelta(minutes=minutes) for minutes in (1, 2, 5, 10, 30))
QUERY_INTERVAL_AFTER_SCHEDULE = timedelta(hours=1)

CREDITED = "credited"
CLOSED = "closed"
LATER = "later"  # the gateway could not tell, or not yet paid: asked again on the next run
SETTLED_MEANWHILE = "settled_meanwhile"  # a notification credited it while we asked


def payments_reconcile_pending(*, older_than_seconds: int = 60, within_hours: int = RECONCILE_WINDOW_HOURS,
                               limit: int = 100) -> int:
    """Ask the gateways about pending payments whose notification may have been lost and credit the paid ones;
    give the ones that can no longer pay a final query and close them. Returns how many were credited."""
    now = timezone.now()
    pending = Payment.objects.filter(
        Q(next_query_at__isnull=True) | Q(next_query_at__lte=now), status=PaymentStatus.PENDING,
        channel_id__in=_channels_to_ask(), created_at__lte=now - timedelta(seconds=older_than_seconds))
    window_start = now - timedelta(hours=within_hours)
    can_pay = Q(created_at__gte=window_start) & (Q(order__isnull=True) | Q(order__status=OrderStatus.PENDING_PAYMENT))
    cannot_pay = Q(order__isnull=True, created_at__lt=window_start) | Q(order__status__in=ORDER_CLOSED_STATUSES)
    credited = 0
    for payment in _due_first(pending.filter(can_pay), limit):
        credited += _ask(payment) == CREDITED
        _asked(payment, now)
    closed = 0
    for payment in list(_due_first(pending.filter(cannot_pay), limit)):
        outcome = payment_settle_unpayable(payment=payment, now=now)
        credited += outcome == CREDITED
        closed += outcome == CLOSED
        _asked(payment, now)
    if closed:
        logger.info("reconciliation closed %d payment(s) that could no longer pay anything", closed)
    return credited


def _due_first(payments: QuerySet[Payment], limit: int) -> QuerySet[Payment]:
    """Never asked first (due since they were a minute old), then the most overdue."""
    return payments.select_related("channel", "order").order_by(
        F("next_query_at").asc(nulls_first=True), "created_at", "id")[:limit]


def payment_next_query_at(*, created_at: datetime, asked_at: datetime) -> datetime:
    """The first point of the payment's schedule after `asked_at` (QUERY_SCHEDULE, then hourly)."""
    for offset in QUERY_SCHEDULE:
        if created_at + offset > asked_at:
            return created_at + offset
    last = created_at + QUERY_SCHEDULE[-1]
    hours_since = (asked_at - last) // QUERY_INTERVAL_AFTER_SCHEDULE
    return last + (hours_since + 1) * QUERY_INTERVAL_AFTER_SCHEDULE


def _asked(payment: Payment, now: datetime) -> None:
    """Remember that a payment was asked, and when it is next due (only while it is still pending)."""
    Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING).update(
        last_queried_at=now, next_query_at=payment_next_query_at(created_at=payment.created_at, asked_at=now))


def _channels_to_ask() -> list[int]:
    """The gateway channels that can be asked: one missing a credential is skipped, and said so once."""
    usable: list[int] = []
    for channel in PaymentChannel.objects.exclude(kind=ChannelKind.BALANCE).order_by("pk"):
        missing = channel.missing_fields()
        if missing:
            _log_skipped_once(channel, missing)
        else:
            usable.append(channel.pk)
    if usable:  # completed again: the next time it lacks something is said again
        cache.delete_many([SKIPPED_CHANNEL_CACHE_KEY.format(pk=pk) for pk in usable])
    return usable


def _log_skipped_once(channel: PaymentChannel, missing: list[str]) -> None:
    key, said = SKIPPED_CHANNEL_CACHE_KEY.format(pk=channel.pk), "、".join(missing)
    if cache.get(key) == said:
        return
    cache.set(key, said, timeout=None)
    waiting = Payment.objects.filter(channel=channel, status=PaymentStatus.PENDING).count()
    logger.warning("payment channel %s (%s) lacks %s: its %d pending payment(s) are neither queried nor closed "
                   "until the channel is completed", channel.code, channel.name, said, waiting)


def _ask(payment: Payment) -> str:
    """A payment that can still pay: credit it if the gateway says it is paid; otherwise wait for the next run."""
    try:
        # A key that is there but unreadable is only found out here (ChannelMisconfiguredError): next run, again.
        result = gateway_for(payment.channel).query(out_trade_no=payment.number)  # outside any transaction
    except (GatewayError, ApplicationError) as error:
        logger.info("query for %s failed: %s", payment.number, error.message)
        return LATER
    if result.is_failed:
        payment_fail(payment=payment, result=result)
        return CLOSED
    if not result.is_paid or result.amount is None:
        return LATER
    outcome, _ = _credit(payment, result)
    return CREDITED if outcome == NotificationOutcome.CREDITED else LATER


def _credit(payment: Payment, result: QueryResult) -> tuple[str, str]:
    """Credit a payment the gateway says is paid; a refusal (an amount that differs) is a risk event."""
    outcome: str
    if result.amount is None:
        outcome, reason = NotificationOutcome.REJECTED, "gateway says paid without a readable amount"
    else:
        outcome, reason, _ = payment_credit(channel=payment.channel, out_trade_no=payment.number,
                                            amount=result.amount, gateway_trade_no=result.gateway_trade_no)
    if outcome == NotificationOutcome.REJECTED:
        risk_event_record(kind="payment_query_mismatch", message=f"查询 {payment.number} 结果被拒绝：{reason}",
                          detail={"payment": payment.number, "reason": reason}, user_id=payment.user_id)
    return outcome, reason


def _close_reason(payment: Payment) -> str:
    if payment.order is None:
        return PaymentCloseReason.TOPUP_UNPAID
    if payment.order.status == OrderStatus.EXPIRED:
        return PaymentCloseReason.ORDER_EXPIRED
    if payment.order.status == OrderStatus.CANCELLED:
        return PaymentCloseReason.ORDER_CANCELLED
    return PaymentCloseReason.ORDER_SETTLED


def payment_settle_unpayable(*, payment: Payment, now: datetime | None = None) -> str:
    """A pending payment that can no longer pay anything: one final query (paid → credited), then the gateway's
    close where the protocol has one, then CLOSED. Returns CREDITED, CLOSED or LATER (the gateway could not tell
    yet) or SETTLED_MEANWHILE. Never inside a transaction."""
    now = now or timezone.now()
    reason = _close_reason(payment)
    is_overdue = payment.created_at <= now - CLOSE_WITHOUT_ANSWER_AFTER
    try:
        gateway = gateway_for(payment.channel)
        result = gateway.query(out_trade_no=payment.number)
    except (GatewayError, ApplicationError) as error:
        return _close_without_answer(payment, reason, f"最终查询失败（{error.message}）", is_overdue=is_overdue)
    if result.is_paid:
        return _credit_or_close(payment, result, reason)
    return _close_at_gateway(payment, gateway, reason, is_overdue=is_overdue)


def _credit_or_close(payment: Payment, result: QueryResult, reason: str) -> str:
    outcome, refusal = _credit(payment, result)
    if outcome == NotificationOutcome.CREDITED:
        return CREDITED
    if outcome == NotificationOutcome.DUPLICATE:
        return SETTLED_MEANWHILE
    # Paid, says the gateway, but not what we asked for: staff look at it (risk event); a genuine notification
    # of the right amount would still credit it.
    payment_close(payment_id=payment.pk, reason=reason, detail=f"最终查询显示已支付但被拒绝（{refusal}），请人工核实")
    return CLOSED


def _close_at_gateway(payment: Payment, gateway: PaymentGateway, reason: str, *, is_overdue: bool) -> str:
    if not gateway.has_close:
        payment_close(payment_id=payment.pk, reason=reason, detail="最终查询：未支付；该通道没有关单接口")
        return CLOSED
    try:
        closing = gateway.close(out_trade_no=payment.number)
    except (GatewayError, ApplicationError) as error:
        return _close_without_answer(payment, reason, f"最终查询：未支付；通道关单失败（{error.message}）",
                                     is_overdue=is_overdue)
    if closing.status == CloseStatus.NOT_OPEN:  # paid between the query and the close, or already over
        try:
            again = gateway.query(out_trade_no=payment.number)
        except (GatewayError, ApplicationError) as error:
            return _close_without_answer(payment, reason, f"关单被拒绝后查询失败（{error.message}）",
                                         is_overdue=is_overdue)
        if again.is_paid:
            return _credit_or_close(payment, again, reason)
    payment_close(payment_id=payment.pk, reason=reason, detail=f"最终查询：未支付；{closing.message}")
    return CLOSED


def _close_without_answer(payment: Payment, reason: str, detail: str, *, is_overdue: bool) -> str:
    if not is_overdue:
        logger.info("closing %s waits for its gateway: %s", payment.number, detail)
        return LATER
    logger.warning("closing %s without the gateway's answer: %s", payment.number, detail)
    payment_close(payment_id=payment.pk, reason=reason, detail=f"{detail}，超过 {CLOSE_WITHOUT_ANSWER_AFTER.days} "
                                                               f"天仍无法确认，已直接关闭")
    return CLOSED


def payment_recheck(*, payment_id: int) -> str:
    """Ask the gateway about one payment, pending or CLOSED (staff, when a buyer says they paid after all), and
    credit it if it was paid: NotificationOutcome.CREDITED, DUPLICATE (credited already), REJECTED (the amount
    differs: a risk event) or NOT_PAID. Raises GatewayError when the gateway cannot tell."""
    payment = Payment.objects.select_related("channel").get(pk=payment_id)
    if payment.status == PaymentStatus.SUCCEEDED:
        return NotificationOutcome.DUPLICATE
    result = gateway_for(payment.channel).query(out_trade_no=payment.number)  # outside any transaction
    if result.is_failed:
        payment_fail(payment=payment, result=result)
    if not result.is_paid:
        return NotificationOutcome.NOT_PAID
    outcome, _ = _credit(payment, result)
    return outcome


def payment_fail(*, payment: Payment, result: QueryResult) -> bool:
    """Close a pending payment its gateway's query says failed beyond doubt (QueryResult.is_failed): nothing was
    paid, it stops counting as in flight, and the buyer may pay again. False (nothing changed) when it is no longer
    pending. Should the gateway notify it paid after all, payment_credit credits it like any closed payment."""
    closed = payment_close(payment_id=payment.pk, reason=PaymentCloseReason.PAYMENT_FAILED,
                           detail=f"通道查询：支付失败（{result.failure or '无说明'}）")
    if closed:
        logger.info("payment %s failed at its gateway (%s): closed", payment.number, result.failure)
    return closed


def payment_close(*, payment_id: int, reason: str, detail: str = "") -> bool:
    """Mark a pending payment CLOSED with its reason. Returns False (and changes nothing) if it is no longer
    pending: a notification credited it meanwhile."""
    with transaction.atomic():
        payment = payment_lock(payment_id=payment_id)  # its order first
        if payment.status != PaymentStatus.PENDING:
            return False
        payment.status = PaymentStatus.CLOSED
        payment.closed_at = timezone.now()
        payment.close_reason = reason
        payment.close_detail = detail[:200]
        payment.save(update_fields=["status", "closed_at", "close_reason", "close_detail"])
    return True
