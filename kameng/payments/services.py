"""Writes on payments: starting a top-up or an order payment, processing a gateway notification and crediting it.
Recovering lost notifications and closing payments that can no longer pay is kameng.payments.reconciliation.

Every gateway payment lands in the buyer's wallet first (gateway clearing → wallet), and an order payment then pays
its order from the wallet in the same transaction. So a payment that arrives after its order expired or sold out is
never lost: it stays in the wallet, and the order's timeline says so.

A wallet top-up that the AML review holds (kameng.payments.aml) is credited to the buyer's held top-ups instead of
the wallet, under the same journal kind and reference, so the guarantees below cover it too.

Crediting is idempotent three times over: the payment row is locked and its status checked, the status moves only
once, and the ledger refuses a second journal for the same (kind, reference). Gateways are never called inside a
database transaction. Locks follow kameng/orders/services.py: the order (when the payment pays one), then the
payment, then the wallet (kameng.payments.locks).
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from kameng.accounts.paypin import PinSettings, pin_settings_for, wallet_payment_authorize
from kameng.core.errors import ApplicationError, ConflictError, NotFoundError
from kameng.core.ids import public_number
from kameng.core.money import MoneyError, grouped, parse_amount
from kameng.ledger import recipes
from kameng.ledger.services import journal_draft_post
from kameng.orders.events import GatewayPayment
from kameng.orders.models import Order, OrderStatus
from kameng.orders.refunds import order_note
from kameng.orders.services import order_pay_with_wallet
from kameng.payments.aml import aml_topup_credit, device_index_of
from kameng.payments.gateways.base import (
    ChannelMisconfiguredError,
    IncomingNotification,
    NotificationRejectedError,
    PaymentGateway,
    PaymentStart,
    VerifiedNotification,
)
from kameng.payments.gateways.registry import channel_check_usable, gateway_for, notification_reject_for
from kameng.payments.intake import (
    NUL,
    notification_address_is_throttled,
    notification_params_stored,
    notification_refused_from,
    storable,
    unknown_channel_row_allowed,
)
from kameng.payments.links import payment_notify_url, payment_return_url
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
from kameng.payments.selectors import channel_enabled, is_channel_code, payment_in_flight_for_order
from kameng.risk.engine import RiskContext, risk_check
from kameng.risk.models import Checkpoint
from kameng.risk.services import risk_event_record

logger = logging.getLogger(__name__)

__all__ = ["gateway_for"]  # re-exported: callers and tests pick the adapter through the services module


def _enabled_channel(channel_code: str) -> PaymentChannel:
    channel = channel_enabled(code=channel_code)  # None too for a code not shaped like one (a NUL, 500 characters)
    if channel is None:
        raise NotFoundError("支付方式不存在或已停用", code="channel_not_found")
    channel_check_usable(channel)  # before any payment row is written for it
    return channel


def payment_channel_for_amount(*, channel_code: str, amount: Decimal) -> PaymentChannel:
    """The enabled, usable channel `channel_code`, if it takes `amount`; the buyer-facing error otherwise. Callers
    that decide before any order or payment exists (the purchase service) ask this first."""
    channel = _enabled_channel(channel_code)
    _check_channel_limits(channel, amount)
    return channel


def _check_channel_limits(channel: PaymentChannel, amount: Decimal) -> None:
    if amount < channel.min_amount or amount > channel.max_amount:
        raise ApplicationError(
            "「%(name)s」单笔金额需在 ¥%(min)s–¥%(max)s 之间，请换一种支付方式", code="amount_out_of_channel_range",
            extra={"min": str(channel.min_amount), "max": str(channel.max_amount)},
            params={"name": channel.name, "min": grouped(channel.min_amount), "max": grouped(channel.max_amount)},
        )


@dataclass(frozen=True)
class TopupStarted:
    payment: Payment
    start: PaymentStart


def _start_with_gateway(payment: Payment, channel: PaymentChannel, *, subject: str, return_url: str | None,
                        client_ip: str) -> PaymentStart:
    """Ask the gateway how the buyer pays (outside any transaction) and keep a QR payload to show again. The
    gateway notifies payment_notify_url(channel) and sends the buyer back to payment_return_url() (kameng.payments
    .links) unless the caller names another return page."""
    start = gateway_for(channel).start(out_trade_no=payment.number, amount=payment.amount, subject=subject,
                                       notify_url=payment_notify_url(channel_code=channel.code),
                                       return_url=return_url or payment_return_url(), client_ip=client_ip)
    if start.qr_code or start.gateway_trade_no:
        payment.qr_code = start.qr_code
        payment.gateway_trade_no = start.gateway_trade_no[:64]
        payment.save(update_fields=["qr_code", "gateway_trade_no"])
    return start


def wallet_topup_start(*, user_id: int, channel_code: str, amount_text: str, return_url: str | None = None,
                       client_ip: str = "", device: str = "") -> TopupStarted:
    """Create a pending top-up payment and the signed request that sends the buyer to the gateway. The client's
    address and device id (kameng.core.device; kept as a blind index) are kept for the AML review. Risk control's
    top-up checkpoint (kameng.risk.engine) decides once the amount is known, before the payment row exists."""
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
    risk_check(checkpoint=Checkpoint.TOPUP, context=RiskContext(user_id=user_id, ip=client_ip or None,
                                                                device_id=device or None, amount=amount))
    payment = Payment.objects.create(number=public_number("P"), user_id=user_id, channel=channel,
                                     purpose=PaymentPurpose.WALLET_TOPUP, amount=amount,
                                     client_ip=_ip_or_none(client_ip), device_index=device_index_of(device))
    start = _start_with_gateway(payment, channel, subject=f"钱包充值 ¥{amount}", return_url=return_url,
                                client_ip=client_ip)
    return TopupStarted(payment=payment, start=start)


def _ip_or_none(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


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


class PaymentInFlightError(ConflictError):
    """Another payment of the order is under way at a gateway: paying it a second way needs the buyer's word."""


