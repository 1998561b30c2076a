"""What every supplier connector speaks, whatever the upstream's protocol (Fulu, a generic HTTP API, manual stock).

A connector never raises for the upstream's answers: a refusal is `FAILED` (with `may_try_next` when the upstream
certainly did not take the order), a timeout, a dropped connection or a garbled reply is `UNKNOWN` — the order may
or may not exist upstream, so the caller queries by `customer_order_no` before anything else. `NOT_FOUND` from a
query means the upstream has no such order (it may be submitted again with the same number). Connectors are
called outside any database transaction.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol


class Outcome(enum.StrEnum):
    SUCCEEDED = "succeeded"  # delivered: the operator serial (top-up) or the cards (card order) are known
    PROCESSING = "processing"  # accepted, the result comes by callback or by query
    FAILED = "failed"  # confirmed failure (or refusal): nothing was or will be delivered for this number
    UNKNOWN = "unknown"  # timeout, connection lost, unreadable answer: query before doing anything else
    NOT_FOUND = "not_found"  # (query only) the upstream has no order with this number


class TopupKind(enum.StrEnum):
    MOBILE = "mobile"  # 话费 by phone number and face value (Fulu fulu.order.mobile.add)
    DIRECT = "direct"  # 直充 of a product to an account (Fulu fulu.order.direct.add)
    CARD = "card"  # card keys bought from the upstream (Fulu fulu.order.card.add)


@dataclass(frozen=True)
class TopupRequest:
    customer_order_no: str  # our number: the idempotency key the upstream sees
    kind: TopupKind
    upstream_product_id: str
    quantity: int
    charge_account: str = ""  # phone number for MOBILE, game/app account for DIRECT
    face_value: Decimal | None = None  # MOBILE: the amount to credit
    # DIRECT: game name, region, server, role… as the product's form template names them (game_name, region,
    # server, role are the usual keys).
    extra: Mapping[str, str] = field(default_factory=dict)
    max_price: Decimal | None = None  # the most we pay per unit (Fulu customer_price); None: not sent
    notify_url: str = ""


@dataclass(frozen=True)
class TopupAnswer:
    outcome: Outcome
    supplier_order_id: str = ""
    operator_serial: str = ""
    cards: tuple[str, ...] = ()  # card secrets of a CARD order (never logged)
    code: str = ""  # the upstream's own error code, for staff
    message: str = ""  # the upstream's own message, for staff (masked of personal data)
    may_try_next: bool = False  # FAILED only: the upstream refused before accepting; failing over is safe


@dataclass(frozen=True)
class CallbackResult:
    customer_order_no: str
    answer: TopupAnswer
    reply: str  # the body the upstream expects back (Fulu: "success")


@dataclass(frozen=True)
class UpstreamGoods:
    product_id: str
    name: str
    price: Decimal
    stock: int | None = None  # None: the upstream does not say
    face_value: Decimal | None = None
    is_available: bool = True


class CallbackRejectedError(Exception):
    """A callback whose signature or content does not verify: answered 400, nothing changes."""


class SupplierConnector(Protocol):
    kind: str
    # Whether the upstream calls back with the result; when False the worker polls with `topup_query`.
    has_callbacks: bool

    def topup_submit(self, request: TopupRequest) -> TopupAnswer: ...

    def topup_query(self, customer_order_no: str) -> TopupAnswer: ...

    def callback_verify(self, *, body: bytes, headers: Mapping[str, str]) -> CallbackResult: ...

    def goods_list(self) -> list[UpstreamGoods]: ...
