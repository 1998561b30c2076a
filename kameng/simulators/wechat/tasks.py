"""The simulated WeChat Pay's notification, retried with backoff until the merchant answers 2xx."""

from __future__ import annotations

from celery import shared_task

from kameng.simulators.notify import notify_task_run
from kameng.simulators.wechat.services import NOTIFY_POLICY, simulated_wechat_notify_send


@shared_task(name="kameng.simulators.wechat.tasks.send_wechat_notify", acks_late=True)
def send_wechat_notify(trade_id: int) -> bool:
    """One attempt; if not acknowledged, schedule the next until the attempts run out.

    The attempt count lives on the trade row, so a task delivered twice never sends more than the maximum.
    """
    return notify_task_run(task=send_wechat_notify, trade_id=trade_id, send=simulated_wechat_notify_send,
                           policy=NOTIFY_POLICY)
