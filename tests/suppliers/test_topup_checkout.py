"""Direct top-up products can be bought: paid into the orders-in-progress hold like manual orders, then handed to
the suppliers' fulfiller (settings.KAMENG_FULFILLERS) after commit; never shown to staff as awaiting them."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from kameng.ledger.selectors import wallet_balance
from kameng.orders.fulfilment import fulfillers, order_awaits_staff, order_deliver_manually
from kameng.orders.models import Order, OrderStatus
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from kameng.suppliers.topup import order_fulfil_direct_topup
from tests.factories import UserFactory, fund_wallet
from tests.suppliers.topup_support import Upstreams, topup_order_paid, topup_sku, upstreams

__all__ = ["upstreams"]

pytestmark = pytest.mark.django_db


def test_the_direct_topup_fulfiller_comes_from_settings() -> None:
    assert fulfillers()["direct_topup"] is order_fulfil_direct_topup


def test_a_direct_topup_is_paid_into_the_hold_and_fulfilled_after_commit(
        upstreams: Upstreams, django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "80.00")
    sku = topup_sku("50.00")
    _, upstream = upstreams.offer("甲", sku, "48.00")

    with django_capture_on_commit_callbacks(execute=True):
        result = purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, payment=PaymentChoice(PayBy.WALLET),
                                 request_id="topup-1", buyer_input={"phone": "138 0013 8000"})

    order = Order.objects.get(pk=result.order.pk)
    # Paid into the hold, routed and submitted once after commit; the upstream's answer (processing) comes later.
    assert order.status == OrderStatus.FULFILLING
    assert wallet_balance(user_id=buyer.pk) == Decimal("30.00")
    assert upstream.submits == {f"{order.number}-1": 1}
    assert upstream.requests[0].charge_account == "13800138000"


def test_staff_cannot_deliver_a_direct_topup_by_hand(upstreams: Upstreams) -> None:
    order = topup_order_paid(topup_sku("50.00"))

    assert order.status == OrderStatus.PAID
    assert not order_awaits_staff(order=order)
    with pytest.raises(Exception, match="不是待人工发货的订单"):
        order_deliver_manually(order_id=order.pk, note="已充值")
