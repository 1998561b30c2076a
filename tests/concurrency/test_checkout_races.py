"""Checkout under real concurrency on PostgreSQL: no key sold twice, no overspent wallet, one order per request."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.inventory.services import SoldOutError
from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.ledger.services import InsufficientFundsError
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import CheckoutResult, order_checkout
from tests.concurrency.threads import run_in_threads, unexpected
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("checkout_path")]



def _wallets_total(buyer_ids: list[int]) -> Decimal:
    return sum((wallet_balance(user_id=buyer_id) for buyer_id in buyer_ids), Decimal("0.00"))


def test_fifty_buyers_race_for_twenty_keys() -> None:
    price = Decimal("9.50")
    sku = SkuFactory.create(price=price)
    secrets = stock_sku(sku, 20)
    buyers = [UserFactory.create() for _ in range(50)]
    for buyer in buyers:
        fund_wallet(buyer, "100.00")
    buyer_ids = [buyer.pk for buyer in buyers]

    outcomes = run_in_threads(50, lambda i: order_checkout(
        batched=True, buyer_id=buyer_ids[i], sku_id=sku.pk, quantity=1, request_id=f"race-{i}"))

    assert unexpected(outcomes, SoldOutError) == []
    won = [o.value for o in outcomes if o.value is not None]
    lost = [o.error for o in outcomes if o.error is not None]
    assert len(won) == 20
    assert len(lost) == 30
    assert all(isinstance(error, SoldOutError) and error.code == "sold_out" for error in lost)
    delivered = [secret for result in won for secret in result.secrets]
    assert len(delivered) == 20
    assert set(delivered) == set(secrets)
    assert Order.objects.filter(status=OrderStatus.DELIVERED).count() == 20
    assert Order.objects.exclude(status=OrderStatus.DELIVERED).count() == 0
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 0
    sold = list(CardKey.objects.filter(status=CardKeyStatus.SOLD).values_list("order_id", flat=True))
    assert len(sold) == 20
    assert len(set(sold)) == 20
    assert _wallets_total(buyer_ids) == Decimal("5000.00") - 20 * price
    assert ledger_problems() == []


def test_quantity_three_races_never_split_or_share_keys() -> None:
    price = Decimal("2.00")
    sku = SkuFactory.create(price=price)
    stock_sku(sku, 40)
    buyers = [UserFactory.create() for _ in range(30)]
    for buyer in buyers:
        fund_wallet(buyer, "50.00")
    buyer_ids = [buyer.pk for buyer in buyers]

    outcomes = run_in_threads(30, lambda i: order_checkout(
        batched=True, buyer_id=buyer_ids[i], sku_id=sku.pk, quantity=3))

    assert unexpected(outcomes, SoldOutError) == []
    won: list[CheckoutResult] = [o.value for o in outcomes if o.value is not None]
    # 40 keys make at most 13 orders of 3; fewer when a claimant skipped rows that a loser then gave back.
    assert 1 <= len(won) <= 13
    orders = list(Order.objects.all())
    assert len(orders) == len(won)
    keys_by_order: dict[int, list[int]] = {}
    for key_id, order_id in CardKey.objects.filter(order__isnull=False).values_list("id", "order_id"):
        keys_by_order.setdefault(order_id, []).append(key_id)
    assert sorted(keys_by_order) == sorted(order.pk for order in orders)
    assert all(len(keys) == 3 for keys in keys_by_order.values())
    all_keys = [key for keys in keys_by_order.values() for key in keys]
    assert len(all_keys) == len(set(all_keys)) == 3 * len(won)
    assert all(len(result.secrets) == 3 for result in won)
    delivered = [secret for result in won for secret in result.secrets]
    assert len(set(delivered)) == len(delivered)
    assert CardKey.objects.filter(status=CardKeyStatus.SOLD).count() == 3 * len(won)
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 40 - 3 * len(won)
    assert CardKey.objects.filter(status=CardKeyStatus.RESERVED).count() == 0
    assert _wallets_total(buyer_ids) == Decimal("1500.00") - 3 * price * len(won)
    assert ledger_problems() == []


def test_one_wallet_cannot_be_double_spent() -> None:
    sku = SkuFactory.create(price=Decimal("30.00"))
    stock_sku(sku, 100)
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    lowest_seen: list[Decimal] = []
    racing = threading.Event()

    def watch_balance() -> None:
        # Samples the committed balance while the race runs: it must never be seen below zero.
        try:
            while not racing.is_set():
                lowest_seen.append(wallet_balance(user_id=buyer.pk))
        finally:
            connection.close()

    watcher = threading.Thread(target=watch_balance)
    watcher.start()
    try:
        outcomes = run_in_threads(40, lambda i: order_checkout(
            batched=True, buyer_id=buyer.pk, sku_id=sku.pk, quantity=1))
    finally:
        racing.set()
        watcher.join(timeout=30)

    assert unexpected(outcomes, InsufficientFundsError) == []
    won = [o.value for o in outcomes if o.value is not None]
    lost = [o.error for o in outcomes if o.error is not None]
    assert len(won) == 3
    assert len(lost) == 37
    assert all(isinstance(error, InsufficientFundsError) and error.code == "insufficient_balance"
               for error in lost)
    assert wallet_balance(user_id=buyer.pk) == Decimal("10.00")
    assert lowest_seen
    assert min(lowest_seen) >= Decimal("0.00")
    assert Order.objects.count() == 3
    assert Journal.objects.filter(kind=JournalKind.ORDER_PAYMENT).count() == 3
    assert CardKey.objects.filter(status=CardKeyStatus.SOLD).count() == 3
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 97
    assert ledger_problems() == []


def test_same_request_id_from_twenty_threads_makes_one_order() -> None:
    price = Decimal("12.00")
    sku = SkuFactory.create(price=price)
    stock_sku(sku, 30)
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")

    outcomes = run_in_threads(20, lambda _i: order_checkout(batched=True, buyer_id=buyer.pk, sku_id=sku.pk, quantity=2,
                                                            request_id="double-click"))

    assert unexpected(outcomes) == []
    results = [o.value for o in outcomes if o.value is not None]
    assert len(results) == 20
    assert len({result.order.number for result in results}) == 1
    assert sum(1 for result in results if result.created) == 1
    assert all(len(result.secrets) == 2 for result in results)
    assert len({tuple(result.secrets) for result in results}) == 1
    assert Order.objects.count() == 1
    assert Journal.objects.filter(kind=JournalKind.ORDER_PAYMENT).count() == 1
    assert wallet_balance(user_id=buyer.pk) == Decimal("100.00") - 2 * price
    assert CardKey.objects.filter(status=CardKeyStatus.SOLD).count() == 2
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 28
    assert ledger_problems() == []
