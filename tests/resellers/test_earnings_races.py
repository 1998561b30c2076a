"""Reseller earnings under races on PostgreSQL: two workers releasing the same due earnings pay each once; two
listener runs for one order create its earnings once; simultaneous 转入余额 never overdraw the commission."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pytest_django.fixtures import Settings

from kameng.core.errors import ConflictError
from kameng.ledger.models import AccountKind, Journal, JournalKind
from kameng.resellers.commission_withdrawals import commission_to_wallet
from kameng.resellers.earnings import earning_release, earnings_release_due, order_earnings_sync
from kameng.resellers.models import Earning, EarningState, Reseller
from tests.concurrency.threads import requires_postgresql, run_in_threads, unexpected
from tests.factories import UserFactory
from tests.resellers.earnings_support import Capture, buy, chain, invited_by, later, owner_balance, system_balance

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgresql(settings: Settings) -> None:
    requires_postgresql()
    settings.KAMENG_ORDER_AFTERCARE = ["kameng.resellers.earnings.earnings_aftercare"]
    settings.KAMENG_PRICE_RULES = []


def test_two_workers_release_each_earning_once(django_capture_on_commit_callbacks: Capture) -> None:
    near, middle = chain(2)
    buy(django_capture_on_commit_callbacks, invited_by(UserFactory.create(), near), price="100.00")
    when = later()

    outcomes = run_in_threads(2, lambda index: earnings_release_due(now=when))

    assert unexpected(outcomes) == []
    assert sorted(outcome.value or 0 for outcome in outcomes) in ([0, 2], [1, 1])
    assert Journal.objects.filter(kind=JournalKind.COMMISSION_RELEASED).count() == 2
    assert owner_balance(near, AccountKind.RESELLER_COMMISSION) == Decimal("5.00")
    assert owner_balance(middle, AccountKind.RESELLER_COMMISSION) == Decimal("2.00")
    assert system_balance(AccountKind.RESELLER_EARNINGS_PENDING) == Decimal("0.00")


def test_two_threads_on_one_earning_one_release(django_capture_on_commit_callbacks: Capture) -> None:
    near, _ = chain(2)
    buy(django_capture_on_commit_callbacks, invited_by(UserFactory.create(), near))
    earning_id = Earning.objects.get(level=1).pk
    when = later()

    outcomes = run_in_threads(2, lambda index: earning_release(earning_id=earning_id, now=when))

    assert unexpected(outcomes) == []
    assert sorted(bool(outcome.value) for outcome in outcomes) == [False, True]
    assert Earning.objects.get(pk=earning_id).state == EarningState.AVAILABLE
    assert owner_balance(near, AccountKind.RESELLER_COMMISSION) == Decimal("5.00")


def test_two_listener_runs_for_one_order_create_once(django_capture_on_commit_callbacks: Capture,
                                                     settings: Settings) -> None:
    near, _ = chain(2)
    buyer = invited_by(UserFactory.create(), near)
    settings.KAMENG_ORDER_AFTERCARE = []
    order = buy(django_capture_on_commit_callbacks, buyer)

    outcomes = run_in_threads(4, lambda index: order_earnings_sync(order_id=order.pk))

    assert unexpected(outcomes) == []
    assert Earning.objects.count() == 2
    assert Journal.objects.filter(kind=JournalKind.COMMISSION_PENDING).count() == 2
    assert system_balance(AccountKind.RESELLER_EARNINGS_PENDING) == Decimal("7.00")


def test_simultaneous_transfers_to_the_wallet_never_overdraw(django_capture_on_commit_callbacks: Capture) -> None:
    near, _ = chain(2)
    buyer = invited_by(UserFactory.create(), near)
    buy(django_capture_on_commit_callbacks, buyer, price="200.00")  # ¥10.00 of commission
    earnings_release_due(now=later())
    reseller_id = Reseller.objects.get(user=near).pk

    outcomes = run_in_threads(6, lambda index: commission_to_wallet(reseller_id=reseller_id, amount=Decimal("3.00"),
                                                                    request_id=f"r{index}"))

    assert unexpected(outcomes, ConflictError) == []
    assert sum(outcome.error is None for outcome in outcomes) == 3
    assert owner_balance(near, AccountKind.RESELLER_COMMISSION) == Decimal("1.00")
    assert owner_balance(near, AccountKind.WALLET) == Decimal("9.00")
