"""Shared by the AML review tests: a buyer's top-up paid through the epay channel, and a verified identity."""

from __future__ import annotations

from decimal import Decimal
from itertools import count

from django.utils import timezone

from kameng.accounts.identity import check_character
from kameng.accounts.models import RealName, RealNameStatus, User
from kameng.payments.models import AmlPolicy, Payment, PaymentChannel, PaymentPurpose
from kameng.payments.services import NotificationOutcome, payment_credit

ID_NUMBER = "11010519491231002" + check_character("11010519491231002")
REAL_NAME = "张小三"
_numbers = count(1)


def channel() -> PaymentChannel:
    found = PaymentChannel.objects.filter(code="epay").first()
    if found is not None:
        return found
    from tests.payments.support import epay_channel

    return epay_channel()


def topup(user: User, amount: str, *, client_ip: str | None = None) -> Payment:
    """A pending wallet top-up of `amount`."""
    return Payment.objects.create(number=f"PA{next(_numbers):06d}", user=user, channel=channel(),
                                  purpose=PaymentPurpose.WALLET_TOPUP, amount=Decimal(amount), client_ip=client_ip)


def paid_topup(user: User, amount: str, *, client_ip: str | None = None) -> Payment:
    """A top-up whose payment arrived (credited to the wallet or held, as the AML review decides)."""
    payment = topup(user, amount, client_ip=client_ip)
    outcome, _, _ = payment_credit(channel=payment.channel, out_trade_no=payment.number, amount=payment.amount,
                                   gateway_trade_no=f"T{payment.number}")
    assert outcome == NotificationOutcome.CREDITED
    payment.refresh_from_db()
    return payment


def verify(user: User) -> RealName:
    return RealName.objects.create(user=user, status=RealNameStatus.VERIFIED, name=REAL_NAME, id_number=ID_NUMBER,
                                   verified_at=timezone.now(), provider="test")


def policy(**changes: object) -> AmlPolicy:
    values: dict[str, object] = {"threshold": Decimal("5000.00"), "structuring_ratio": Decimal("0.80"),
                                 "structuring_count": 3, "structuring_daily_sum": Decimal("0.00"),
                                 "structuring_window_hours": 24, "retention_days": 30}
    values.update(changes)
    return AmlPolicy.objects.create(**values)
