"""Confirmation and reversal: pending earnings are released after the period (commission → the commission balance,
margin → the wallet), once; a refund before that reverses the refunded share (everything on a full refund); after
release nothing is taken back."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kameng.ledger.models import AccountKind, JournalKind
from kameng.resellers.earnings import earning_release, earnings_aftercare, earnings_release_due
from kameng.resellers.models import Earning, EarningKind, EarningState
from tests.factories import UserFactory
from tests.resellers.earnings_support import (
    Capture,
    buy,
    buy_on_subsite,
    chain,
    earning,
    invited_by,
    journal_kinds,
    later,
    owner_balance,
    refund,
    reseller,
    subsite_of,
    system_balance,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("earning")]
__all__ = ["earning"]


def _states() -> list[tuple[int, str, str, str]]:
    return [(row.level, str(row.amount), str(row.reversed_amount), row.state)
            for row in Earning.objects.order_by("kind", "level")]


def test_release_after_the_period_credits_the_commission_balances(
        django_capture_on_commit_callbacks: Capture) -> None:
    near, middle = chain(2)
    buy(django_capture_on_commit_callbacks, invited_by(UserFactory.create(), near))

    assert earnings_release_due(now=later(days=6, seconds=86399)) == 0
    assert earnings_release_due(now=later()) == 2
    assert earnings_release_due(now=later()) == 0

    assert _states() == [(1, "5.00", "0.00", EarningState.AVAILABLE), (2, "2.00", "0.00", EarningState.AVAILABLE)]
    assert owner_balance(near, AccountKind.RESELLER_COMMISSION) == Decimal("5.00")
    assert owner_balance(middle, AccountKind.RESELLER_COMMISSION) == Decimal("2.00")
    assert owner_balance(near, AccountKind.WALLET) == Decimal("0.00")
    assert journal_kinds().count(JournalKind.COMMISSION_RELEASED) == 2
    assert system_balance(AccountKind.RESELLER_EARNINGS_PENDING) == Decimal("0.00")
    assert Earning.objects.filter(settled_at__isnull=True).count() == 0


def test_releasing_one_earning_twice_pays_once(django_capture_on_commit_callbacks: Capture) -> None:
    near, _ = chain(2)
    buy(django_capture_on_commit_callbacks, invited_by(UserFactory.create(), near))
    first = Earning.objects.get(level=1)

    assert earning_release(earning_id=first.pk, now=later()) is True
    assert earning_release(earning_id=first.pk, now=later()) is False

    assert owner_balance(near, AccountKind.RESELLER_COMMISSION) == Decimal("5.00")


def test_a_full_refund_before_release_reverses_everything(django_capture_on_commit_callbacks: Capture) -> None:
    owner = reseller()
    buyer = invited_by(UserFactory.create(), owner)
    order = buy_on_subsite(django_capture_on_commit_callbacks, buyer, subsite_of(owner), price="100.00")
    revenue_before = system_balance(AccountKind.PLATFORM_REVENUE)

    refund(django_capture_on_commit_callbacks, order, "102.50")

    assert sorted(_states()) == [(0, "2.50", "2.50", EarningState.REVERSED),
                                 (1, "5.12", "5.12", EarningState.REVERSED)]
    assert system_balance(AccountKind.RESELLER_EARNINGS_PENDING) == Decimal("0.00")
    assert system_balance(AccountKind.PLATFORM_REVENUE) == revenue_before - Decimal("102.50") + Decimal("7.62")
    assert journal_kinds().count(JournalKind.RESELLER_MARGIN_REVERSED) == 1
    assert journal_kinds().count(JournalKind.COMMISSION_REVERSED) == 1
    assert earnings_release_due(now=later()) == 0
    assert owner_balance(owner, AccountKind.WALLET) == Decimal("0.00")
    assert owner_balance(owner, AccountKind.RESELLER_COMMISSION) == Decimal("0.00")


def test_a_partial_refund_reverses_the_refunded_share_and_the_rest_is_released(
        django_capture_on_commit_callbacks: Capture) -> None:
    near, middle = chain(2)
    order = buy(django_capture_on_commit_callbacks, invited_by(UserFactory.create(), near), price="100.00")

    refund(django_capture_on_commit_callbacks, order, "30.00")
    assert _states() == [(1, "5.00", "1.50", EarningState.PENDING), (2, "2.00", "0.60", EarningState.PENDING)]
    refund(django_capture_on_commit_callbacks, order, "3.33")  # 66.67 % kept: 3.3335 → 3.33, 1.3334 → 1.33
    assert _states() == [(1, "5.00", "1.67", EarningState.PENDING), (2, "2.00", "0.67", EarningState.PENDING)]
    assert system_balance(AccountKind.RESELLER_EARNINGS_PENDING) == Decimal("4.66")

    assert earnings_release_due(now=later()) == 2

    assert owner_balance(near, AccountKind.RESELLER_COMMISSION) == Decimal("3.33")
    assert owner_balance(middle, AccountKind.RESELLER_COMMISSION) == Decimal("1.33")
    assert system_balance(AccountKind.RESELLER_EARNINGS_PENDING) == Decimal("0.00")
    assert journal_kinds().count(JournalKind.COMMISSION_REVERSED) == 4


def test_a_refund_after_release_takes_nothing_back(django_capture_on_commit_callbacks: Capture) -> None:
    owner = reseller()
    order = buy_on_subsite(django_capture_on_commit_callbacks, UserFactory.create(), subsite_of(owner))
    earnings_release_due(now=later())

    refund(django_capture_on_commit_callbacks, order, "102.50")

    margin = Earning.objects.get()
    assert (margin.state, margin.reversed_amount) == (EarningState.AVAILABLE, Decimal("0.00"))
    assert owner_balance(owner, AccountKind.WALLET) == Decimal("2.50")
    assert JournalKind.RESELLER_MARGIN_REVERSED not in journal_kinds()


def test_refund_events_delivered_twice_reverse_once(django_capture_on_commit_callbacks: Capture) -> None:
    near, _ = chain(2)
    order = buy(django_capture_on_commit_callbacks, invited_by(UserFactory.create(), near))
    refund(django_capture_on_commit_callbacks, order, "50.00")

    earnings_aftercare(order_ids=[order.pk], event="refunded")
    earnings_aftercare(order_ids=[order.pk], event="delivered")

    assert _states() == [(1, "5.00", "2.50", EarningState.PENDING), (2, "2.00", "1.00", EarningState.PENDING)]
    assert journal_kinds().count(JournalKind.COMMISSION_REVERSED) == 2


def test_an_order_refunded_before_the_listener_saw_it_earns_nothing(
        django_capture_on_commit_callbacks: Capture, settings: object) -> None:
    near, _ = chain(2)
    buyer = invited_by(UserFactory.create(), near)
    settings.KAMENG_ORDER_AFTERCARE = []  # type: ignore[attr-defined]
    order = buy(django_capture_on_commit_callbacks, buyer)
    refund(django_capture_on_commit_callbacks, order, "100.00")

    earnings_aftercare(order_ids=[order.pk], event="delivered")

    assert not Earning.objects.filter(kind=EarningKind.COMMISSION).exists()
