"""Background jobs for resellers: sending Open API order notifications and the sweep of the due ones, the purge of
old Open API nonce rows (kameng.resellers.nonces) and the keys' noted uses written to their rows
(kameng.resellers.apikeys). Tasks take ids and assume they may run twice (a send is claimed by a conditional UPDATE
first)."""

from __future__ import annotations

from celery import shared_task

from kameng.resellers.apikeys import api_keys_last_used_flush
from kameng.resellers.nonces import nonces_purge
from kameng.resellers.notify import notifications_due, notify_deliver


@shared_task(name="kameng.resellers.tasks.send_notification")
def send_notification(delivery_id: int) -> str:
    return notify_deliver(delivery_id=delivery_id)


@shared_task(name="kameng.resellers.tasks.sweep_notifications")
def sweep_notifications() -> int:
    """Send the due notifications (first sends whose task was lost, retries, sends whose worker died). Retries are
    driven from here rather than by task countdowns: a countdown of hours would outlive the broker's visibility
    timeout and be delivered again and again."""
    due = notifications_due()
    for delivery_id in due:  # one task each: a slow receiver holds up nobody else
        send_notification.delay(delivery_id)
    return len(due)


@shared_task(name="kameng.resellers.tasks.purge_openapi_nonces")
def purge_openapi_nonces() -> int:
    return nonces_purge()


@shared_task(name="kameng.resellers.tasks.flush_api_key_uses")
def flush_api_key_uses() -> int:
    return api_keys_last_used_flush()