def _check_no_payment_in_flight(order_id: int, *, is_second_payment_confirmed: bool) -> None:
    in_flight = payment_in_flight_for_order(order_id=order_id)
    if in_flight is not None and not is_second_payment_confirmed:
        raise PaymentInFlightError(
            "这笔订单已有一笔「%(channel)s」付款正在确认中；如果您已经付款，请稍候，无需再次支付",
            code="payment_in_flight", params={"channel": in_flight.channel.name},
            extra={"payment": in_flight.number, "channel": in_flight.channel.code})


def _authorize_wallet_payment(order: Order | None, *, buyer_id: int, pin: str | None,
                              pin_settings: PinSettings | None) -> None:
    """The PIN check of a pending order paid from the wallet (kameng.accounts.paypin), before anything is written.
    An order that is not the buyer's or no longer payable is left to the payment's own refusal."""
    if order is None or order.buyer_id != buyer_id or order.status != OrderStatus.PENDING_PAYMENT:
        return
    wallet_payment_authorize(user_id=buyer_id, amount=order.total_amount, pin=pin, pin_settings=pin_settings)


def order_pay_from_wallet(*, order_id: int, buyer_id: int, is_second_payment_confirmed: bool = False,
                          pin: str | None = None, pin_settings: PinSettings | None = None) -> Order:
    """Pay a pending order from the wallet balance; refused (PaymentInFlightError) while a gateway payment of
    the same order is in flight, unless the buyer confirmed paying it a second way; and, above the buyer's
    password-free limit, without the right payment PIN (`pin`; `pin_settings` as for `wallet_payment_authorize`)."""
    _check_no_payment_in_flight(order_id, is_second_payment_confirmed=is_second_payment_confirmed)
    if pin_settings is None:
        pin_settings = pin_settings_for(user_id=buyer_id)
    if pin_settings.has_pin:
        order = Order.objects.filter(pk=order_id).only("pk", "buyer_id", "status", "total_amount").first()
        _authorize_wallet_payment(order, buyer_id=buyer_id, pin=pin, pin_settings=pin_settings)
    return order_pay_with_wallet(order_id=order_id, buyer_id=buyer_id)


