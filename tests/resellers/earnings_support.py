"""Shared steps of the reseller earnings tests: resellers, invitation chains, orders delivered (and refunded) with
only the earnings listener installed, and the ledger figures they check."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from pytest_django.fixtures import Settings

from kameng.accounts.models import User
from kameng.catalog.pricing import subsite_channel
from kameng.ledger.models import Account, AccountKind, Journal
from kameng.ledger.selectors import account_balance_from_entries
from kameng.orders.models import Order
from kameng.orders.refunds import order_refund_to_wallet
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from kameng.resellers.models import Referral, ReferralSource, Reseller, ResellerStatus, SubSite
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

LISTENER = "kameng.resellers.earnings.earnings_aftercare"
Capture = Callable[..., Any]
_requests = itertools.count(1)


@pytest.fixture
def earning(settings: Settings) -> None:
    """Only the earnings listener runs after orders; the sub-site markup rule prices sub-site orders."""
    settings.KAMENG_ORDER_AFTERCARE = [LISTENER]
    settings.KAMENG_PRICE_RULES = ["tests.resellers.price_rules.subsite_markup"]
    settings.KAMENG_RESELLER_CONFIRM_DAYS = 7


def reseller(user: User | None = None, *, status: str = ResellerStatus.ACTIVE) -> User:
    """A user who is a reseller (active unless said otherwise); returns the user."""
    user = user or UserFactory.create()
    Reseller.objects.create(user=user, status=status)
    return user


def invited_by(user: User, inviter: User) -> User:
    Referral.objects.create(user=user, inviter=inviter, source=ReferralSource.LINK)
    return user


def chain(length: int) -> list[User]:
    """`length` active resellers, each invited by the next: chain[0] is the nearest inviter (level 1)."""
    users = [reseller() for _ in range(length)]
    for near, far in itertools.pairwise(users):
        invited_by(near, far)
    return users


def subsite_of(owner: User, slug: str = "demo") -> SubSite:
    return SubSite.objects.create(reseller=Reseller.objects.get(user=owner), slug=slug, title="演示分站")


def buy(capture: Capture, buyer: User, *, price: str = "100.00", quantity: int = 1,
        sales_channel: str = "storefront") -> Order:
    """The buyer buys card keys paid from its wallet; delivered at once (and the listener runs on commit)."""
    sku = SkuFactory.create(price=Decimal(price))
    stock_sku(sku, quantity, prefix=f"E{sku.pk}")
    fund_wallet(buyer, Decimal("10000.00"), reference=f"fund-{buyer.pk}-{next(_requests)}")
    with capture(execute=True):
        return purchase_create(buyer_id=buyer.pk, sku_id=sku.pk, quantity=quantity,
                               request_id=f"e-{next(_requests)}", sales_channel=sales_channel,
                               payment=PaymentChoice(PayBy.WALLET)).order


def buy_on_subsite(capture: Capture, buyer: User, subsite: SubSite, **kwargs: Any) -> Order:
    return buy(capture, buyer, sales_channel=subsite_channel(subsite.pk), **kwargs)


def refund(capture: Capture, order: Order, amount: str) -> Order:
    with capture(execute=True):
        return order_refund_to_wallet(order_id=order.pk, amount=Decimal(amount), reference=f"rf-{next(_requests)}")


def later(days: int = 7, seconds: int = 1) -> datetime:
    return timezone.now() + timedelta(days=days, seconds=seconds)


def owner_balance(user: User, kind: AccountKind) -> Decimal:
    account = Account.objects.filter(owner_id=user.pk, kind=kind).first()
    return account.balance if account else Decimal("0.00")


def system_balance(kind: AccountKind) -> Decimal:
    account = Account.objects.filter(kind=kind, owner__isnull=True).first()
    return account_balance_from_entries(account_id=account.pk) if account else Decimal("0.00")


def journal_kinds() -> list[str]:
    return list(Journal.objects.order_by("pk").values_list("kind", flat=True))
