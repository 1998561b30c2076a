"""Refunds of orders, fully or in part, to the buyer's wallet or back through the original payment channel.

Every refund first returns the money to the wallet (revenue → wallet, with the order's state and refunded amount,
in kameng.orders.refunds). To the original channel it then leaves the wallet towards the gateway (wallet → gateway
clearing) in the same transaction; the gateway is called after commit, and if it refuses, the payout is reversed so
the money is back in the wallet — never lost, never paid out twice: a refund is finished exactly once under its row
lock, and one whose request may have reached the gateway without an answer is never sent blindly again nor taken
as failed from a later answer. It is settled by a refund query (the refund number is the key of epay V2, Alipay and
WeChat), or, where the protocol has none (epay V1), held for staff review (`review`) until someone checks the
gateway's back office and confirms either way.

A wallet top-up rejected by AML review (kameng.payments.aml) is refunded through the same machinery with a refund
of no order: its money leaves the buyer's held top-ups, and comes back there (not to the wallet) if refused.

Risk control's refund checkpoint (kameng.risk.engine, `refund_risk_check`) decides before any money moves, with
the order's buyer as its subject (refund frequency, amount, blacklists): a block refuses the refund (403, the
staff form says why), a review is stored for staff and the refund goes on. A buyer's after-sales request
(kameng.after_sales) calls the same function when the buyer asks, and its agreement refunds through order_refund.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.core.ids import public_number
from kameng.core.money import ZERO, money
from kameng.ledger import recipes
from kameng.ledger.services import journal_draft_post
from kameng.orders.events import fact
from kameng.orders.models import Order, OrderEventKind
from kameng.orders.refunds import order_note, order_refund_to_wallet
from kameng.payments.gateways.base import (
    ChannelMisconfiguredError,
    GatewayError,
    PaymentGateway,
    RefundResult,
    RequestNotSentError,
)
from kameng.payments.gateways.base import RefundStatus as GatewayRefundStatus
from kameng.payments.gateways.registry import channel_check_usable, gateway_for
from kameng.payments.locks import refund_lock
from kameng.payments.models import (
    Payment,
    Refund,
    RefundDestination,
    RefundStatus,
)
from kameng.payments.selectors import payment_original_for_order
from kameng.risk.engine import RiskContext, RiskResult, risk_check
from kameng.risk.models import Checkpoint

logger = logging.getLogger(__name__)
# Longer than any adapter's HTTP timeout (15 s at most): a refund sent less than this ago may still get its answer.
IN_FLIGHT_SECONDS = 30


def refund_risk_check(*, buyer_id: int, amount: Decimal, client_ip: str = "", device_id: str = "",
                      refunds_since: Callable[[datetime], int] | None = None) -> RiskResult:
    """The refund checkpoint for a refund of `amount` to `buyer_id` (refund frequency counts the buyer's refunds
    that did not fail, in one query, only when such a rule is enabled). A buyer's after-sales request passes its
    own count (kameng.after_sales.services: its requests as well as the refunds)."""

    def buyer_refunds_since(since: datetime) -> int:
        return buyer_refunds_count(buyer_id=buyer_id, since=since)

    return risk_check(checkpoint=Checkpoint.REFUND, context=RiskContext(
        user_id=buyer_id, ip=client_ip or None, device_id=device_id or None, amount=amount,
        extras={"refunds_since": refunds_since or buyer_refunds_since}))


def buyer_refunds_count(*, buyer_id: int, since: datetime, exclude_refund_ids: QuerySet[Any] | None = None) -> int:
    """The buyer's order refunds created since `since` that did not fail (the refund frequency rules' count)."""
    refunds = (Refund.objects.filter(order__buyer_id=buyer_id, created_at__gte=since)
               .exclude(status=RefundStatus.FAILED))
    if exclude_refund_ids is not None:
        refunds = refunds.exclude(pk__in=exclude_refund_ids)
    return refunds.count()


def order_refund(*, order_id: int, amount: Decimal, destination: str, reason: str = "",
                 staff_id: int | None = None, request_id: str | None = None) -> Refund:
    """Refund `amount` of an order (staff action). Returns the refund; to the original channel it may still be
    pending if the gateway could not be reached (the periodic job retries with the same refund number).

    Idempotent by (order, request_id): the same request again — a double click, two tabs of one form, a resubmit —
    returns the first refund and moves no money; concurrent ones meet at the unique index."""
    amount = money(amount)
    request_id = request_id or None
    earlier = _refund_for_request(order_id, request_id, amount=amount, destination=destination)
    if earlier is not None:
        return earlier
    if amount <= ZERO:
        raise ApplicationError("退款金额必须大于 0", code="invalid_amount")
    if destination not in RefundDestination.values:
        raise ApplicationError("退款去向只能是钱包余额或原路退回", code="invalid_destination")
    buyer_id = Order.objects.filter(pk=order_id).values_list("buyer_id", flat=True).first()
    if buyer_id is None:
        raise NotFoundError("订单不存在", code="order_not_found")
    refund_risk_check(buyer_id=buyer_id, amount=amount)
    payment = None
    if destination == RefundDestination.ORIGINAL:
        payment = payment_original_for_order(order_id=order_id)
        if payment is None:
            raise ConflictError("该订单是用钱包余额支付的，只能退回钱包余额", code="no_original_payment")
        channel_check_usable(payment.channel)  # refused before any money moves
    try:
        refund = _refund_post(order_id=order_id, payment=payment, amount=amount, destination=destination,
                                     reason=reason, staff_id=staff_id, request_id=request_id)
    except IntegrityError:
        earlier = _refund_for_request(order_id, request_id, amount=amount, destination=destination)
        if earlier is None:
            raise
        return earlier  # the same form, committed by a concurrent request first
    if payment is not None:
        refund_send_to_gateway(refund_id=refund.pk)
        refund.refresh_from_db()
    return refund


def _refund_for_request(order_id: int, request_id: str | None, *, amount: Decimal,
                        destination: str) -> Refund | None:
    if request_id is None:
        return None
    refund = Refund.objects.filter(order_id=order_id, request_id=request_id).first()
    if refund is not None and (refund.amount != amount or refund.destination != destination):
        raise ConflictError("这张退款表单已经提交过另一笔退款，请刷新页面后重新填写", code="refund_request_reused",
                            extra={"number": refund.number})
    return refund


def _refund_post(*, order_id: int, payment: Payment | None, amount: Decimal, destination: str, reason: str,
                 staff_id: int | None, request_id: str | None) -> Refund:
    """The refund's money in one transaction: to the wallet (done), or out of it towards the gateway (pending)."""
    with transaction.atomic():
        refund = Refund.objects.create(number=public_number("R"), order_id=order_id, payment=payment, amount=amount,
                                       destination=destination, reason=reason[:200], created_by_id=staff_id,
                                       request_id=request_id)
        order = order_refund_to_wallet(order_id=order_id, amount=amount, reference=refund.number, reason=reason)
        if payment is None:
            refund.status = RefundStatus.SUCCEEDED
            refund.finished_at = timezone.now()
            refund.save(update_fields=["status", "finished_at"])
            return refund
        if amount > payment.amount - payment.refunded_amount:
            raise ConflictError(f"原路可退金额仅剩 ¥{money(payment.amount - payment.refunded_amount)}",
                                code="refund_exceeds_payment")
        Payment.objects.filter(pk=payment.pk).update(refunded_amount=F("refunded_amount") + amount)
        journal_draft_post(draft=recipes.refund_payout(
            refund_number=refund.number, memo=f"原路退款 {payment.channel.name}", channel_code=payment.channel.code,
            user_id=order.buyer_id, amount=amount))
    return refund


