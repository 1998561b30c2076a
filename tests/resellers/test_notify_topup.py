"""Direct top-ups placed through the Open API: a success is notified `delivered` with the operator serial, a
failure (refunded in the same transaction: the aftercare event is "refunded") is notified `refunded`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from kameng.orders.models import OrderStatus
from kameng.resellers.models import NotifyDelivery, NotifyState
from tests.resellers.notify_support import Receiver, openapi_order, receiver, reseller_with_key
from tests.suppliers.topup_support import REFUSED, SUCCEEDED, Upstreams, fulfil, topup_order_paid, topup_sku, upstreams

__all__ = ["receiver", "upstreams"]

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]


@pytest.fixture(autouse=True)
def _notify_listens(settings: Any) -> None:
    settings.KAMENG_ORDER_AFTERCARE = ["kameng.resellers.notify.notify_aftercare"]


def test_topup_success_is_notified_with_the_operator_serial(receiver: Receiver, upstreams: Upstreams,
                                                            django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku()
    upstreams.offer("甲", sku, "48.00")[1].script(SUCCEEDED)
    order = topup_order_paid(sku)
    reseller, key = reseller_with_key()
    openapi_order(order, reseller, key)

    order = fulfil(order, django_capture_on_commit_callbacks)

    assert order.status == OrderStatus.DELIVERED
    delivery = NotifyDelivery.objects.get()
    assert (delivery.status, delivery.state) == ("delivered", NotifyState.DELIVERED)
    body = receiver.bodies()[0]
    assert body["status"] == "delivered"
    assert body["operator_serial"].startswith("SN-")
    assert "keys" not in body


def test_topup_failure_is_notified_refunded(receiver: Receiver, upstreams: Upstreams,
                                            django_capture_on_commit_callbacks: Capture) -> None:
    sku = topup_sku()
    upstreams.offer("甲", sku, "48.00")[1].script(REFUSED)
    order = topup_order_paid(sku)
    reseller, key = reseller_with_key()
    openapi_order(order, reseller, key)

    order = fulfil(order, django_capture_on_commit_callbacks)

    assert order.status == OrderStatus.REFUNDED
    assert list(NotifyDelivery.objects.values_list("status", "state")) == [("refunded", NotifyState.DELIVERED)]
    assert [body["status"] for body in receiver.bodies()] == ["refunded"]
