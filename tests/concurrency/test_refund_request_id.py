"""Two staff clicks of one refund form landing at the same moment make one refund."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection

from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.orders.models import Order
from kameng.payments.models import Refund
from kameng.payments.refunds import order_refund
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_ten_concurrent_posts_of_one_refund_form_refund_once() -> None:
    requires_postgresql()
    from kameng.orders.services import order_checkout

    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 3)
    fund_wallet(buyer, "30.00")
    order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=3).order

    def post(_index: int) -> str:
        try:
            return order_refund(order_id=order.pk, amount=Decimal("5.00"), destination="wallet", reason="少发一张",
                                request_id="form-1").number
        finally:
            connection.close()

    outcomes = run_in_threads(10, post)

    assert unexpected(outcomes) == []
    assert len({outcome.value for outcome in outcomes}) == 1  # every click is answered with the same refund
    assert Refund.objects.filter(order=order).count() == 1
    assert Order.objects.get(pk=order.pk).refunded_amount == Decimal("5.00")
    assert wallet_balance(user_id=buyer.pk) == Decimal("5.00")
    assert ledger_problems() == []