def order_payment_start(*, order_id: int, buyer_id: int, channel_code: str, return_url: str | None = None,
                        client_ip: str = "", is_second_payment_confirmed: bool = False,
                        pin: str | None = None) -> OrderPaymentStarted:
    """Pay an unpaid order with a channel: the wallet balance pays at once; a gateway gets a payment of exactly
    the order total, whose notification later pays the order (through the wallet, see the module docstring).
    While another gateway payment of the order is in flight this is refused (PaymentInFlightError) unless the
    buyer confirmed paying a second way. The gateway is told payments' own notify and return addresses. The
    balance asks for the payment PIN as `order_pay_from_wallet` does."""
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
    _check_no_payment_in_flight(order.pk, is_second_payment_confirmed=is_second_payment_confirmed)
    if channel.kind == ChannelKind.BALANCE:
        _authorize_wallet_payment(order, buyer_id=buyer_id, pin=pin, pin_settings=None)
        order = order_pay_with_wallet(order_id=order.pk, buyer_id=buyer_id)
        return OrderPaymentStarted(order=order, payment=None, start=PaymentStart())
    payment = Payment.objects.create(number=public_number("P"), user_id=buyer_id, channel=channel,
                                     purpose=PaymentPurpose.ORDER, order=order, amount=order.total_amount)
    start = _start_with_gateway(payment, channel, subject=order.title[:60], return_url=return_url, client_ip=client_ip)
    return OrderPaymentStarted(order=order, payment=payment, start=start)


def channel_shows_qr(channel: PaymentChannel) -> bool:
    return channel.pay_type in QR_PAY_TYPES


def _record(channel: PaymentChannel | None, payment: Payment | None, outcome: str, reason: str, *,
            params: dict[str, str], remote_addr: str | None) -> None:
    reason = storable(reason)
    PaymentNotification.objects.create(channel=channel, payment=payment, outcome=outcome, reason=reason[:200],
                                       params=notification_params_stored(params), remote_addr=remote_addr or None)
    if outcome == NotificationOutcome.REJECTED:
        notification_refused_from(remote_addr=remote_addr)
        risk_event_record(
            kind="payment_notification_rejected",
            message=f"{channel.name if channel else '未知通道'} 通知被拒绝：{reason[:200]}",
            detail={"channel": channel.code if channel else "", "reason": reason[:200],
                    "out_trade_no": storable(str(params.get("out_trade_no", "")))[:64],
                    "payment": payment.number if payment else ""},
            user_id=payment.user_id if payment else None, remote_addr=remote_addr,
        )


def _carries_nul(params: dict[str, str], headers: dict[str, str]) -> bool:
    return any(NUL in key or NUL in str(value) for fields in (params, headers) for key, value in fields.items())


THROTTLED = "throttled"  # answered 429 unread: not a NotificationOutcome, no row is written


@dataclass(frozen=True)
class NotificationAnswer:
    body: str
    status: int
    outcome: str
    content_type: str = "text/plain"


def _verified(gateway: PaymentGateway, notification: IncomingNotification, *,
              channel_code: str) -> VerifiedNotification:
    if _carries_nul(notification.params, notification.headers):
        # No gateway sends one, and PostgreSQL could not even look the payment up with it: refused unread.
        raise NotificationRejectedError("通知参数含有 NUL 字符，已拒绝", code="nul_character")
    try:
        verified = gateway.verify_notification(notification)
    except NotificationRejectedError:
        raise
    except Exception as error:
        # An adapter that trips over what it was sent: the notification is still on record, and the gateway is
        # told to send it again (a fixed adapter will then take it).
        logger.exception("notification to %s could not be verified", channel_code)
        raise NotificationRejectedError("通知无法解析（内部错误），已要求网关重发", code="unreadable") from error
    if NUL in verified.out_trade_no + verified.gateway_trade_no + verified.notification_id:
        raise NotificationRejectedError("通知内容含有 NUL 字符，已拒绝", code="nul_character")
    return verified


