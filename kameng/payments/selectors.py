"""Reads of payments and channels."""

from __future__ import annotations

from django.db.models import QuerySet

from kameng.payments.models import Payment, PaymentChannel


def channels_enabled() -> QuerySet[PaymentChannel]:
    return PaymentChannel.objects.filter(is_enabled=True).order_by("sort_order", "id")


def payment_of_user(*, user_id: int, number: str) -> Payment | None:
    return Payment.objects.filter(user_id=user_id, number=number).first()
