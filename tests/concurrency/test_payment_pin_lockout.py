"""Wrong payment PINs sent at the same moment cannot get past the lock between them: each try is counted under the
user row's lock before its PIN is checked (kameng.accounts.paypin)."""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest

from kameng.accounts import paypin
from kameng.accounts.models import User
from kameng.accounts.paypin import PinLockedError, PinWrongError, payment_pin_set, payment_pin_verify
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
PIN = "583920"
THREADS = 16


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    requires_postgresql()


def test_concurrent_wrong_pins_are_checked_at_most_the_allowed_number_of_times(
        monkeypatch: pytest.MonkeyPatch) -> None:
    user = UserFactory.create()
    payment_pin_set(user_id=user.pk, new_pin=PIN, password="correct-horse-9")
    checked = []
    guard = threading.Lock()
    real_check = paypin.check_password

    def counting_check(password: str, encoded: str, *args: Any, **kwargs: Any) -> bool:
        with guard:
            checked.append(password)
        return real_check(password, encoded, *args, **kwargs)

    monkeypatch.setattr(paypin, "check_password", counting_check)

    outcomes = run_in_threads(THREADS, lambda index: payment_pin_verify(user_id=user.pk, pin=f"{index:06d}"[-6:]))

    assert unexpected(outcomes, PinWrongError, PinLockedError) == []
    wrong = [o for o in outcomes if isinstance(o.error, PinWrongError)]
    locked = [o for o in outcomes if isinstance(o.error, PinLockedError)]
    assert len(wrong) == 4
    assert len(locked) == THREADS - 4
    assert len(checked) == 5  # four wrong, and the fifth that locked it: nobody else got a guess in
    assert sorted(o.error.extra["tries_left"] for o in wrong) == [1, 2, 3, 4]  # type: ignore[union-attr]
    user.refresh_from_db()
    assert user.payment_pin_failures == 5
    assert user.payment_pin_locked_until is not None


def test_concurrent_wallet_checkouts_with_wrong_pins_write_nothing() -> None:
    from kameng.orders.models import Order
    from kameng.purchases.services import PayBy, PaymentChoice, purchase_create

    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    payment_pin_set(user_id=buyer.pk, new_pin=PIN, password="correct-horse-9")
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 20)

    outcomes = run_in_threads(10, lambda index: purchase_create(
        buyer_id=buyer.pk, sku_id=sku.pk, quantity=1, request_id=f"r-{index}",
        payment=PaymentChoice(PayBy.WALLET, pin="000001")))

    assert unexpected(outcomes, PinWrongError, PinLockedError) == []
    assert sum(isinstance(o.error, PinWrongError) for o in outcomes) == 4
    assert not Order.objects.exists()
    assert User.objects.get(pk=buyer.pk).payment_pin_failures == 5
