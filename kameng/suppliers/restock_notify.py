"""Telling a supplier about a restock request, outside any transaction: a signed webhook and an e-mail.

Webhook (when the supplier's connector config has `webhook_url` and `webhook_secret`): POST of a JSON object
(`event` "restock.requested", request id, offer, product, SKU, upstream product id, stock, threshold, time) with
headers `X-Kameng-Event`, `X-Kameng-Delivery` (the request id), `X-Kameng-Timestamp` (Unix seconds) and
`X-Kameng-Signature` = hex HMAC-SHA256 keyed with `webhook_secret` over `<timestamp>.<body>`. Every attempt is
stored (RestockWebhookAttempt). A 2xx answer delivers it; a 4xx is final (the receiver refused it: not retried);
anything else — a 5xx, a timeout, no connection — is retried after 30 s, 2 min, 10 min, 1 h and 6 h, then given up.
The request's `webhook_status` and `webhook_next_at` are the outbox: the sweeper (`redrive_restock_webhooks`, every
minute) sends what is due, and a send is claimed by a conditional update first, so two workers never post the
same attempt.

E-mail: to the config's `notify_email`, else the supplier's login e-mail; sent at most once (claimed before sending,
the claim given back if the mail server refuses).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta

import httpx
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from kameng.suppliers.connectors.registry import connector_config_of
from kameng.suppliers.models import RestockRequest, RestockWebhookAttempt, WebhookStatus

logger = logging.getLogger(__name__)

# Wait after the n-th failed attempt (n = 1…5); the sixth failure gives up.
WEBHOOK_BACKOFF_SECONDS = (30, 120, 600, 3600, 6 * 3600)
WEBHOOK_MAX_ATTEMPTS = len(WEBHOOK_BACKOFF_SECONDS) + 1
WEBHOOK_TIMEOUT_SECONDS = 10.0
# A claimed send not finished within this time (the worker died) is due again.
WEBHOOK_CLAIM_SECONDS = 60
HTTP_OK_FIRST, HTTP_REDIRECT_FIRST, HTTP_CLIENT_ERROR_FIRST, HTTP_SERVER_ERROR_FIRST = 200, 300, 400, 500
NOT_CONFIGURED = "未配置有效的 webhook_url 与 webhook_secret"

# The httpx transport webhooks go through; None means the network. Tests put an httpx.MockTransport here.
webhook_transport: httpx.BaseTransport | None = None


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def restock_payload(request: RestockRequest) -> dict[str, object]:
    offer = request.offer
    return {"event": "restock.requested", "request_id": request.pk, "offer_id": offer.pk,
            "product": offer.sku.product.name, "sku": offer.sku.name,
            "upstream_product_id": offer.upstream_product_id, "stock": request.stock_at_raise,
            "threshold": request.threshold, "created_at": request.created_at.isoformat()}


def restock_webhook_deliver(*, request_id: int) -> str:
    """One attempt if one is due; returns the webhook status after it ("" when nothing was due)."""
    now = timezone.now()
    claimed = RestockRequest.objects.filter(pk=request_id, webhook_status=WebhookStatus.PENDING,
                                            webhook_next_at__lte=now).update(
        webhook_next_at=now + timedelta(seconds=WEBHOOK_CLAIM_SECONDS))
    if not claimed:
        return ""
    request = RestockRequest.objects.select_related("offer__sku__product", "supplier").get(pk=request_id)
    config = connector_config_of(request.supplier)
    url, secret = str(config.get("webhook_url") or ""), str(config.get("webhook_secret") or "")
    number = request.webhook_attempt_count + 1
    status_code: int | None = None
    error = ""
    started = time.monotonic()
    is_configured = url.startswith(("https://", "http://")) and bool(secret)
    if not is_configured:
        error = NOT_CONFIGURED
    else:
        body = json.dumps(restock_payload(request), ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Kameng-Event": "restock.requested",
                   "X-Kameng-Delivery": str(request.pk), "X-Kameng-Timestamp": timestamp,
                   "X-Kameng-Signature": webhook_signature(secret=secret, timestamp=timestamp, body=body)}
        try:
            with httpx.Client(transport=webhook_transport, timeout=WEBHOOK_TIMEOUT_SECONDS) as client:
                status_code = client.post(url, content=body, headers=headers).status_code
        except httpx.HTTPError as failure:
            error = type(failure).__name__
    duration_ms = int((time.monotonic() - started) * 1000)
    status, next_at = _after_attempt(number=number, status_code=status_code, is_configured=is_configured)
    with transaction.atomic():
        RestockWebhookAttempt.objects.create(request_id=request.pk, number=number, status_code=status_code,
                                             error=error[:200], duration_ms=duration_ms)
        RestockRequest.objects.filter(pk=request.pk).update(webhook_status=status, webhook_next_at=next_at,
                                                            webhook_attempt_count=number)
    # The retry is sent by the sweeper (every minute) once `webhook_next_at` is due, not by a task countdown: a
    # countdown of hours would outlive the broker's visibility timeout and be delivered again and again.
    logger.info("restock request %s webhook attempt %d: %s", request.pk, number, status_code or error)
    return str(status)


def _after_attempt(*, number: int, status_code: int | None,
                   is_configured: bool) -> tuple[WebhookStatus, datetime | None]:
    if not is_configured:
        return WebhookStatus.FAILED, None
    if status_code is not None and HTTP_OK_FIRST <= status_code < HTTP_REDIRECT_FIRST:
        return WebhookStatus.DELIVERED, None
    if status_code is not None and HTTP_CLIENT_ERROR_FIRST <= status_code < HTTP_SERVER_ERROR_FIRST:
        return WebhookStatus.FAILED, None  # the receiver refused it: sending it again would change nothing
    if number >= WEBHOOK_MAX_ATTEMPTS:
        return WebhookStatus.GIVEN_UP, None
    return WebhookStatus.PENDING, timezone.now() + timedelta(seconds=WEBHOOK_BACKOFF_SECONDS[number - 1])


def restock_webhooks_due() -> list[int]:
    return list(RestockRequest.objects.filter(webhook_status=WebhookStatus.PENDING,
                                              webhook_next_at__lte=timezone.now())
                .order_by("webhook_next_at").values_list("pk", flat=True)[:500])


def restock_email_send(*, request_id: int) -> bool:
    """The restock e-mail, at most once; False when there is no address or it was already sent."""
    request = RestockRequest.objects.select_related("offer__sku__product", "supplier__owner").get(pk=request_id)
    address = str(connector_config_of(request.supplier).get("notify_email") or request.supplier.owner.email or "")
    if not address or request.email_sent_at is not None:
        return False
    if not RestockRequest.objects.filter(pk=request_id, email_sent_at__isnull=True).update(
            email_sent_at=timezone.now()):
        return False
    offer = request.offer
    subject = f"补货提醒：{offer.sku.product.name} · {offer.sku.name}"
    text = (f"{request.supplier.name}，您好：\n\n您为「{offer.sku.product.name} · {offer.sku.name}」提供的货源库存为 "
            f"{request.stock_at_raise}，已低于提醒阈值 {request.threshold}。请尽快补货，并在供货商后台「补货提醒」"
            f"页面确认或标记已补货。\n")
    try:
        send_mail(subject, text, None, [address])
    except Exception:
        RestockRequest.objects.filter(pk=request_id).update(email_sent_at=None)
        logger.exception("restock request %s: e-mail could not be sent", request_id)
        raise
    return True
