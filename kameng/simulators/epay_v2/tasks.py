"""The simulated 易支付 V2 gateway's asynchronous notification, retried with backoff like a real gateway."""

from __future__ import annotations

from celery import shared_task

from kameng.simulators.epay_v2.services import NOTIFY_POLICY, simulated_epay_v2_notify_send
from kameng.simulators.notify import notify_task_run


@shared_task(name="kameng.simulators.epay_v2.tasks.send_epay_v2_notify", acks_late=True)
def send_epay_v2_notify(trade_id: int) -> bool:
    """One attempt; if the merchant did not answer exactly `success`, schedule the next until attempts run out.

    The attempt count lives on the trade row, so a task delivered twice never sends more than the maximum.
    """
    return notify_task_run(task=send_epay_v2_notify, trade_id=trade_id, send=simulated_epay_v2_notify_send,
                           policy=NOTIFY_POLICY)
