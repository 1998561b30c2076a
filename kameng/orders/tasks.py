"""Periodic jobs and fulfilment for orders. Tasks take ids, are idempotent, and assume they may run twice."""

from __future__ import annotations

import logging

from celery import shared_task

from kameng.orders.aftercare import aftercare_run
from kameng.orders.fulfilment import order_fulfil, orders_fulfil, orders_redrive_stuck
from kameng.orders.services import orders_expire_due

logger = logging.getLogger(__name__)


@shared_task(name="kameng.orders.tasks.expire_unpaid_orders")
def expire_unpaid_orders() -> int:
    return orders_expire_due()


@shared_task(name="kameng.orders.tasks.redrive_stuck_orders")
def redrive_stuck_orders() -> int:
    return orders_redrive_stuck()


@shared_task(name="kameng.orders.tasks.fulfil_order", acks_late=True)
def fulfil_order(order_id: int) -> None:
    """Move one paid order on by its delivery kind (enqueued after the payment commits; re-driven by the sweeper)."""
    order_fulfil(order_id=order_id)


@shared_task(name="kameng.orders.tasks.fulfil_orders", acks_late=True)
def fulfil_orders(order_ids: list[int]) -> int:
    """Move many paid orders on in one transaction (kameng.orders.fulfilment_queue sends the orders committed
    together as one task); returns how many moved. An order past paid is left alone, so a second delivery of the
    task changes nothing."""
    ids = [int(order_id) for order_id in order_ids]
    try:
        return orders_fulfil(order_ids=ids)
    except Exception:  # one order that cannot be fulfilled must not hold up the others of its batch
        logger.exception("fulfilling a batch of %d orders failed; fulfilling them one by one", len(ids))
    moved = 0
    for order_id in ids:
        try:
            order_fulfil(order_id=order_id)
            moved += 1
        except Exception:  # left paid: the sweeper tries it again
            logger.exception("fulfilling order %s failed", order_id)
    return moved


@shared_task(name="kameng.orders.tasks.order_aftercare_run", acks_late=True, autoretry_for=(Exception,),
             retry_backoff=True, max_retries=8)
def order_aftercare_run(order_ids: list[int], event: str) -> None:
    """Run the aftercare listeners for orders delivered or refunded (kameng.orders.aftercare)."""
    aftercare_run(order_ids=order_ids, event=event)
