"""The simulated gateway's asynchronous notification, retried with backoff like a real 易支付."""

from __future__ import annotations

from celery import shared_task

from kameng.simulators.notify import notify_task_run
from kameng.simulators.services import NOTIFY_POLICY, simulated_epay_notify_send


@shared_task(name="kameng.simulators.tasks.send_epay_notify", acks_late=True)
def send_epay_notify(trade_id: int) -> bool:
    """One attempt; if the merchant did not answer `success`, schedule the next until the attempts run out.

    The attempt count lives on the trade row, so a task delivered twice never sends more than the maximum.
    """
    return notify_task_run(task=send_epay_notify, trade_id=trade_id, send=simulated_epay_notify_send,
                           policy=NOTIFY_POLICY)
