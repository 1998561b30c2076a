"""Refunds of orders, fully or in part, to the buyer's wallet or back through the original payment channel.

Every refund first returns the money to the wallet (revenue → wallet, with the order's state and refunded amount,
in kameng.orders.refunds). To the original channel it then leaves the wallet towards the gateway (wallet → gateway
clearing) in the same transaction; the gateway is called after commit, and if it refuses, the payout is reversed so
the money is back in the wallet — never lost, never paid out twice (the refund number is the gateway's idempotency
key, and a refund is finished exactly once under its row lock).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.core.ids import public_number
from kameng.core.money import ZERO, money
from kameng.ledger.models import AccountKind, JournalKind
from kameng.ledger.services import credit, debit, journal_post, system_account_id, wallet_account_id
from kameng.orders.models import Order
from kameng.orders.refunds import order_note, order_refund_to_wallet
from kameng.payments.gateways.base import ChannelMisconfiguredError, GatewayError
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

logger = logging.getLogger(__name__)


def order_refund(*, order_id: int, amount: Decimal, destination: str, reason: str = "",
                 staff_id: int | None = None) -> Refund:
    """Refund `amount` of an order (staff action). Returns the refund; to the original channel it may still be
    pending if the gateway could not be reached (the periodic job retries with the same refund number)."""
    amount = money(amount)
    if amount <= ZERO:
        raise ApplicationError("退款金额必须大于 0", code="invalid_amount")
    if destination not in RefundDestination.values:
        raise ApplicationError("退款去向只能是钱包余额或原路退回", code="invalid_destination")
    if not Order.objects.filter(pk=order_id).exists():
        raise NotFoundError("订单不存在", code="order_not_found")
    payment = None
    if destination == RefundDestination.ORIGINAL:
        payment = payment_original_for_order(order_id=order_id)
        if payment is None:
            raise ConflictError("该订单是用钱包余额支付的，只能退回钱包余额", code="no_original_payment")
        channel_check_usable(payment.channel)  # refused before any money moves
    with transaction.atomic():
        refund = Refund.objects.create(number=public_number("R"), order_id=order_id, payment=payment, amount=amount,
                                       destination=destination, reason=reason[:200], created_by_id=staff_id)
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
        journal_post(
            kind=JournalKind.REFUND_PAYOUT, reference=refund.number, memo=f"原路退款 {payment.channel.name}",
            legs=[debit(wallet_account_id(user_id=order.buyer_id), amount),
                  credit(system_account_id(kind=AccountKind.GATEWAY_CLEARING, suffix=payment.channel.code), amount)],
        )
    refund_send_to_gateway(refund_id=refund.pk)
    refund.refresh_from_db()
    return refund


def refund_send_to_gateway(*, refund_id: int) -> Refund:
    """Ask the gateway to refund (outside any transaction), then finish the refund once. Safe to repeat."""
    refund = Refund.objects.select_related("payment__channel").get(pk=refund_id)
    if refund.status != RefundStatus.PENDING or refund.payment is None:
        return refund
    payment = refund.payment
    try:
        result = gateway_for(payment.channel).refund(
            out_trade_no=payment.number, gateway_trade_no=payment.gateway_trade_no, refund_no=refund.number,
            amount=refund.amount, total_amount=payment.amount, reason=refund.reason or "订单退款")
    except (GatewayError, ChannelMisconfiguredError) as error:  # misconfigured: nothing was sent
        Refund.objects.filter(pk=refund.pk).update(failure_reason=error.message[:200])
        logger.warning("refund %s: gateway unreachable, will retry: %s", refund.number, error.message)
        return refund
    if result.status == GatewayRefundStatus.PENDING:
        return refund
    return _refund_finish(refund_id=refund.pk, succeeded=result.status == GatewayRefundStatus.SUCCEEDED,
                          gateway_refund_no=result.gateway_refund_no, message=result.message)


def _refund_finish(*, refund_id: int, succeeded: bool, gateway_refund_no: str, message: str) -> Refund:
    with transaction.atomic():
        refund = refund_lock(refund_id=refund_id)  # its order first, then the refund row; the wallet last
        if refund.status != RefundStatus.PENDING or refund.payment_id is None:
            return refund
        payment = Payment.objects.select_related("channel").get(pk=refund.payment_id)
        refund.finished_at = timezone.now()
        refund.gateway_refund_no = gateway_refund_no[:64]
        if succeeded:
            refund.status = RefundStatus.SUCCEEDED
            order_note(order_id=refund.order_id, message=f"¥{refund.amount} 已原路退回{payment.channel.name}")
        else:
            refund.status = RefundStatus.FAILED
            refund.failure_reason = (message or "通道拒绝退款")[:200]
            Payment.objects.filter(pk=payment.pk).update(refunded_amount=F("refunded_amount") - refund.amount)
            journal_post(
                kind=JournalKind.REFUND_PAYOUT_REVERSAL, reference=refund.number, memo="原路退款失败，退回钱包",
                legs=[debit(system_account_id(kind=AccountKind.GATEWAY_CLEARING, suffix=payment.channel.code),
                            refund.amount),
                      credit(wallet_account_id(user_id=payment.user_id), refund.amount)],
            )
            order_note(order_id=refund.order_id,
                       message=f"原路退款失败（{refund.failure_reason}），¥{refund.amount} 已留在您的钱包余额")
        refund.save(update_fields=["status", "finished_at", "gateway_refund_no", "failure_reason"])
    return refund


def refunds_redrive_pending(*, older_than_seconds: int = 60, limit: int = 100) -> int:
    """Retry original-channel refunds still pending (gateway was down or answered 'processing')."""
    pending = list(Refund.objects.filter(
        status=RefundStatus.PENDING, destination=RefundDestination.ORIGINAL,
        created_at__lte=timezone.now() - timedelta(seconds=older_than_seconds),
    ).values_list("pk", flat=True)[:limit])
    for refund_id in pending:
        refund_send_to_gateway(refund_id=refund_id)
    return len(pending)
