"""Sub-site margins: the markup price line × quantity to the sub-site owner, pending until confirmed into its wallet;
none on the owner's own purchase or for a suspended owner; a commission beside it when the buyer was invited."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kameng.ledger.models import AccountKind, JournalKind
from kameng.resellers.earnings import earnings_release_due
from kameng.resellers.models import Earning, EarningKind, EarningState, Reseller, ResellerStatus
from tests.factories import UserFactory
from tests.resellers.earnings_support import (
    Capture,
    buy_on_subsite,
    earning,
    invited_by,
    journal_kinds,
    later,
    owner_balance,
    reseller,
    subsite_of,
    system_balance,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("earning")]
__all__ = ["earning"]


def test_the_margin_is_the_markup_line_times_the_quantity(django_capture_on_commit_callbacks: Capture) -> None:
    owner = reseller()
    subsite = subsite_of(owner)

    order = buy_on_subsite(django_capture_on_commit_callbacks, UserFactory.create(), subsite, price="100.00",
                           quantity=3)

    assert order.total_amount == Decimal("307.50")
    margin = Earning.objects.get()
    assert (margin.kind, margin.level, margin.beneficiary_id, margin.amount, margin.state) == (
        EarningKind.MARGIN, 0, owner.pk, Decimal("7.50"), EarningState.PENDING)
    assert journal_kinds().count(JournalKind.RESELLER_MARGIN_PENDING) == 1
    assert system_balance(AccountKind.RESELLER_EARNINGS_PENDING) == Decimal("7.50")


def test_the_margin_reaches_the_owners_wallet_once_confirmed(django_capture_on_commit_callbacks: Capture) -> None:
    owner = reseller()
    buy_on_subsite(django_capture_on_commit_callbacks, UserFactory.create(), subsite_of(owner), quantity=2)

    assert earnings_release_due(now=later(days=6)) == 0
    released = earnings_release_due(now=later(days=7))

    assert released == 1
    assert owner_balance(owner, AccountKind.WALLET) == Decimal("5.00")
    assert owner_balance(owner, AccountKind.RESELLER_COMMISSION) == Decimal("0.00")
    assert Earning.objects.get().state == EarningState.AVAILABLE
    assert journal_kinds().count(JournalKind.RESELLER_MARGIN_RELEASED) == 1
    assert system_balance(AccountKind.RESELLER_EARNINGS_PENDING) == Decimal("0.00")


def test_an_invited_buyer_on_the_sub_site_earns_margin_and_commission(
        django_capture_on_commit_callbacks: Capture) -> None:
    owner = reseller()
    buyer = invited_by(UserFactory.create(), owner)

    buy_on_subsite(django_capture_on_commit_callbacks, buyer, subsite_of(owner), price="100.00")

    rows = sorted((row.kind, str(row.amount)) for row in Earning.objects.filter(beneficiary=owner))
    assert rows == [(EarningKind.COMMISSION, "5.12"), (EarningKind.MARGIN, "2.50")]  # 5 % of 102.50 = 5.125


def test_the_owner_buying_on_its_own_sub_site_earns_no_margin(django_capture_on_commit_callbacks: Capture) -> None:
    owner = reseller()

    buy_on_subsite(django_capture_on_commit_callbacks, owner, subsite_of(owner))

    assert not Earning.objects.exists()


def test_a_suspended_owner_earns_no_margin(django_capture_on_commit_callbacks: Capture) -> None:
    owner = reseller()
    subsite = subsite_of(owner)
    Reseller.objects.filter(user=owner).update(status=ResellerStatus.SUSPENDED)

    buy_on_subsite(django_capture_on_commit_callbacks, UserFactory.create(), subsite)

    assert not Earning.objects.exists()