def refund_send_to_gateway(*, refund_id: int) -> Refund:
    """Move a pending original-channel refund on, outside any transaction. Safe to repeat, concurrently too.

    Never sent: send it. Sent before with no answer (timeout, dropped connection): its outcome is unknown, so it is
    never sent blindly again and no answer to a resend counts as a failure. The gateway is asked where the
    protocol can be (epay V2, Alipay, WeChat: by our refund number); what it says settles the refund, and only "no
    such refund" lets it go out again, under the same number, which those gateways pay at most once. Epay V1 can
    be asked nothing: the refund is held for staff review.
    """
    refund = Refund.objects.select_related("payment__channel").get(pk=refund_id)
    if refund.status != RefundStatus.PENDING or refund.payment is None:
        return refund
    if _is_in_flight(refund):
        return refund  # another worker (or the staff action) is waiting for the gateway's answer right now
    try:
        gateway = gateway_for(refund.payment.channel)
    except ChannelMisconfiguredError as error:  # nothing built, nothing sent: retried once the channel is fixed
        return _refund_note(refund, error.message)
    if refund.attempts == 0:
        return _refund_send(refund, gateway, is_resend=False)
    return _refund_resolve_unknown(refund, gateway)


def _refund_resolve_unknown(refund: Refund, gateway: PaymentGateway) -> Refund:
    """A refund sent before without a definite answer: ask the gateway, or hold it for review if it cannot be."""
    assert refund.payment is not None
    if not gateway.has_refund_query:
        return refund_hold_for_review(
            refund_id=refund.pk,
            reason=f"退款请求已发出但结果未知（{refund.failure_reason or '无应答'}），该通道协议无退款查询、重发可能"
                   f"重复退款：请到通道后台核实后在此确认")
    try:
        found = gateway.refund_query(out_trade_no=refund.payment.number,
                                     gateway_trade_no=refund.payment.gateway_trade_no, refund_no=refund.number)
    except GatewayError as error:
        return _refund_undecided(refund, f"查询退款结果失败，稍后再查：{error.message}")
    if found.status == GatewayRefundStatus.NOT_FOUND:
        return _refund_send(refund, gateway, is_resend=True)
    if found.status == GatewayRefundStatus.PENDING:
        return _refund_undecided(refund, f"通道处理中{f'：{found.message}' if found.message else ''}")
    return _refund_apply(refund, found, is_answer_to_resend=False)


