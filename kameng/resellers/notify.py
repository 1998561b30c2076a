"""Notifications of Open API orders to the reseller's notify_url: scheduling, signed delivery with retries, the
attempt log.

When an order placed through the Open API with a `notify_url` reaches a status the reseller must hear of
(`NOTIFIED_STATUSES`: delivered, refunded in whole or in part, delivery failed), one NotifyDelivery is written per
(order, status) — a unique constraint, so the aftercare listener and the Open API's own call may both schedule it
— and sent after commit by a Celery task. A direct top-up that fails is refunded in the same transaction
(kameng.suppliers.topup → kameng.orders.fulfilment.order_refund_failed_delivery): the aftercare event is
"refunded", the order is REFUNDED, and the reseller is told `refunded`.

The POST: JSON `{order_no, request_no, status, keys?, operator_serial?}` signed with the Open API header scheme
(kameng.core.openapi_signing) using the secret of the API key that created the order, the signed path being the
notify URL's path with its query. Card secrets are read and decrypted only at send time, never stored in the
delivery's payload. The operator serial of a direct top-up is read from the order's timeline (the TOPUP_SUCCEEDED
event), so this module needs nothing from suppliers.

Every try is a NotifyAttempt (time, duration, HTTP status, response excerpt, error). A 2xx delivers; a 4xx other
than 429 gives up at once (the receiver refused it: sending the same again changes nothing); anything else is
retried with exponential backoff (`KAMENG_NOTIFY_BACKOFF_FIRST_SECONDS`, doubling, capped at
`KAMENG_NOTIFY_BACKOFF_MAX_SECONDS`) while the waits add up to at most `KAMENG_NOTIFY_RETRY_WINDOW_SECONDS` (24 h),
then gives up. States: pending → retrying → delivered | gave_up; a gave_up delivery may be sent again by its
reseller or staff (gave_up → pending, a new 24 h window: `attempts` counts the tries of the current window, the
attempt log keeps numbering on).

The delivery row is the outbox: a send is claimed by a conditional UPDATE (due `next_attempt_at`, the `attempts`
count seen) that pushes `next_attempt_at` out, so two workers never send the same attempt; the beat task
(`kameng.resellers.tasks.sweep_notifications`) sends what is due, including a send whose worker died. Targets are
checked against SSRF (kameng.core.ssrf) at every attempt, after DNS resolution, and the connection goes to the
address checked.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from kameng.core.errors import ConflictError, NotFoundError
from kameng.core.masking import mask_text
from kameng.core.openapi_signing import openapi_signed_headers
from kameng.core.ssrf import UnsafeUrlError, safe_post, url_target_check
from kameng.inventory.selectors import secrets_for_order
from kameng.orders.models import OrderEvent, OrderEventKind, OrderStatus
from kameng.resellers.models import NotifyAttempt, NotifyDelivery, NotifyState, OpenApiOrder

logger = logging.getLogger(__name__)

NOTIFIED_STATUSES = frozenset({OrderStatus.DELIVERED, OrderStatus.DELIVERY_FAILED, OrderStatus.REFUNDED,
                               OrderStatus.PARTIALLY_REFUNDED})
KEYS_STATUSES = frozenset({OrderStatus.DELIVERED})
OPEN = (NotifyState.PENDING, NotifyState.RETRYING)
# A claimed send not finished in this time (its worker died) is due again.
CLAIM_SECONDS = 60
EXCERPT_MAX = 500
ERROR_MAX = 300

TRANSITIONS: dict[str, frozenset[str]] = {
    NotifyState.PENDING: frozenset({NotifyState.RETRYING, NotifyState.DELIVERED, NotifyState.GAVE_UP}),
    NotifyState.RETRYING: frozenset({NotifyState.RETRYING, NotifyState.DELIVERED, NotifyState.GAVE_UP}),
    NotifyState.DELIVERED: frozenset(),
    NotifyState.GAVE_UP: frozenset({NotifyState.PENDING}),
}


# --- scheduling ------------------------------------------------------------------------------------------------

def order_notify_schedule(*, order_id: int) -> None:
    """Schedule the notification of the order's current status if it is final and the order came through the Open
    API with a notify_url; idempotent (one delivery per order and status). Called by the Open API after it
    recorded the order, and by the aftercare listener."""
    _schedule(OpenApiOrder.objects.filter(order_id=order_id))


def notify_aftercare(*, order_ids: list[int], event: str) -> None:
    """Aftercare listener (settings.KAMENG_ORDER_AFTERCARE): one query for the orders of the batch that came through
    the Open API with a notify_url (none, for a storefront checkout: nothing more is done). The query is written
    in plain SQL: it runs for every order the checkout delivers, and the ORM's compiling would cost more CPU than
    the query itself."""
    ids = [int(order_id) for order_id in order_ids]
    if not ids:
        return
    table = connection.ops.quote_name(OpenApiOrder._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT order_id FROM {table} WHERE order_id IN ({', '.join(['%s'] * len(ids))}) "  # noqa: S608 - placeholders only
                       "AND notify_url <> ''", ids)
        ours = [row[0] for row in cursor.fetchall()]
    if ours:
        _schedule(OpenApiOrder.objects.filter(order_id__in=ours))


def _schedule(openapi_orders: Any) -> None:
    rows = list(openapi_orders.exclude(notify_url="").filter(order__status__in=NOTIFIED_STATUSES)
                .values_list("pk", "order__status", "order__number", "request_no", "notify_url"))
    if not rows:
        return
    now = timezone.now()
    with transaction.atomic():
        NotifyDelivery.objects.bulk_create(
            [NotifyDelivery(openapi_order_id=pk, status=status, url=url, next_attempt_at=now,
                            payload={"order_no": number, "request_no": request_no, "status": status})
             for pk, status, number, request_no, url in rows],
            ignore_conflicts=True)
        ids = list(NotifyDelivery.objects.filter(
            openapi_order_id__in=[row[0] for row in rows], state=NotifyState.PENDING, attempts=0,
        ).values_list("pk", flat=True))
        transaction.on_commit(functools.partial(_enqueue, ids))


def _enqueue(delivery_ids: Iterable[int]) -> None:
    from kameng.resellers.tasks import send_notification

    for delivery_id in delivery_ids:
        try:
            send_notification.delay(delivery_id)
        except Exception:  # a broker down loses nothing: the sweeper sends what is due
            logger.exception("could not enqueue notification %s; the sweeper will", delivery_id)


# --- sending ---------------------------------------------------------------------------------------------------

def backoff_seconds(*, attempt: int) -> int:
    """The wait after the attempt-th failed try of a window (1, 2, …)."""
    first = settings.KAMENG_NOTIFY_BACKOFF_FIRST_SECONDS
    return int(min(first * (2 ** (attempt - 1)), settings.KAMENG_NOTIFY_BACKOFF_MAX_SECONDS))


def _waited_after(attempts: int) -> int:
    return sum(backoff_seconds(attempt=number) for number in range(1, attempts + 1))


def notify_deliver(*, delivery_id: int) -> str:
    """One attempt of the delivery if one is due (claimed first); its state after it ("" when nothing was due or
    another worker had it). Never inside a transaction: the POST may take the whole timeout."""
    now = timezone.now()
    seen = NotifyDelivery.objects.filter(pk=delivery_id, state__in=OPEN, next_attempt_at__lte=now).values_list(
        "attempts", flat=True).first()
    if seen is None:
        return ""
    claimed = NotifyDelivery.objects.filter(pk=delivery_id, state__in=OPEN, next_attempt_at__lte=now,
                                            attempts=seen).update(
        attempts=F("attempts") + 1, next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
    if not claimed:
        return ""
    delivery = NotifyDelivery.objects.select_related("openapi_order__api_key", "openapi_order__order").get(
        pk=delivery_id)
    attempt, is_final = _post(delivery)
    return _record(delivery, attempt, window_attempts=seen + 1, is_final=is_final)


def _body(delivery: NotifyDelivery) -> bytes:
    payload: dict[str, Any] = dict(delivery.payload)
    order_id = delivery.openapi_order.order_id
    if delivery.status in KEYS_STATUSES:
        keys = secrets_for_order(order_id=order_id)
        if keys:
            payload["keys"] = keys
        serial = (OrderEvent.objects.filter(order_id=order_id, kind=OrderEventKind.TOPUP_SUCCEEDED)
                  .order_by("-pk").values_list("params", flat=True).first())
        if isinstance(serial, dict) and serial.get("operator_serial"):
            payload["operator_serial"] = str(serial["operator_serial"])
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _post(delivery: NotifyDelivery) -> tuple[NotifyAttempt, bool]:
    """The attempt, and whether its failure is final whatever the retry window (no key to sign with, a target that
    is refused for what it is rather than for a DNS failure)."""
    is_final = False
    started_at = timezone.now()
    started = time.monotonic()
    attempt = NotifyAttempt(delivery=delivery, started_at=started_at)
    api_key = delivery.openapi_order.api_key
    if api_key is None:
        attempt.error = "创建订单的 API 密钥已删除，无法签名"
        return attempt, True
    try:
        target = url_target_check(delivery.url)
        body = _body(delivery)
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "kameng-notify/1",
                   **openapi_signed_headers(key_id=api_key.key_id, secret=str(api_key.secret), method="POST",
                                            path_with_query=target.path_with_query, body=body)}
        response = safe_post(target, content=body, headers=headers,
                             timeout=float(settings.KAMENG_NOTIFY_TIMEOUT_SECONDS))
        attempt.status_code = response.status_code
        attempt.response_excerpt = mask_text(response.text[:EXCERPT_MAX * 2])[:EXCERPT_MAX]
    except UnsafeUrlError as error:
        attempt.error = error.message[:ERROR_MAX]
        is_final = error.code != "url_unresolvable"
    except httpx.TimeoutException as error:
        attempt.error = f"超时：{type(error).__name__}"
    except httpx.HTTPError as error:
        attempt.error = f"连接失败：{type(error).__name__}：{mask_text(str(error))}"[:ERROR_MAX]
    finally:
        attempt.duration_ms = int((time.monotonic() - started) * 1000)
    return attempt, is_final


def _outcome(attempt: NotifyAttempt, *, window_attempts: int, is_final: bool) -> tuple[str, int | None]:
    """(the next state, seconds until the next try or None)."""
    code = attempt.status_code
    if code is not None and 200 <= code < 300:
        return NotifyState.DELIVERED, None
    if code is not None and 400 <= code < 500 and code != 429:
        return NotifyState.GAVE_UP, None
    if is_final:
        return NotifyState.GAVE_UP, None
    wait = backoff_seconds(attempt=window_attempts)
    if _waited_after(window_attempts) > settings.KAMENG_NOTIFY_RETRY_WINDOW_SECONDS:
        return NotifyState.GAVE_UP, None
    return NotifyState.RETRYING, wait


def _record(delivery: NotifyDelivery, attempt: NotifyAttempt, *, window_attempts: int, is_final: bool) -> str:
    state, wait = _outcome(attempt, window_attempts=window_attempts, is_final=is_final)
    if state not in TRANSITIONS[delivery.state]:  # cannot happen from an open state; a bug if it does
        raise ConflictError("回调状态不能从「%(from)s」变为「%(to)s」", code="illegal_transition",
                            params={"from": delivery.state, "to": state})
    now = timezone.now()
    with transaction.atomic():
        attempt.attempt_no = NotifyAttempt.objects.filter(delivery_id=delivery.pk).count() + 1
        attempt.save()
        NotifyDelivery.objects.filter(pk=delivery.pk, attempts=window_attempts).update(
            state=state, next_attempt_at=now + timedelta(seconds=wait) if wait is not None else None,
            finished_at=None if wait is not None else now)
    logger.info("notification %s (order %s, %s) attempt %d: %s → %s", delivery.pk,
                delivery.payload.get("order_no"), delivery.status, attempt.attempt_no,
                attempt.status_code or attempt.error, state)
    return state


def notifications_due(*, limit: int = 500) -> list[int]:
    return list(NotifyDelivery.objects.filter(state__in=OPEN, next_attempt_at__lte=timezone.now())
                .order_by("next_attempt_at").values_list("pk", flat=True)[:limit])


def notify_resend(*, delivery_id: int, reseller_id: int | None = None) -> NotifyDelivery:
    """Send a given-up delivery again (a new retry window); `reseller_id` scopes it to that reseller's deliveries
    (another's: NotFoundError). Sent after commit."""
    deliveries = NotifyDelivery.objects.all()
    if reseller_id is not None:
        deliveries = deliveries.filter(openapi_order__reseller_id=reseller_id)
    with transaction.atomic():
        delivery = deliveries.select_for_update().filter(pk=delivery_id).first()
        if delivery is None:
            raise NotFoundError("回调记录不存在", code="notify_not_found")
        if NotifyState.PENDING not in TRANSITIONS[delivery.state]:
            raise ConflictError("只有「已放弃」的回调可以重新发送（当前：%(state)s）", code="notify_not_resendable",
                                params={"state": delivery.get_state_display()})
        delivery.state = NotifyState.PENDING
        delivery.attempts = 0
        delivery.next_attempt_at = timezone.now()
        delivery.finished_at = None
        delivery.save(update_fields=["state", "attempts", "next_attempt_at", "finished_at"])
        transaction.on_commit(functools.partial(_enqueue, [delivery.pk]))
    return delivery