def payment_notification_process(*, channel_code: str, params: dict[str, str] | None = None,
                                 headers: dict[str, str] | None = None, body: bytes = b"",
                                 remote_addr: str | None = None) -> NotificationAnswer:
    """Verify and apply one asynchronous notification; safe to call any number of times, concurrently. Every
    notification gets a row (kameng.payments.intake bounds what it holds), except from an address over its
    refusal limit and past the cap for unknown channels."""
    params = params or {}
    if notification_address_is_throttled(remote_addr=remote_addr):
        logger.info("notification from %s to %s not processed: too many refused from that address",
                    remote_addr, storable(channel_code)[:40])
        return NotificationAnswer("too many refused notifications", 429, THROTTLED)
    channel = PaymentChannel.objects.filter(code=channel_code).first() if is_channel_code(channel_code) else None
    if channel is None or channel.kind == ChannelKind.BALANCE:
        if unknown_channel_row_allowed():
            _record(None, None, NotificationOutcome.REJECTED, f"未知通道「{storable(channel_code)[:40]}」",
                    params=params, remote_addr=remote_addr)
        else:
            notification_refused_from(remote_addr=remote_addr)
            logger.warning("notification to unknown channel %r from %s not recorded: too many this minute",
                           storable(channel_code)[:40], remote_addr)
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
        verified = _verified(gateway, notification, channel_code=channel.code)
    except NotificationRejectedError as error:
        _record(channel, None, NotificationOutcome.REJECTED, error.message, params=params, remote_addr=remote_addr)
        reply = gateway.reject(error.message)
        return NotificationAnswer(reply.body, reply.status, NotificationOutcome.REJECTED, reply.content_type)
    logged = params or {"out_trade_no": verified.out_trade_no, "trade_no": verified.gateway_trade_no,
                        "amount": str(verified.amount), "notification_id": verified.notification_id}
    if not verified.is_paid:
        _record(channel, None, NotificationOutcome.NOT_PAID, "交易未成功，未入账", params=logged,
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
            return NotificationOutcome.REJECTED, "商户订单号不存在（unknown out_trade_no）", None
        if amount != payment.amount:
            return (NotificationOutcome.REJECTED, f"金额 {amount} 与支付单金额 {payment.amount} 不符",
                    payment)
        if payment.status == PaymentStatus.SUCCEEDED:
            return NotificationOutcome.DUPLICATE, "此前已入账，本次忽略", payment
        # A CLOSED payment proven paid (a late notification, a return URL, a query) is credited all the same: the
        # money did arrive. Its close reason stays on it for the record.
        was_closed = payment.status == PaymentStatus.CLOSED
        payment.status = PaymentStatus.SUCCEEDED
        payment.gateway_trade_no = gateway_trade_no[:64] or payment.gateway_trade_no
        payment.paid_at = timezone.now()
        payment.save(update_fields=["status", "gateway_trade_no", "paid_at"])
        if payment.purpose == PaymentPurpose.WALLET_TOPUP:
            aml_topup_credit(payment=payment, channel=channel)  # to the wallet, or held for AML review
        else:
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
    paying = GatewayPayment(channel=channel.name, amount=payment.amount, number=payment.number)
    try:
        order_pay_with_wallet(order_id=order_id, buyer_id=payment.user_id, gateway_payment=paying,
                              honour_after_deadline=True)
    except ApplicationError as error:
        # The order could not take the money (expired, sold out, already paid another way): it stays in the wallet.
        order_note(order_id=order_id, said=paying.not_taken(reason=error.template, reason_params=error.params))
