"""The cap on a buyer's unpaid orders under real concurrency on PostgreSQL: never more than the limit, whatever
the race, and the buyer's lock that enforces it never holds up a wallet checkout."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction

from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.orders.locks import buyer_lock
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import UnpaidOrdersLimitError, order_checkout
from tests.concurrency.threads import run_in_threads, unexpected
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("checkout_path")]



def test_twenty_unpaid_checkouts_of_one_buyer_at_once_place_exactly_three() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 40)

    outcomes = run_in_threads(20, lambda i: order_checkout(batched=True, buyer_id=buyer.pk, sku_id=sku.pk, quantity=1,
                                                           request_id=f"unpaid-{i}", pay_with_wallet=False))

    assert unexpected(outcomes, UnpaidOrdersLimitError) == []
    placed = [o.value for o in outcomes if o.value is not None]
    refused = [o.error for o in outcomes if o.error is not None]
    assert len(placed) == 3
    assert len(refused) == 17
    assert all(isinstance(error, UnpaidOrdersLimitError) and error.code == "unpaid_orders_limit" for error in refused)
    assert Order.objects.filter(buyer=buyer, status=OrderStatus.PENDING_PAYMENT).count() == 3
    assert Order.objects.count() == 3
    assert CardKey.objects.filter(status=CardKeyStatus.RESERVED).count() == 3
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 37


def test_wallet_checkouts_racing_with_unpaid_ones_are_not_counted_nor_refused() -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "50.00")
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 40)

    outcomes = run_in_threads(20, lambda i: order_checkout(batched=True, buyer_id=buyer.pk, sku_id=sku.pk, quantity=1,
                                                           request_id=f"mixed-{i}", pay_with_wallet=i % 2 == 0))

    assert unexpected(outcomes, UnpaidOrdersLimitError) == []
    paid = [o.value for o in outcomes if o.value is not None and o.index % 2 == 0]
    assert len(paid) == 10
    assert Order.objects.filter(status=OrderStatus.DELIVERED).count() == 10
    assert Order.objects.filter(status=OrderStatus.PENDING_PAYMENT).count() == 3
    assert wallet_balance(user_id=buyer.pk) == Decimal("0.00")
    assert ledger_problems() == []


def test_a_wallet_checkout_does_not_wait_for_the_buyers_lock() -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "20.00")
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 5)
    locked, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        try:
            with transaction.atomic():
                buyer_lock(buyer_id=buyer.pk)
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '3s'")  # waiting on the lock would fail this checkout
        result = order_checkout(batched=True, buyer_id=buyer.pk, sku_id=sku.pk, quantity=1,
                                request_id="paid-while-locked")
        assert holder.is_alive()  # the lock was held all along
    finally:
        release.set()
        holder.join(timeout=30)
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")

    assert result.created
    assert result.order.status == OrderStatus.DELIVERED
    assert wallet_balance(user_id=buyer.pk) == Decimal("15.00")
