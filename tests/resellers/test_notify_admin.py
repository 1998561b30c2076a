"""Staff pages of the notifications: the list and a delivery with its attempts open; the resend action sends
given-up deliveries again and leaves the others."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from kameng.resellers import notify
from kameng.resellers.models import NotifyAttempt, NotifyDelivery, NotifyState
from tests.resellers.notify_support import card_order, openapi_order, reseller_with_key

pytestmark = pytest.mark.django_db


def _delivery(state: str, request_no: str) -> NotifyDelivery:
    reseller, key = reseller_with_key(key_id=f"kmk_{request_no}")
    link = openapi_order(card_order(reseller, quantity=1), reseller, key, request_no=request_no)
    delivery = NotifyDelivery.objects.create(openapi_order=link, status="delivered", url=link.notify_url,
                                             payload={"request_no": request_no}, state=state, attempts=1)
    NotifyAttempt.objects.create(delivery=delivery, attempt_no=1, started_at=delivery.created_at, status_code=404,
                                 response_excerpt=f"not here {request_no}")
    return delivery


def test_staff_see_deliveries_and_resend_given_up_ones(admin_client: Client,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notify, "_enqueue", lambda _ids: None)
    gave_up = _delivery(NotifyState.GAVE_UP, "A-1")
    delivered = _delivery(NotifyState.DELIVERED, "A-2")

    listing = admin_client.get(reverse("admin:resellers_notifydelivery_changelist"))
    page = admin_client.get(reverse("admin:resellers_notifydelivery_change", args=[gave_up.pk]))
    response = admin_client.post(reverse("admin:resellers_notifydelivery_changelist"),
                                 {"action": "resend", "_selected_action": [gave_up.pk, delivered.pk]})

    assert listing.status_code == 200
    assert "A-1" in listing.content.decode()
    assert page.status_code == 200
    assert "not here A-1" in page.content.decode()
    assert response.status_code == 302
    gave_up.refresh_from_db()
    delivered.refresh_from_db()
    assert (gave_up.state, gave_up.attempts) == (NotifyState.PENDING, 0)
    assert delivered.state == NotifyState.DELIVERED
