"""The simulated Alipay's asynchronous notification, retried on Alipay's schedule until the merchant answers
exactly "success"."""

from __future__ import annotations

from celery import shared_task

from kameng.simulators.alipay.services import NOTIFY_POLICY, simulated_alipay_notify_send
from kameng.simulators.notify import notify_task_run


@shared_task(name="kameng.simulators.alipay.tasks.send_alipay_notify", acks_late=True)
def send_alipay_notify(trade_id: int) -> bool:
    """One attempt; if the merchant did not answer `success`, schedule the next until the attempts run out.

    The attempt count lives on the trade row, so a task delivered twice never sends more than the maximum.
    """
    return notify_task_run(task=send_alipay_notify, trade_id=trade_id, send=simulated_alipay_notify_send,
                           policy=NOTIFY_POLICY)