def _refund_undecided(refund: Refund, message: str) -> Refund:
    """The gateway still gives no outcome. Asked again later; past KAMENG_REFUND_REVIEW_AFTER_HOURS a person looks
    (a gateway whose query never settles — a status we cannot read, a refund stuck on its side — would otherwise
    keep the buyer's money out of the wallet with nobody told)."""
    limit = timedelta(hours=settings.KAMENG_REFUND_REVIEW_AFTER_HOURS)
    if refund.created_at <= timezone.now() - limit:
        return refund_hold_for_review(
            refund_id=refund.pk, reason=f"通道 {settings.KAMENG_REFUND_REVIEW_AFTER_HOURS} 小时内未确认退款结果"
                                        f"（{message}）：请到通道后台核实后在此确认")
    return _refund_note(refund, message)


def _is_in_flight(refund: Refund) -> bool:
    return refund.last_sent_at is not None and refund.last_sent_at > timezone.now() - timedelta(
        seconds=IN_FLIGHT_SECONDS)


def _refund_send(refund: Refund, gateway: PaymentGateway, *, is_resend: bool) -> Refund:
    """Send the refund request once: the attempt is counted (and committed) before the call, so a crash or a lost
    answer leaves a refund that is known to have maybe reached the gateway."""
    assert refund.payment is not None
    claimed = Refund.objects.filter(pk=refund.pk, status=RefundStatus.PENDING, attempts=refund.attempts).update(
        attempts=F("attempts") + 1, last_sent_at=timezone.now())
    if not claimed:
        return Refund.objects.get(pk=refund.pk)  # someone else sent or settled it meanwhile
    payment = refund.payment
    try:
        result = gateway.refund(
            out_trade_no=payment.number, gateway_trade_no=payment.gateway_trade_no, refund_no=refund.number,
            amount=refund.amount, total_amount=payment.amount, reason=refund.reason or "订单退款")
    except RequestNotSentError as error:
        # Certainly not delivered: not an attempt, so it may be sent again even without a query.
        Refund.objects.filter(pk=refund.pk).update(attempts=F("attempts") - 1, last_sent_at=None)
        return _refund_note(refund, error.message)
    except GatewayError as error:
        logger.warning("refund %s: outcome unknown, will query before anything else: %s", refund.number,
                       error.message)
        return _refund_note(refund, f"结果未知：{error.message}")
    return _refund_apply(refund, result, is_answer_to_resend=is_resend)


def _refund_apply(refund: Refund, result: RefundResult, *, is_answer_to_resend: bool) -> Refund:
    if result.status == GatewayRefundStatus.SUCCEEDED:
        return _refund_finish(refund_id=refund.pk, succeeded=True, gateway_refund_no=result.gateway_refund_no,
                              message=result.message)
    if result.status == GatewayRefundStatus.NEEDS_REVIEW:
        return refund_hold_for_review(refund_id=refund.pk, reason=result.message or "通道退款异常，需人工处理")
    if result.status == GatewayRefundStatus.FAILED and is_answer_to_resend:
        # The refund was sent before with no answer: a refusal now may be about the first request's money
        # ("exceeds the refundable amount"). Proof of failure only comes from the gateway's own record.
        return refund_hold_for_review(
            refund_id=refund.pk, reason=f"重发的退款请求被通道拒绝（{result.message or '无说明'}），而此前的请求"
                                        f"结果未知：请到通道后台核实后在此确认")
    if result.status == GatewayRefundStatus.FAILED:
        return _refund_finish(refund_id=refund.pk, succeeded=False, gateway_refund_no=result.gateway_refund_no,
                              message=result.message)
    return _refund_note(refund, f"通道处理中{f'：{result.message}' if result.message else ''}")  # PENDING


def _refund_note(refund: Refund, message: str) -> Refund:
    """Keep the latest problem or gateway word on a refund still pending, for staff to read."""
    Refund.objects.filter(pk=refund.pk, status=RefundStatus.PENDING).update(failure_reason=message[:200])
    return Refund.objects.get(pk=refund.pk)


