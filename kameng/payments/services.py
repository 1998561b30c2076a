"""Writes on payments: starting a wallet top-up, processing a gateway notification, recovering lost ones.

Crediting is idempotent three times over: the payment row is locked and its status checked, the status moves only
once, and the ledger refuses a second journal for the same (kind, reference). Gateways are never called inside a
database transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from kameng.core.errors import ApplicationError, NotFoundError
from kameng.core.ids import public_number
from kameng.core.masking import mask_text
from kameng.core.money import MoneyError, parse_amount
from kameng.ledger.models import AccountKind, JournalKind
from kameng.ledger.services import credit, debit, journal_post, system_account_id, wallet_account_id
from kameng.payments.gateways.base import NotificationRejectedError, PaymentGateway, PaymentStart
from kameng.payments.gateways.epay import EpayV1Gateway
from kameng.payments.models import (
    ChannelKind,
    NotificationOutcome,
    Payment,
    PaymentChannel,
    PaymentNotification,
    PaymentPurpose,
    PaymentStatus,
)

logger = logging.getLogger(__name__)
SECRET_PARAMS = {"sign", "key"}


def gateway_for(channel: PaymentChannel) -> PaymentGateway:
    if channel.kind == ChannelKind.EPAY_V1:
        return EpayV1Gateway(gateway_url=channel.gateway_url, merchant_id=channel.merchant_id,
                             merchant_key=str(channel.merchant_key), pay_type=channel.pay_type)
    raise ApplicationError(f"不支持的支付协议 {channel.kind}", code="channel_kind_unsupported")


@dataclass(frozen=True)
class TopupStarted:
    payment: Payment
    start: PaymentStart


def wallet_topup_start(*, user_id: int, channel_code: str, amount_text: str, notify_url: str, return_url: str,
                       client_ip: str = "") -> TopupStarted:
    """Create a pending top-up payment and the signed request that sends the buyer to the gateway."""
    channel = PaymentChannel.objects.filter(code=channel_code, is_enabled=True).first()
    if channel is None:
        raise NotFoundError("支付方式不存在或已停用", code="channel_not_found")
    try:
        amount = parse_amount(
            amount_text,
            minimum=max(channel.min_amount, Decimal(settings.KAMENG_TOPUP_MIN)),
            maximum=min(channel.max_amount, Decimal(settings.KAMENG_TOPUP_MAX)),
        )
    except MoneyError as error:
        raise ApplicationError(str(error), code="invalid_amount") from error
    payment = Payment.objects.create(number=public_number("P"), user_id=user_id, channel=channel,
                                     purpose=PaymentPurpose.WALLET_TOPUP, amount=amount)
    start = gateway_for(channel).start(
        out_trade_no=payment.number, amount=amount, subject=f"钱包充值 ¥{amount}",
        notify_url=notify_url, return_url=return_url, client_ip=client_ip,
    )
    return TopupStarted(payment=payment, start=start)


def _masked(params: dict[str, str]) -> dict[str, str]:
    return {key: ("***" if key in SECRET_PARAMS else mask_text(str(value))[:500]) for key, value in params.items()}


def _record(channel: PaymentChannel | None, payment: Payment | None, outcome: str, reason: str, *,
            params: dict[str, str], remote_addr: str | None) -> None:
    PaymentNotification.objects.create(channel=channel, payment=payment, outcome=outcome, reason=reason[:200],
                                       params=_masked(params), remote_addr=remote_addr or None)


@dataclass(frozen=True)
class NotificationAnswer:
    body: str
    status: int
    outcome: str


def payment_notification_process(*, channel_code: str, params: dict[str, str],
                                 remote_addr: str | None = None) -> NotificationAnswer:
    """Verify and apply one asynchronous notification; safe to call any number of times, concurrently."""
    channel = PaymentChannel.objects.filter(code=channel_code).first()
    if channel is None:
        _record(None, None, NotificationOutcome.REJECTED, f"unknown channel {channel_code}", params=params,
                remote_addr=remote_addr)
        return NotificationAnswer("unknown channel", 404, NotificationOutcome.REJECTED)
    gateway = gateway_for(channel)
    try:
        verified = gateway.verify_notification(params)
    except NotificationRejectedError as error:
        logger.warning("risk: rejected %s notification from %s: %s", channel.code, remote_addr, error.message)
        _record(channel, None, NotificationOutcome.REJECTED, error.message, params=params, remote_addr=remote_addr)
        return NotificationAnswer("fail", 400, NotificationOutcome.REJECTED)
    if not verified.is_paid:
        _record(channel, None, NotificationOutcome.NOT_PAID, "trade not successful", params=params,
                remote_addr=remote_addr)
        return NotificationAnswer(gateway.acknowledge(), 200, NotificationOutcome.NOT_PAID)
    outcome, reason, payment = payment_credit(
        channel=channel, out_trade_no=verified.out_trade_no, amount=verified.amount,
        gateway_trade_no=verified.gateway_trade_no)
    _record(channel, payment, outcome, reason, params=params, remote_addr=remote_addr)
    if outcome == NotificationOutcome.REJECTED:
        logger.warning("risk: %s notification for %s refused: %s", channel.code, verified.out_trade_no, reason)
        return NotificationAnswer("fail", 400, outcome)
    return NotificationAnswer(gateway.acknowledge(), 200, outcome)


def payment_credit(*, channel: PaymentChannel, out_trade_no: str, amount: Decimal,
                   gateway_trade_no: str) -> tuple[str, str, Payment | None]:
    """Mark a payment paid and credit the wallet exactly once. Returns (outcome, reason, payment)."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(number=out_trade_no, channel=channel).first()
        if payment is None:
            return NotificationOutcome.REJECTED, "unknown out_trade_no", None
        if amount != payment.amount:
            return NotificationOutcome.REJECTED, f"amount {amount} ≠ expected {payment.amount}", payment
        if payment.status == PaymentStatus.SUCCEEDED:
            return NotificationOutcome.DUPLICATE, "already credited", payment
        payment.status = PaymentStatus.SUCCEEDED
        payment.gateway_trade_no = gateway_trade_no[:64]
        payment.paid_at = timezone.now()
        payment.save(update_fields=["status", "gateway_trade_no", "paid_at"])
        journal_post(
            kind=JournalKind.WALLET_TOPUP, reference=payment.number, memo=f"{channel.name} 充值",
            legs=[debit(system_account_id(kind=AccountKind.GATEWAY_CLEARING, suffix=channel.code), payment.amount),
                  credit(wallet_account_id(user_id=payment.user_id), payment.amount)],
        )
    return NotificationOutcome.CREDITED, "", payment


def payments_reconcile_pending(*, older_than_seconds: int = 60, within_hours: int = 24, limit: int = 100) -> int:
    """Ask the gateway about pending payments whose notification may have been lost; credit the paid ones."""
    now = timezone.now()
    pending = list(
        Payment.objects.filter(status=PaymentStatus.PENDING,
                               created_at__lte=now - timedelta(seconds=older_than_seconds),
                               created_at__gte=now - timedelta(hours=within_hours))
        .select_related("channel").order_by("created_at")[:limit]
    )
    credited = 0
    for payment in pending:
        try:
            result = gateway_for(payment.channel).query(out_trade_no=payment.number)  # outside any transaction
        except ApplicationError as error:
            logger.info("query for %s failed: %s", payment.number, error.message)
            continue
        if result.is_paid and result.amount is not None:
            outcome, reason, _ = payment_credit(channel=payment.channel, out_trade_no=payment.number,
                                                amount=result.amount, gateway_trade_no=result.gateway_trade_no)
            if outcome == NotificationOutcome.CREDITED:
                credited += 1
            elif outcome == NotificationOutcome.REJECTED:
                logger.warning("risk: query for %s refused: %s", payment.number, reason)
    return credited
