"""The simulated Alipay's asynchronous notification, retried on Alipay's schedule until the merchant answers
exactly "success"."""

from __future__ import annotations

from celery import shared_task

from kameng.simulators.alipay.services import notify_backoff_seconds, simulated_alipay_notify_send


@shared_task(name="kameng.simulators.alipay.tasks.send_alipay_notify", acks_late=True)
def send_alipay_notify(trade_id: int) -> bool:
    """One attempt; if the merchant did not answer `success`, schedule the next until the attempts run out.

    The attempt count lives on the trade row, so a task delivered twice never sends more than the maximum.
    """
    attempt = simulated_alipay_notify_send(trade_id=trade_id)
    if attempt.is_retry_due:
        send_alipay_notify.apply_async(args=[trade_id], countdown=notify_backoff_seconds(attempts=attempt.attempts))
    return attempt.is_delivered
