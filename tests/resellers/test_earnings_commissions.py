"""Commissions up the invitation chain: exact amounts per level at the configured depth and rates, rounded down to
the fen, only to active resellers, never to the buyer itself; orders that earn nothing cost one query."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from kameng.ledger.models import AccountKind, JournalKind
from kameng.resellers.earnings import commission_of, earnings_aftercare
from kameng.resellers.models import (
    CommissionSettings,
    Earning,
    EarningKind,
    EarningState,
    Referral,
    ReferralSource,
    Reseller,
    ResellerStatus,
)
from tests.factories import UserFactory
from tests.resellers.earnings_support import (
    Capture,
    buy,
    chain,
    earning,
    invited_by,
    journal_kinds,
    reseller,
    system_balance,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("earning")]
__all__ = ["earning"]


def _earned() -> list[tuple[int, int, str, str]]:
    return [(row.level, row.beneficiary_id, str(row.amount), row.state)
            for row in Earning.objects.filter(kind=EarningKind.COMMISSION).order_by("level")]


def test_a_chain_of_three_pays_level_one_and_two_only(django_capture_on_commit_callbacks: Capture) -> None:
    near, middle, far = chain(3)
    buyer = invited_by(UserFactory.create(), near)

    order = buy(django_capture_on_commit_callbacks, buyer, price="100.00")

    assert _earned() == [(1, near.pk, "5.00", EarningState.PENDING), (2, middle.pk, "2.00", EarningState.PENDING)]
    assert not Earning.objects.filter(beneficiary=far).exists()
    assert journal_kinds().count(JournalKind.COMMISSION_PENDING) == 2
    assert system_balance(AccountKind.RESELLER_EARNINGS_PENDING) == Decimal("7.00")
    first = Earning.objects.get(level=1)
    assert first.order_id == order.pk
    expected = timezone.now() + timedelta(days=7)
    assert abs((first.available_at - expected).total_seconds()) < 60


def test_amounts_are_rounded_down_to_the_fen(django_capture_on_commit_callbacks: Capture) -> None:
    near, _middle = chain(2)
    buyer = invited_by(UserFactory.create(), near)

    buy(django_capture_on_commit_callbacks, buyer, price="33.33")

    assert [row[2] for row in _earned()] == ["1.66", "0.66"]  # 1.6665 and 0.6666
    assert commission_of(Decimal("0.19"), Decimal("5")) == Decimal("0.00")


def test_a_deeper_chain_when_staff_set_depth_three(django_capture_on_commit_callbacks: Capture) -> None:
    near, middle, far = chain(3)
    buyer = invited_by(UserFactory.create(), near)
    CommissionSettings.objects.create(pk=1, depth=3, level_1_rate=Decimal("4.00"), level_2_rate=Decimal("2.50"),
                                      level_3_rate=Decimal("1.25"), confirm_days=3)

    buy(django_capture_on_commit_callbacks, buyer, price="200.00")

    assert [(row[0], row[1], row[2]) for row in _earned()] == [
        (1, near.pk, "8.00"), (2, middle.pk, "5.00"), (3, far.pk, "2.50")]
    available_at = Earning.objects.get(level=1).available_at
    assert abs((available_at - (timezone.now() + timedelta(days=3))).total_seconds()) < 60


def test_an_inactive_reseller_is_skipped_and_the_level_above_still_earns(
        django_capture_on_commit_callbacks: Capture) -> None:
    near, middle = chain(2)
    Reseller.objects.filter(user=near).update(status=ResellerStatus.SUSPENDED)
    buyer = invited_by(UserFactory.create(), near)

    buy(django_capture_on_commit_callbacks, buyer)

    assert _earned() == [(2, middle.pk, "2.00", EarningState.PENDING)]


def test_an_inviter_who_is_no_reseller_earns_nothing(django_capture_on_commit_callbacks: Capture) -> None:
    plain = UserFactory.create()
    upper = reseller()
    invited_by(plain, upper)
    buyer = invited_by(UserFactory.create(), plain)

    buy(django_capture_on_commit_callbacks, buyer)

    assert _earned() == [(2, upper.pk, "2.00", EarningState.PENDING)]


def test_a_buyer_never_earns_on_its_own_purchase(django_capture_on_commit_callbacks: Capture) -> None:
    """A loop forced into the database (the services refuse one) still never pays the buyer."""
    buyer, other = reseller(), reseller()
    Referral.objects.create(user=buyer, inviter=other, source=ReferralSource.STAFF)
    Referral.objects.create(user=other, inviter=buyer, source=ReferralSource.STAFF)

    buy(django_capture_on_commit_callbacks, buyer)

    assert _earned() == [(1, other.pk, "5.00", EarningState.PENDING)]


def test_an_uninvited_buyer_earns_nobody_anything(django_capture_on_commit_callbacks: Capture) -> None:
    chain(2)

    buy(django_capture_on_commit_callbacks, UserFactory.create())

    assert not Earning.objects.exists()
    assert JournalKind.COMMISSION_PENDING not in journal_kinds()


def test_the_listener_looks_at_orders_that_earn_nothing_in_one_query(
        django_capture_on_commit_callbacks: Capture, django_assert_num_queries: object) -> None:
    orders = [buy(django_capture_on_commit_callbacks, UserFactory.create()) for _ in range(3)]

    with django_assert_num_queries(1):  # type: ignore[operator]
        earnings_aftercare(order_ids=[order.pk for order in orders], event="delivered")


def test_the_listener_called_twice_creates_each_earning_once(django_capture_on_commit_callbacks: Capture) -> None:
    near, _ = chain(2)
    buyer = invited_by(UserFactory.create(), near)
    order = buy(django_capture_on_commit_callbacks, buyer)

    earnings_aftercare(order_ids=[order.pk], event="delivered")
    earnings_aftercare(order_ids=[order.pk], event="delivered")

    assert Earning.objects.count() == 2
    assert journal_kinds().count(JournalKind.COMMISSION_PENDING) == 2
    assert system_balance(AccountKind.RESELLER_EARNINGS_PENDING) == Decimal("7.00")
