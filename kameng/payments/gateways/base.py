"""The gateway interface every payment adapter implements."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from kameng.core.errors import ApplicationError


class NotificationRejectedError(ApplicationError):
    """A notification that must change nothing: bad signature, unknown merchant, malformed fields."""


@dataclass(frozen=True)
class PaymentStart:
    """How the buyer proceeds: a redirect URL (cashier page), a QR code payload, or an HTML form to post."""

    redirect_url: str = ""
    qr_code: str = ""
    html: str = ""


@dataclass(frozen=True)
class VerifiedNotification:
    """What a notification says, once its signature has been checked. Amount is a Decimal of the raw string."""

    out_trade_no: str
    gateway_trade_no: str
    amount: Decimal
    is_paid: bool
    merchant_id: str


@dataclass(frozen=True)
class QueryResult:
    is_paid: bool
    amount: Decimal | None
    gateway_trade_no: str


class PaymentGateway(Protocol):
    def start(self, *, out_trade_no: str, amount: Decimal, subject: str, notify_url: str, return_url: str,
              client_ip: str) -> PaymentStart: ...

    def verify_notification(self, params: dict[str, str]) -> VerifiedNotification: ...

    def acknowledge(self) -> str: ...

    def query(self, *, out_trade_no: str) -> QueryResult: ...
