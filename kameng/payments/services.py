"""Writes on payments: starting a top-up or an order payment, processing a gateway notification and crediting it.
Recovering lost notifications and closing payments that can no longer pay is kameng.payments.reconciliation.

Every gateway payment lands in the buyer's wallet first (gateway clearing → wallet), and an order payment then pays
its order from the wallet in the same transaction. So a payment that arrives after its order expired or sold out is
never lost: it stays in the wallet, and the order's timeline says so.

Crediting is idempotent three times over: the payment row is locked and its status checked, the status moves only
once, and the ledger refuses a second journal for the same (kind, reference). Gateways are never called inside a
database transaction. Locks follow kameng/orders/services.py: the order (when the payment pays one), then the
payment, then the wallet (kameng.payments.locks).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.core.ids import public_number
from kameng.core.masking import mask_text
from kameng.core.money import MoneyError, parse_amount
from kameng.ledger import recipes
from kameng.ledger.services import journal_draft_post
from kameng.orders.models import Order, OrderStatus
from kameng.orders.refunds import order_note
from kameng.orders.services import order_pay_with_wallet
from kameng.payments.gateways.base import (
    ChannelMisconfiguredError,
    IncomingNotification,
    NotificationRejectedError,
    PaymentStart,
)
from kameng.payments.gateways.registry import channel_check_usable, gateway_for, notification_reject_for
from kameng.payments.locks import payment_lock_for_credit
from kameng.payments.models import (
    QR_PAY_TYPES,
    ChannelKind,
    NotificationOutcome,
    Payment,
    PaymentChannel,
    PaymentNotification,
    PaymentPurpose,
    PaymentStatus,
)
from kameng.payments.selectors import channel_enabled
from kameng.risk.services import risk_event_record

logger = logging.getLogger(__name__)
SECRET_PARAMS = {"sign", "key", "signature", "wechatpay-signature"}

NUL = "\x00"

__all__ = ["gateway_for"]  # re-exported: callers and tests pick the adapter through the services module


def _enabled_channel(channel_code: str) -> PaymentChannel:
    channel = channel_enabled(code=channel_code)  # None too for a code not shaped like one (a NUL, 500 characters)
    if channel is None:
        raise NotFoundError("支付方式不存在或已停用", code="channel_not_found")
    channel_check_usable(channel)  # before any payment row is written for it
    return channel


def _check_channel_limits(channel: PaymentChannel, amount: Decimal) -> None:
    if amount < channel.min_amount or amount > channel.max_amount:
        raise ApplicationError(
            f"「{channel.name}」单笔金额需在 ¥{channel.min_amount}–¥{channel.max_amount} 之间，请换一种支付方式",
            code="amount_out_of_channel_range",
            extra={"min": str(channel.min_amount), "max": str(channel.max_amount)},
        )


@dataclass(frozen=True)
class TopupStarted:
    payment: Payment
    start: PaymentStart


def _start_with_gateway(payment: Payment, channel: PaymentChannel, *, subject: str, notify_url: str,
                        return_url: str, client_ip: str) -> PaymentStart:
    """Ask the gateway how the buyer pays (outside any transaction) and keep a QR payload to show again."""
    start = gateway_for(channel).start(out_trade_no=payment.number, amount=payment.amount, subject=subject,
                                       notify_url=notify_url, return_url=return_url, client_ip=client_ip)
    if start.qr_code or start.gateway_trade_no:
        payment.qr_code = start.qr_code
        payment.gateway_trade_no = start.gateway_trade_no[:64]
        payment.save(update_fields=["qr_code", "gateway_trade_no"])
    return start


def wallet_topup_start(*, user_id: int, channel_code: str, amount_text: str, notify_url: str, return_url: str,
                       client_ip: str = "") -> TopupStarted:
    """Create a pending top-up payment and the signed request that sends the buyer to the gateway."""
    channel = _enabled_channel(channel_code)
    if channel.kind == ChannelKind.BALANCE:
        raise ApplicationError("钱包余额不能用来给钱包充值，请选择其他支付方式", code="channel_not_for_topup")
    try:
        amount = parse_amount(
            amount_text,
            minimum=max(channel.min_amount, Decimal(settings.KAMENG_TOPUP_MIN)),
            maximum=min(channel.max_amount, Decimal(settings.KAMENG_TOPUP_MAX)),
        )
    except MoneyError as error:
        raise ApplicationError(error.template, params=error.params, code="invalid_amount") from error
    payment = Payment.objects.create(number=public_number("P"), user_id=user_id, channel=channel,
                                     purpose=PaymentPurpose.WALLET_TOPUP, amount=amount)
    start = _start_with_gateway(payment, channel, subject=f"钱包充值 ¥{amount}", notify_url=notify_url,
                                return_url=return_url, client_ip=client_ip)
    return TopupStarted(payment=payment, start=start)


@dataclass(frozen=True)
class OrderPaymentStarted:
    order: Order
    payment: Payment | None  # None when paid from the wallet balance at once
    start: PaymentStart

    @property
    def is_paid(self) -> bool:
        return self.payment is None

    @property
    def is_qr(self) -> bool:
        return bool(self.start.qr_code)


def order_payment_start(*, order_id: int, buyer_id: int, channel_code: str, notify_url: str, return_url: str,
                        client_ip: str = "") -> OrderPaymentStarted:
    """Pay an unpaid order with a channel: the wallet balance pays at once; a gateway gets a payment of exactly
    the order total, whose notification later pays the order (through the wallet, see the module docstring)."""
    channel = _enabled_channel(channel_code)
    order = Order.objects.filter(pk=order_id, buyer_id=buyer_id).first()
    if order is None:
        raise NotFoundError("订单不存在", code="order_not_found")
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise ConflictError("订单当前状态为「%(status)s」，无需支付", code="not_payable",
                            params={"status": order.get_status_display()})
    if order.expires_at is not None and order.expires_at <= timezone.now():
        raise ConflictError("订单已超时关闭，请重新下单", code="order_expired")
    _check_channel_limits(channel, order.total_amount)
    if channel.kind == ChannelKind.BALANCE:
        order = order_pay_with_wallet(order_id=order.pk, buyer_id=buyer_id)
        return OrderPaymentStarted(order=order, payment=None, start=PaymentStart())
    payment = Payment.objects.create(number=public_number("P"), user_id=buyer_id, channel=channel,
                                     purpose=PaymentPurpose.ORDER, order=order, amount=order.total_amount)
    start = _start_with_gateway(payment, channel, subject=order.title[:60], notify_url=notify_url,
                                return_url=return_url, client_ip=client_ip)
    return OrderPaymentStarted(order=order, payment=payment, start=start)


def channel_shows_qr(channel: PaymentChannel) -> bool:
    return channel.pay_type in QR_PAY_TYPES


def _storable(text: str) -> str:
    """PostgreSQL text and jsonb cannot hold a NUL character: keep the evidence, escaped as the four characters
    `\\x00` (a gateway never sends one, so the escape cannot be mistaken for something it sent)."""
    return text.replace(NUL, "\\x00")


def _masked(params: dict[str, str]) -> dict[str, str]:
    return {_storable(key): ("***" if key.lower() in SECRET_PARAMS else _storable(mask_text(str(value))[:500]))
            for key, value in params.items()}


def _record(channel: PaymentChannel | None, payment: Payment | None, outcome: str, reason: str, *,
            params: dict[str, str], remote_addr: str | None) -> None:
    reason = _storable(reason)
    PaymentNotification.objects.create(channel=channel, payment=payment, outcome=outcome, reason=reason[:200],
                                       params=_masked(params), remote_addr=remote_addr or None)
    if outcome == NotificationOutcome.REJECTED:
        risk_event_record(
            kind="payment_notification_rejected",
            message=f"{channel.name if channel else '未知通道'} 通知被拒绝：{reason}",
            detail={"channel": channel.code if channel else "", "reason": reason,
                    "out_trade_no": _storable(str(params.get("out_trade_no", ""))),
                    "payment": payment.number if payment else ""},
            user_id=payment.user_id if payment else None, remote_addr=remote_addr,
        )


def _carries_nul(params: dict[str, str], headers: dict[str, str]) -> bool:
    return any(NUL in key or NUL in str(value) for fields in (params, headers) for key, value in fields.items())


@dataclass(frozen=True)
class NotificationAnswer:
    body: str
    status: int
    outcome: str
    content_type: str = "text/plain"


def payment_notification_process(*, channel_code: str, params: dict[str, str] | None = None,
                                 headers: dict[str, str] | None = None, body: bytes = b"",
                                 remote_addr: str | None = None) -> NotificationAnswer:
    """Verify and apply one asynchronous notification; safe to call any number of times, concurrently."""
    params = params or {}
    channel = PaymentChannel.objects.filter(code=channel_code).first()
    if channel is None or channel.kind == ChannelKind.BALANCE:
        _record(None, None, NotificationOutcome.REJECTED, f"unknown channel {channel_code}", params=params,
                remote_addr=remote_addr)
        return NotificationAnswer("unknown channel", 404, NotificationOutcome.REJECTED)
    try:
        gateway = gateway_for(channel)
    except ChannelMisconfiguredError as error:
        missing = "、".join(error.extra.get("missing", []))
        reason = f"通道配置不完整（{f'缺少{missing}' if missing else error.message}），通知未处理，待补全后由网关重发"
        _record(channel, None, NotificationOutcome.REJECTED, reason, params=params, remote_addr=remote_addr)
        reply = notification_reject_for(channel, reason)
        return NotificationAnswer(reply.body, reply.status, NotificationOutcome.REJECTED, reply.content_type)
    notification = IncomingNotification(params=params, headers={k.lower(): v for k, v in (headers or {}).items()},
                                        body=body)
    try:
        if _carries_nul(notification.params, notification.headers):
            # No gateway sends one, and PostgreSQL could not even look the payment up with it: refused unread.
            raise NotificationRejectedError("通知参数含有 NUL 字符，已拒绝", code="nul_character")
        verified = gateway.verify_notification(notification)
        if NUL in verified.out_trade_no + verified.gateway_trade_no + verified.notification_id:
            raise NotificationRejectedError("通知内容含有 NUL 字符，已拒绝", code="nul_character")
    except NotificationRejectedError as error:
        _record(channel, None, NotificationOutcome.REJECTED, error.message, params=params, remote_addr=remote_addr)
        reply = gateway.reject(error.message)
        return NotificationAnswer(reply.body, reply.status, NotificationOutcome.REJECTED, reply.content_type)
    logged = params or {"out_trade_no": verified.out_trade_no, "trade_no": verified.gateway_trade_no,
                        "amount": str(verified.amount), "notification_id": verified.notification_id}
    if not verified.is_paid:
        _record(channel, None, NotificationOutcome.NOT_PAID, "trade not successful", params=logged,
                remote_addr=remote_addr)
        reply = gateway.acknowledge()
        return NotificationAnswer(reply.body, reply.status, NotificationOutcome.NOT_PAID, reply.content_type)
    outcome, reason, payment = payment_credit(
        channel=channel, out_trade_no=verified.out_trade_no, amount=verified.amount,
        gateway_trade_no=verified.gateway_trade_no)
    _record(channel, payment, outcome, reason, params=logged, remote_addr=remote_addr)
    reply = gateway.reject(reason) if outcome == NotificationOutcome.REJECTED else gateway.acknowledge()
    return NotificationAnswer(reply.body, reply.status, outcome, reply.content_type)


def payment_credit(*, channel: PaymentChannel, out_trade_no: str, amount: Decimal,
                   gateway_trade_no: str) -> tuple[str, str, Payment | None]:
    """Mark a payment paid and credit the wallet exactly once; an order payment then pays its order.

    Returns (outcome, reason, payment).
    """
    with transaction.atomic():
        payment = payment_lock_for_credit(number=out_trade_no, channel_id=channel.pk)  # its order first
        if payment is None:
            return NotificationOutcome.REJECTED, "unknown out_trade_no", None
        if amount != payment.amount:
            return NotificationOutcome.REJECTED, f"amount {amount} ≠ expected {payment.amount}", payment
        if payment.status == PaymentStatus.SUCCEEDED:
            return NotificationOutcome.DUPLICATE, "already credited", payment
        # A CLOSED payment proven paid (a late notification, a return URL, a query) is credited all the same: the
        # money did arrive. Its close reason stays on it for the record.
        was_closed = payment.status == PaymentStatus.CLOSED
        payment.status = PaymentStatus.SUCCEEDED
        payment.gateway_trade_no = gateway_trade_no[:64] or payment.gateway_trade_no
        payment.paid_at = timezone.now()
        payment.save(update_fields=["status", "gateway_trade_no", "paid_at"])
        journal_draft_post(draft=recipes.wallet_topup_credit(
            payment_number=payment.number, memo=f"{channel.name} {'订单付款' if payment.order_id else '充值'}",
            channel_code=channel.code, user_id=payment.user_id, amount=payment.amount))
        if payment.purpose == PaymentPurpose.ORDER and payment.order_id is not None:
            _pay_order_from_credited_payment(payment, channel)
    if was_closed:
        logger.warning("payment %s was paid after it had been closed (%s): credited", payment.number,
                       payment.close_reason)
    return NotificationOutcome.CREDITED, "支付单已关闭后到账，仍入账" if was_closed else "", payment


def _pay_order_from_credited_payment(payment: Payment, channel: PaymentChannel) -> None:
    order_id = payment.order_id
    assert order_id is not None
    try:
        order_pay_with_wallet(order_id=order_id, buyer_id=payment.user_id,
                              paid_message=f"已通过{channel.name}支付 ¥{payment.amount}", honour_after_deadline=True)
    except ApplicationError as error:
        # The order could not take the money (expired, sold out, already paid another way): it stays in the wallet.
        order_note(order_id=order_id,
                   message=f"{channel.name}付款 ¥{payment.amount} 已到账，但订单未能完成（{error.message}），"
                           f"款项已存入您的钱包余额")
