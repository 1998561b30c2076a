"""Orders placed through the Open API v1: the record that ties an order to the reseller's request number, the
digest of the request that made it, and where to notify; looked up by request number or order number, only ever
within one reseller.

The order itself is written by the purchase service with `request_id` = the request number, so the order's own
unique (buyer, request_id) is what makes a request number give one order, even when two arrive at once. This
record is written right after, outside the checkout's transaction: if the process dies in between, the order
exists without it, and the next request with that number (a client retries) gets the order back from the
purchase service (a replay) and writes the record then; a lookup by request number finds the order either way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from kameng.catalog.pricing import SALES_CHANNEL_OPENAPI
from kameng.core.errors import ApplicationError, ConflictError
from kameng.core.ids import is_public_number
from kameng.core.ssrf import UnsafeUrlError, url_target_check
from kameng.orders.models import Order
from kameng.resellers.models import OpenApiOrder

NOTIFY_URL_MAX = 500


class InvalidNotifyUrlError(ApplicationError):
    status_code = 422


def openapi_body_digest(*, sku_id: int, quantity: int, recharge_account: str | None, notify_url: str | None) -> str:
    """SHA-256 of the request's meaningful fields, canonically encoded: the same request number with another
    digest is another request (409)."""
    canonical = json.dumps({"sku_id": sku_id, "quantity": quantity,
                            "recharge_account": (recharge_account or "").strip(),
                            "notify_url": (notify_url or "").strip()},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def notify_url_check(url: str | None) -> str:
    """The notify_url as stored ("" for none), checked by the SSRF guard that checks it again at every send
    (kameng.core.ssrf.url_target_check), under the one rule settings.KAMENG_NOTIFY_ALLOW_PRIVATE sets (off unless
    DEBUG): off, only https to a host whose every address is public (resolved now: a loopback, private, link-local
    or reserved target, localhost, user info or an IPv4 number in an odd spelling is refused with 422); on (the
    demo, local tests), http and private targets too. A name that does not resolve at all is taken (a DNS failure
    may be passing; the send resolves and checks it again, and the delivery log says why it was not sent)."""
    url = (url or "").strip()
    if not url:
        return ""
    if len(url) > NOTIFY_URL_MAX:
        raise InvalidNotifyUrlError("notify_url 最长 %(max)s 个字符", code="invalid_notify_url",
                                    params={"max": NOTIFY_URL_MAX})
    if not url.isprintable() or " " in url:
        raise InvalidNotifyUrlError("notify_url 不是有效的网址：不能包含空格或控制字符", code="invalid_notify_url")
    try:
        url_target_check(url)
    except UnsafeUrlError as error:
        if error.code != "url_unresolvable":
            raise InvalidNotifyUrlError("notify_url 不可用：%(reason)s", code="invalid_notify_url",
                                        params={"reason": error.message}) from error
    return url


@dataclass(frozen=True)
class RequestSeen:
    """A request number already recorded: its order and the digest of the body that made it."""

    order_id: int
    body_digest: str


def _table() -> str:
    return connection.ops.quote_name(OpenApiOrder._meta.db_table)


@dataclass(frozen=True)
class RequestFound:
    """The order under a request number, and the digest of its recorded request (None: the order exists but its
    record does not, yet — the purchase service answers it as a replay and the record is written then)."""

    order_id: int
    body_digest: str | None


def openapi_request_find(*, buyer_id: int, request_no: str) -> RequestFound | None:
    """The order of the reseller's user with this request number (its `request_id`), with its record's digest, or
    None when there is no such order at all. Plain SQL, one indexed query: every POST /orders asks it first."""
    orders = connection.ops.quote_name(Order._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT o.id, r.body_digest FROM {orders} o LEFT JOIN {_table()} r ON r.order_id = o.id "  # noqa: S608 - our own table names
                       "WHERE o.buyer_id = %s AND o.request_id = %s", [buyer_id, request_no])
        row = cursor.fetchone()
    return RequestFound(order_id=row[0], body_digest=row[1]) if row else None


def openapi_request_seen(*, reseller_id: int, request_no: str) -> RequestSeen | None:
    """The recorded request with this number, if any. Plain SQL: every POST /orders asks it first, and the ORM's
    compiling would cost more CPU than the query."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT order_id, body_digest FROM {_table()} WHERE reseller_id = %s AND request_no = %s",  # noqa: S608 - our own table name
                       [reseller_id, request_no])
        row = cursor.fetchone()
    return RequestSeen(order_id=row[0], body_digest=row[1]) if row else None


def openapi_order_record(*, order: Order, reseller_id: int, api_key_pk: int | None, request_no: str,
                         body_digest: str, notify_url: str) -> bool:
    """Tie the order to the request that made it (idempotent): True when written now, False when it was recorded
    already with the same body. Raises `request_no_conflict` (409) when the request number is already recorded with
    another body, or names an order that did not come through the Open API. One plain INSERT (a savepoint around it
    inside a caller's transaction, so that a conflict leaves that transaction usable)."""
    if order.sales_channel != SALES_CHANNEL_OPENAPI:
        raise ConflictError("request_no 已用于本账号在其他渠道下的订单，请换一个 request_no",
                            code="request_no_conflict")
    values = [order.pk, reseller_id, api_key_pk, request_no, body_digest, notify_url,
              connection.ops.adapt_datetimefield_value(timezone.now())]
    sql = (f"INSERT INTO {_table()} (order_id, reseller_id, api_key_id, request_no, body_digest, notify_url, "  # noqa: S608 - our own table name
           "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s)")
    try:
        with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext(), \
                connection.cursor() as cursor:
            cursor.execute(sql, values)
        return True
    except IntegrityError:  # recorded already: this request again, or the same one answered by another process
        seen = openapi_request_seen(reseller_id=reseller_id, request_no=request_no)
        if seen is None:
            raise
    openapi_order_conflict_check(seen.body_digest, body_digest=body_digest)
    return False


def openapi_order_conflict_check(recorded_digest: str, *, body_digest: str) -> None:
    if recorded_digest != body_digest:
        raise ConflictError("该 request_no 已用于另一笔订单（请求内容不同）", code="request_no_conflict")


def openapi_order_by_request(*, buyer_id: int, request_no: str) -> Order | None:
    """The Open API order of the reseller's user with this request number (recorded or not: the order's request_id
    is the request number)."""
    return Order.objects.filter(buyer_id=buyer_id, request_id=request_no, sales_channel=SALES_CHANNEL_OPENAPI).first()


def openapi_order_by_number(*, buyer_id: int, order_no: str) -> Order | None:
    """The reseller's Open API order with this number; None for anyone else's, or one from another channel."""
    if not is_public_number(order_no):
        return None
    return Order.objects.filter(buyer_id=buyer_id, number=order_no, sales_channel=SALES_CHANNEL_OPENAPI).first()
