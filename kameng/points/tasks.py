"""Periodic points jobs. Idempotent: a second run finds nothing left to do."""

from __future__ import annotations

from celery import shared_task

from kameng.points.services import points_expire_due


@shared_task(name="kameng.points.tasks.expire_points")
def expire_points() -> int:
    """Expire points past KAMENG_POINTS_EXPIRY_DAYS (nothing when it is not set)."""
    return points_expire_due()
