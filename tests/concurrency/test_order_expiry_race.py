"""An unpaid order reaching its deadline while the buyer pays it: exactly one of the two wins, every time.

At the boundary the sweeper's clock has passed the deadline while the buyer's request still sees it a moment
ahead (two web nodes, or a request checked a millisecond earlier). Each thread gets its own clock, so both calls
are legitimate and only the order's row lock decides who goes first; a small random head start makes both orders
of events happen across the rounds. Whoever loses must leave no trace.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from kameng.core.errors import ConflictError
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.ledger.models import Journal, JournalKind
from kameng.ledger.selectors import ledger_problems, wallet_balance
from kameng.orders.models import Order, OrderStatus
from kameng.orders.services import order_checkout, order_expire, order_pay_with_wallet
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROUNDS = 20
QUANTITY = 2
DEADLINE_AHEAD = timedelta(seconds=30)
_clock = threading.local()


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    requires_postgresql()


@pytest.fixture(autouse=True)
def _per_thread_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    real_now = timezone.now

    def now() -> datetime:
        return real_now() + getattr(_clock, "skew", timedelta(0))

    monkeypatch.setattr(timezone, "now", now)


def test_expiry_and_payment_at_the_deadline_never_both_win() -> None:
    price = Decimal("5.00")
    sku = SkuFactory.create(price=price)
    stock_sku(sku, ROUNDS * QUANTITY)
    buyer = UserFactory.create()
    fund_wallet(buyer, "1000.00")
    seen: dict[str, int] = {"paid": 0, "expired": 0}
    rng = random.Random(20240601)  # jitter for a test, not security

    for round_number in range(ROUNDS):
        order = order_checkout(buyer_id=buyer.pk, sku_id=sku.pk, quantity=QUANTITY, pay_with_wallet=False).order
        reserved = set(CardKey.objects.filter(order=order).values_list("id", flat=True))
        assert len(reserved) == QUANTITY
        Order.objects.filter(pk=order.pk).update(expires_at=timezone.now() + DEADLINE_AHEAD)
        balance_before = wallet_balance(user_id=buyer.pk)
        head_start = rng.uniform(0, 0.004)
        payer_first = rng.random() < 0.5

        def act(index: int, order_id: int = order.pk, delay: float = head_start, early: bool = payer_first) -> str:
            connection.ensure_connection()  # opening a session costs milliseconds: not inside the race
            is_expirer = index == 0
            if is_expirer:
                _clock.skew = DEADLINE_AHEAD + timedelta(milliseconds=1)  # the sweeper: just past the deadline
            if is_expirer == early:
                time.sleep(delay)
            if is_expirer:
                return "expired" if order_expire(order_id=order_id) else "not expired"
            order_pay_with_wallet(order_id=order_id, buyer_id=buyer.pk)  # the buyer: a moment before it
            return "paid"

        expirer, payer = run_in_threads(2, act)

        assert unexpected([expirer, payer], ConflictError) == [], f"round {round_number}"
        assert expirer.error is None
        order.refresh_from_db()
        keys = CardKey.objects.filter(id__in=reserved)
        if order.status == OrderStatus.DELIVERED:
            assert (payer.value, expirer.value) == ("paid", "not expired")
            assert keys.filter(status=CardKeyStatus.SOLD, order=order).count() == QUANTITY
            assert wallet_balance(user_id=buyer.pk) == balance_before - QUANTITY * price
            seen["paid"] += 1
        else:
            assert order.status == OrderStatus.EXPIRED, f"round {round_number}: {order.status}"
            assert expirer.value == "expired"
            assert isinstance(payer.error, ConflictError)
            assert payer.error.code == "not_payable"
            assert keys.filter(status=CardKeyStatus.AVAILABLE, order__isnull=True).count() == QUANTITY
            assert wallet_balance(user_id=buyer.pk) == balance_before
            seen["expired"] += 1
        assert list(order.events.order_by("id").values_list("to_status", flat=True))[-1] == order.status

    assert sum(seen.values()) == ROUNDS
    assert Journal.objects.filter(kind=JournalKind.ORDER_PAYMENT).count() == seen["paid"]
    assert Order.objects.filter(status=OrderStatus.DELIVERED).count() == seen["paid"]
    assert Order.objects.filter(status=OrderStatus.EXPIRED).count() == seen["expired"]
    assert wallet_balance(user_id=buyer.pk) == Decimal("1000.00") - seen["paid"] * QUANTITY * price
    assert CardKey.objects.filter(status=CardKeyStatus.RESERVED).count() == 0
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == (ROUNDS - seen["paid"]) * QUANTITY
    assert ledger_problems() == []
