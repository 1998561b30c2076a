"""Reads of the Open API notification log (回调记录) for a reseller's console: its deliveries with their attempts."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from kameng.resellers.models import NotifyAttempt, NotifyDelivery, NotifyState


def notify_deliveries_of_reseller(*, reseller_id: int, state: str = "", search: str = "") -> QuerySet[NotifyDelivery]:
    """The reseller's deliveries, newest first, each with its attempts (newest first) prefetched; `state` one of
    NotifyState (anything else: all), `search` an order number or request number (exact or prefix)."""
    deliveries = NotifyDelivery.objects.filter(openapi_order__reseller_id=reseller_id)
    if state in NotifyState.values:
        deliveries = deliveries.filter(state=state)
    search = search.strip()
    if search:
        deliveries = deliveries.filter(Q(openapi_order__order__number__startswith=search)
                                       | Q(openapi_order__request_no__startswith=search))
    return (deliveries.select_related("openapi_order__order")
            .prefetch_related(Prefetch("attempt_log", queryset=NotifyAttempt.objects.order_by("-attempt_no")))
            .order_by("-pk"))
