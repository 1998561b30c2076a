"""The simulated UnionPay's back-end notification, retried until the merchant answers HTTP 200."""

from __future__ import annotations

from celery import shared_task

from kameng.simulators.notify import notify_task_run
from kameng.simulators.unionpay.services import NOTIFY_POLICY, simulated_unionpay_notify_send


@shared_task(name="kameng.simulators.unionpay.tasks.send_unionpay_notify", acks_late=True)
def send_unionpay_notify(trade_id: int) -> bool:
    """One attempt; if the merchant did not answer 200, schedule the next until the attempts run out."""
    return notify_task_run(task=send_unionpay_notify, trade_id=trade_id, send=simulated_unionpay_notify_send,
                           policy=NOTIFY_POLICY)
