"""Background jobs for suppliers. Tasks are idempotent and assume they may run twice."""

from __future__ import annotations

from celery import shared_task

from kameng.suppliers.ratings import ratings_recompute


@shared_task(name="kameng.suppliers.tasks.recompute_ratings")
def recompute_ratings() -> int:
    """Rate every supplier for today (kameng/suppliers/ratings.py); a second run the same day replaces the day's
    snapshots, it does not add to them."""
    return ratings_recompute()
