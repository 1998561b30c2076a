"""Reads of payments and channels."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

from django.db.models import QuerySet
from django.utils import timezone

from kameng.core.ids import is_public_number
from kameng.payments.models import ChannelKind, Payment, PaymentChannel, PaymentPurpose, PaymentStatus

# What a channel code can look like (a slug of at most 40). Anything else names no channel and is answered without
# a query, like a number not shaped like one (kameng.core.ids.is_public_number).
CHANNEL_CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,40}", re.ASCII)


def is_channel_code(code: str) -> bool:
    return isinstance(code, str) and CHANNEL_CODE_RE.fullmatch(code) is not None


def channels_enabled() -> QuerySet[PaymentChannel]:
    return PaymentChannel.objects.filter(is_enabled=True).order_by("sort_order", "id")


def channels_offered(*, amount: Decimal | None = None) -> list[PaymentChannel]:
    """The gateway channels a buyer may choose, in display order: enabled, taking `amount` when given, and with
    every credential their protocol needs (the services refuse one that lacks any, so it is not offered at all)."""
    channels = channels_enabled().exclude(kind=ChannelKind.BALANCE)
    if amount is not None:
        channels = channels.filter(min_amount__lte=amount, max_amount__gte=amount)
    return [channel for channel in channels if not channel.missing_fields()]


def channel_enabled(*, code: str) -> PaymentChannel | None:
    if not is_channel_code(code):
        return None
    return channels_enabled().filter(code=code).first()


def payments_succeeded_for_order(*, order_id: int) -> QuerySet[Payment]:
    """Gateway payments made for an order that reached us (paid it, or landed in the wallet when it could not)."""
    return (Payment.objects.filter(order_id=order_id, status=PaymentStatus.SUCCEEDED)
            .select_related("channel").order_by("paid_at", "id"))


def payments_closed_for_order(*, order_id: int) -> QuerySet[Payment]:
    """Gateway payments of an order closed unpaid (kameng.payments.reconciliation), oldest first."""
    return (Payment.objects.filter(order_id=order_id, status=PaymentStatus.CLOSED)
            .select_related("channel").order_by("id"))


def payment_original_for_order(*, order_id: int) -> Payment | None:
    """The successful gateway payment an original-channel refund goes back through (None: paid from balance)."""
    return payments_succeeded_for_order(order_id=order_id).filter(purpose=PaymentPurpose.ORDER).order_by("id").first()


def payment_qr_pending_for_order(*, order_id: int) -> Payment | None:
    """The latest scan-to-pay payment of an order still waiting: the buyer can go back to its QR code."""
    return (Payment.objects.filter(order_id=order_id, status=PaymentStatus.PENDING).exclude(qr_code="")
            .select_related("channel").order_by("-id").first())


# How long after it started a pending gateway payment counts as in flight: the buyer may be paying it, or have
# paid and be waiting for the gateway's word (the top-up status page polls as long).
PAYMENT_IN_FLIGHT_MINUTES = 30


def _payments_in_flight() -> QuerySet[Payment]:
    """Gateway payments started recently and not settled: paying their order another way now may pay it twice (the
    second payment would then land in the wallet)."""
    since = timezone.now() - timedelta(minutes=PAYMENT_IN_FLIGHT_MINUTES)
    return Payment.objects.filter(status=PaymentStatus.PENDING, created_at__gte=since)


def payment_in_flight_for_order(*, order_id: int) -> Payment | None:
    """The latest of the order's payments in flight."""
    return _payments_in_flight().filter(order_id=order_id).select_related("channel").order_by("-id").first()


def orders_with_payment_in_flight(*, order_ids: list[int]) -> set[int]:
    """Which of these orders have a gateway payment in flight, in one query."""
    if not order_ids:
        return set()
    return set(_payments_in_flight().filter(order_id__in=order_ids).values_list("order_id", flat=True))


def payment_of_user(*, user_id: int, number: str) -> Payment | None:
    """The user's payment `number`; None (not found, no query made) for a number not shaped like one."""
    if not is_public_number(number):
        return None
    return Payment.objects.filter(user_id=user_id, number=number).first()
