"""The gateway interface every payment adapter implements.

An adapter speaks one protocol (epay V1/V2, Alipay, WeChat Pay v3). It never touches the database: the payment
services call it outside any transaction and record what it answered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from kameng.core.errors import ApplicationError

# An amount in yuan as gateways write it: ASCII digits, at most two decimals, nothing around it. Decimal() alone
# would also take "sNaN", "5E+1", full-width digits and a trailing newline.
GATEWAY_AMOUNT = re.compile(r"\d{1,10}(\.\d{1,2})?", re.ASCII)


def gateway_amount(text: object) -> Decimal | None:
    """The amount a gateway sent, or None when it is not written exactly like one."""
    if not isinstance(text, str) or GATEWAY_AMOUNT.fullmatch(text) is None:
        return None
    return Decimal(text)


class NotificationRejectedError(ApplicationError):
    """A notification that must change nothing: bad signature, unknown merchant, malformed fields."""


class GatewayError(ApplicationError):
    """The gateway could not be reached or answered with an error (the caller retries or queries later).

    For a request that moves money the outcome is unknown: the gateway may have acted on it. Only a query (or an
    idempotency key) can tell; sending it again blindly may do it twice.
    """

    status_code = 502


class RequestNotSentError(GatewayError):
    """The request certainly never reached the gateway (no connection could be made): sending it again is safe
    even where the protocol has no idempotency key."""


class ChannelMisconfiguredError(ApplicationError):
    """A channel lacks what its protocol needs (a key, the merchant id…): it is not used at all, nothing is sent."""

    status_code = 503


@dataclass(frozen=True)
class PaymentStart:
    """How the buyer proceeds: a redirect URL (cashier page), a QR code payload to render, or an HTML form."""

    redirect_url: str = ""
    qr_code: str = ""
    html: str = ""
    gateway_trade_no: str = ""


@dataclass(frozen=True)
class IncomingNotification:
    """An asynchronous notification as received: query and form parameters merged, headers, the raw body."""

    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased
    body: bytes = b""


@dataclass(frozen=True)
class NotificationReply:
    body: str
    status: int = 200
    content_type: str = "text/plain"


@dataclass(frozen=True)
class VerifiedNotification:
    """What a notification says, once its signature has been checked. Amount is a Decimal in yuan."""

    out_trade_no: str
    gateway_trade_no: str
    amount: Decimal
    is_paid: bool
    merchant_id: str
    # A stable id of this notification where the protocol has one (Alipay notify_id, WeChat event id).
    notification_id: str = ""


@dataclass(frozen=True)
class QueryResult:
    is_paid: bool
    amount: Decimal | None
    gateway_trade_no: str
    # The gateway says, beyond doubt, that this trade failed and took no money (UnionPay origRespCode other than
    # 00/03/04/05): it will never be paid. Not paid yet, or not known, is is_paid=False with is_failed=False.
    is_failed: bool = False
    failure: str = ""  # the gateway's own words for it, for the record


class CloseStatus:
    CLOSED = "closed"  # the gateway closed the trade, or never opened one: it cannot be paid there any more
    NOT_OPEN = "not_open"  # refused because the trade is no longer waiting (paid meanwhile, or over): query it
    UNSUPPORTED = "unsupported"  # the protocol has no close call (epay): a late payment still comes by notification


@dataclass(frozen=True)
class CloseResult:
    status: str
    message: str = ""


class RefundStatus:
    SUCCEEDED = "succeeded"
    PENDING = "pending"  # accepted, final result later (query again)
    FAILED = "failed"  # the gateway refused this refund: nothing was paid out
    NOT_FOUND = "not_found"  # a refund query: the gateway has no refund under this number (may be sent again)
    NEEDS_REVIEW = "needs_review"  # stuck on the gateway's side, a person must settle it there (WeChat ABNORMAL)


@dataclass(frozen=True)
class RefundResult:
    status: str
    gateway_refund_no: str = ""
    message: str = ""


class PaymentGateway(Protocol):
    # Whether `refund_query` can tell what became of a refund sent before (epay V1 has no such call).
    has_refund_query: bool
    # Whether `close` can stop a trade from being paid (Alipay trade.close, WeChat close order; epay has none).
    has_close: bool

    def start(self, *, out_trade_no: str, amount: Decimal, subject: str, notify_url: str, return_url: str,
              client_ip: str) -> PaymentStart: ...

    def verify_notification(self, notification: IncomingNotification) -> VerifiedNotification: ...

    def return_is_authentic(self, params: dict[str, str]) -> bool:
        """Whether the query a gateway sent the buyer back with is signed by it for this merchant. A return is not
        a notification (Alipay's carries no trade status): it only says which payment to ask about now."""
        ...

    def acknowledge(self) -> NotificationReply: ...

    def reject(self, reason: str) -> NotificationReply: ...

    def query(self, *, out_trade_no: str) -> QueryResult: ...

    def close(self, *, out_trade_no: str) -> CloseResult:
        """Close an unpaid trade so the buyer can no longer pay it (its QR code, its cashier page): CLOSED,
        NOT_OPEN (paid or finished meanwhile: ask `query`) or UNSUPPORTED. Raises GatewayError when it cannot
        tell (unreachable, unsigned or odd answer)."""
        ...

    def refund(self, *, out_trade_no: str, gateway_trade_no: str, refund_no: str, amount: Decimal,
               total_amount: Decimal, reason: str) -> RefundResult: ...

    def refund_query(self, *, out_trade_no: str, gateway_trade_no: str, refund_no: str) -> RefundResult:
        """What the gateway did with refund `refund_no`: SUCCEEDED, PENDING, FAILED, NEEDS_REVIEW or NOT_FOUND.
        Raises GatewayError when it cannot tell (unreachable, unsigned or odd answer)."""
        ...
