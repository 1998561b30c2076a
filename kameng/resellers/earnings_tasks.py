"""Background jobs of reseller earnings: confirm the due ones (every few minutes) and sync recent orders the
aftercare listener missed (a lost task, a broker down). Both are idempotent and may run twice; a release claims
each row with a conditional UPDATE (kameng.resellers.earnings)."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from kameng.resellers.earnings import earnings_release_due, earnings_sweep

# How far back the sweeper looks for orders whose earnings the listener may have missed.
SWEEP_HOURS = 48


@shared_task(name="kameng.resellers.earnings_tasks.release_due_earnings")
def release_due_earnings() -> int:
    return earnings_release_due()


@shared_task(name="kameng.resellers.earnings_tasks.sync_missed_earnings")
def sync_missed_earnings() -> int:
    return earnings_sweep(since=timezone.now() - timedelta(hours=SWEEP_HOURS))