def refund_hold_for_review(*, refund_id: int, reason: str) -> Refund:
    """Stop every automatic step on a refund whose outcome only a person can establish (at the gateway's
    back office). The money stays out of the wallet, as for a pending refund, until staff settle it."""
    Refund.objects.filter(pk=refund_id, status=RefundStatus.PENDING).update(
        status=RefundStatus.REVIEW, failure_reason=reason[:200])
    refund = Refund.objects.get(pk=refund_id)
    logger.warning("refund %s held for staff review: %s", refund.number, refund.failure_reason)
    return refund


def refund_review_settle(*, refund_id: int, is_refunded_by_gateway: bool, staff_id: int | None = None) -> Refund:
    """Staff checked the gateway's back office: the refund was paid out (finish it), or it was not (the money
    goes back to the buyer's wallet). Only refunds held for review; anything else is refused."""
    refund = Refund.objects.get(pk=refund_id)
    if refund.status != RefundStatus.REVIEW:
        raise ConflictError(f"退款单 {refund.number} 不是待人工核实状态，不能确认", code="refund_not_in_review")
    logger.info("refund %s settled by staff #%s: %s", refund.number, staff_id,
                "refunded by the gateway" if is_refunded_by_gateway else "not refunded, back to the wallet")
    # The message reaches the buyer's timeline when the money comes back: no staff detail in it (the admin log
    # keeps who did it).
    return _refund_finish(refund_id=refund_id, succeeded=is_refunded_by_gateway, gateway_refund_no="",
                          message=f"人工核实：通道{'已' if is_refunded_by_gateway else '未'}退款", accept_review=True)


def _refund_finish(*, refund_id: int, succeeded: bool, gateway_refund_no: str, message: str,
                   accept_review: bool = False) -> Refund:
    """Settle a refund exactly once, under its order's and its own row lock. A gateway's answer settles a pending
    refund only; staff settle one held for review."""
    settleable = {RefundStatus.PENDING, RefundStatus.REVIEW} if accept_review else {RefundStatus.PENDING}
    with transaction.atomic():
        refund = refund_lock(refund_id=refund_id)  # its order first, then the refund row; the wallet last
        if refund.status not in settleable or refund.payment_id is None:
            return refund
        payment = Payment.objects.select_related("channel").get(pk=refund.payment_id)
        refund.finished_at = timezone.now()
        refund.gateway_refund_no = gateway_refund_no[:64] or refund.gateway_refund_no
        if succeeded:
            refund.status = RefundStatus.SUCCEEDED
            refund.failure_reason = message[:200] if accept_review else ""
            if refund.order_id is not None:
                order_note(order_id=refund.order_id, said=fact(
                    OrderEventKind.REFUNDED_TO_CHANNEL, amount=refund.amount, channel=payment.channel.name,
                    refund=refund.number))
        else:
            refund.status = RefundStatus.FAILED
            refund.failure_reason = (message or "通道拒绝退款")[:200]
            Payment.objects.filter(pk=payment.pk).update(refunded_amount=F("refunded_amount") - refund.amount)
            if refund.order_id is None:
                # A top-up rejected by AML review (kameng.payments.aml): back to the hold, never the wallet.
                journal_draft_post(draft=recipes.aml_topup_refund_reversal(
                    refund_number=refund.number, memo="充值原路退款失败，退回待审核", channel_code=payment.channel.code,
                    user_id=payment.user_id, amount=refund.amount))
            else:
                journal_draft_post(draft=recipes.refund_payout_reversal(
                    refund_number=refund.number, memo="原路退款失败，退回钱包", channel_code=payment.channel.code,
                    user_id=payment.user_id, amount=refund.amount))
                order_note(order_id=refund.order_id, said=fact(
                    OrderEventKind.CHANNEL_REFUND_FAILED, amount=refund.amount, reason=refund.failure_reason,
                    refund=refund.number))
        refund.save(update_fields=["status", "finished_at", "gateway_refund_no", "failure_reason"])
    return refund


def refunds_redrive_pending(*, older_than_seconds: int = 60, limit: int = 100) -> int:
    """Move on original-channel refunds still pending (gateway down, answer lost, or 'processing'): see
    refund_send_to_gateway. Only those not sent in the last `older_than_seconds`, so no answer is still on its way."""
    since = timezone.now() - timedelta(seconds=older_than_seconds)
    pending = list(Refund.objects.filter(
        Q(last_sent_at__isnull=True) | Q(last_sent_at__lte=since),
        status=RefundStatus.PENDING, destination=RefundDestination.ORIGINAL, created_at__lte=since,
    ).order_by("pk").values_list("pk", flat=True)[:limit])
    for refund_id in pending:
        refund_send_to_gateway(refund_id=refund_id)
    return len(pending)
