"""Helpers of the reseller tests: tiers and active resellers placed directly."""

from __future__ import annotations

from decimal import Decimal

from kameng.accounts.models import User
from kameng.resellers.models import Reseller, ResellerStatus, ResellerTier
from kameng.resellers.pricing import reseller_tables_changed
from tests.factories import UserFactory


def tier_make(name: str = "高级代理", discount: str = "20.00", rank: int = 2) -> ResellerTier:
    tier = ResellerTier.objects.create(name=name, rank=rank, discount_percent=Decimal(discount))
    reseller_tables_changed()
    return tier


def reseller_make(tier: ResellerTier | None, *, user: User | None = None,
                  status: str = ResellerStatus.ACTIVE) -> Reseller:
    """A reseller in `status` at `tier` (a new user unless given)."""
    reseller = Reseller.objects.create(user=user or UserFactory.create(), tier=tier, status=status,
                                       contact="13800000000")
    reseller_tables_changed()
    return reseller
