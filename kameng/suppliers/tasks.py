"""Periodic supplier jobs. Idempotent: a second run finds nothing left to do."""

from __future__ import annotations

from celery import shared_task

from kameng.suppliers.settlement import settlements_sweep


@shared_task(name="kameng.suppliers.tasks.settle_missed_orders")
def settle_missed_orders() -> int:
    """Settle recent delivered or refunded orders the aftercare listener missed."""
    return settlements_sweep()
