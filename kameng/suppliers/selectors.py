"""Reads of direct top-up attempts for staff pages and the order's progress."""

from __future__ import annotations

from django.db.models import QuerySet

from kameng.suppliers.models import AttemptStatus, TopupAttempt


def topup_attempts_of_order(*, order_id: int) -> QuerySet[TopupAttempt]:
    """The order's attempts, first routed first, with their suppliers."""
    return TopupAttempt.objects.filter(order_id=order_id).select_related("supplier").order_by("sequence")


def topup_attempts_needing_review() -> QuerySet[TopupAttempt]:
    """Attempts staff must look at: a late success after a failure, or a result still unknown after the last query."""
    return TopupAttempt.objects.filter(needs_review=True).select_related("supplier", "order").order_by("pk")


def topup_attempt_is_live(*, attempt: TopupAttempt) -> bool:
    return attempt.status not in (AttemptStatus.SUCCEEDED, AttemptStatus.FAILED)
