"""The aftercare task delivered twice at once (two workers): the buyer still gets one delivery e-mail."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from django.test import override_settings

from kameng.notices.listeners import orders_delivered_email
from kameng.notices.models import OrderNotice, OrderNoticeStatus
from kameng.orders.aftercare import AftercareEvent
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@override_settings(KAMENG_ORDER_AFTERCARE=[])  # the test runs the listener itself, in many threads
def test_eight_concurrent_runs_of_the_listener_send_one_email() -> None:
    requires_postgresql()
    from kameng.orders.services import order_checkout

    buyer = UserFactory.create(email="race@example.com")
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 1)
    fund_wallet(buyer, "5.00")
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1).order
    mail.outbox.clear()

    outcomes = run_in_threads(8, lambda _index: orders_delivered_email(order_ids=[order.pk],
                                                                       event=AftercareEvent.DELIVERED))

    assert unexpected(outcomes) == []
    assert [message.to for message in mail.outbox] == [["race@example.com"]]
    assert list(OrderNotice.objects.values_list("order_id", "status")) == [(order.pk, OrderNoticeStatus.SENT)]
