"""Helpers of the sub-site tests: a reseller with a tier, a sub-site, a stand-in for the reseller-tier price rule,
and fresh sub-site caches around every test that imports `fresh_subsite_caches`."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from kameng.accounts.models import User
from kameng.catalog.pricing import SALES_CHANNEL_OPENAPI, PriceLine
from kameng.catalog.selectors import SkuForSale
from kameng.resellers.models import MarkupKind, Reseller, ResellerStatus, ResellerTier, SubSite
from kameng.resellers.subsite_cache import subsite_caches_clear
from tests.factories import UserFactory

# The tier rule (another part's) stands in as: a reseller pays 20 % less than retail through the Open API.
TIER_RULE = "tests.resellers.subsite_support.reseller_twenty_percent_off"
SUBSITE_RULE = "kameng.resellers.pricing_subsite.subsite_price_rule"
MEMBER_RULE = "kameng.membership.pricing.member_price_rule"
RULES = [MEMBER_RULE, TIER_RULE, SUBSITE_RULE]


def reseller_twenty_percent_off(*, sku: SkuForSale, buyer_id: int, quantity: int, sales_channel: str,
                                unit_price: Decimal) -> PriceLine | None:
    if sales_channel != SALES_CHANNEL_OPENAPI or not Reseller.objects.filter(user_id=buyer_id).exists():
        return None
    return PriceLine(code="reseller_tier", label="代理价", amount=-(unit_price / 5))


@pytest.fixture(autouse=True)
def fresh_subsite_caches() -> Iterator[None]:
    subsite_caches_clear()
    yield
    subsite_caches_clear()


def reseller_create(*, cap: str = "50.00", status: str = ResellerStatus.ACTIVE, user: User | None = None,
                    tier: ResellerTier | None = None) -> Reseller:
    if tier is None:
        tier = ResellerTier.objects.create(name=f"高级代理{ResellerTier.objects.count()}",
                                           subsite_markup_cap_percent=Decimal(cap))
    return Reseller.objects.create(user=user or UserFactory.create(), tier=tier, status=status)


def subsite_create(*, slug: str = "demo", title: str = "演示分站", markup_kind: str = MarkupKind.PERCENT,
                   markup_value: str = "10.00", reseller: Reseller | None = None, notice: str = "",
                   **fields: object) -> SubSite:
    return SubSite.objects.create(reseller=reseller or reseller_create(), slug=slug, title=title, notice=notice,
                                  markup_kind=markup_kind, markup_value=Decimal(markup_value), **fields)
