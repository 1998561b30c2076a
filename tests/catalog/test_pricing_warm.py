"""The group-commit writer prices each checkout of its batch: what the rules need per buyer is loaded by the
request thread first (`price_rules_warm`), so the writer's pricing makes no query and no cache round trip — each
would hold up every checkout of the batch."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from kameng.catalog.pricing import SALES_CHANNEL_API, price_rules_warm, sku_price
from kameng.catalog.selectors import skus_for_sale
from kameng.membership.pricing import membership_caches_clear
from kameng.resellers.pricing import reseller_caches_clear
from tests.factories import SkuFactory, UserFactory
from tests.membership.support import levels_install, member_at
from tests.resellers.support import reseller_make, tier_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def cache_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    get = cache.get

    def counted(key: str, *args: Any, **kwargs: Any) -> Any:
        reads.append(key)
        return get(key, *args, **kwargs)

    monkeypatch.setattr(cache, "get", counted)
    return reads


def test_after_warming_pricing_a_member_and_a_reseller_makes_no_round_trip(cache_reads: list[str]) -> None:
    levels_install()
    member, reseller = UserFactory.create(), UserFactory.create()
    member_at(member, "5000.00", 4)
    reseller_make(tier_make(discount="20.00"), user=reseller)
    sku = skus_for_sale(sku_ids=[SkuFactory.create(price=Decimal("10.00")).pk])
    sku_for_sale = next(iter(sku.values()))
    membership_caches_clear()
    reseller_caches_clear()
    for buyer in (member, reseller):
        price_rules_warm(buyer_id=buyer.pk, sales_channel=SALES_CHANNEL_API)
    cache_reads.clear()

    with CaptureQueriesContext(connection) as queries:
        member_quote = sku_price(sku=sku_for_sale, buyer_id=member.pk, quantity=1, sales_channel=SALES_CHANNEL_API)
        reseller_quote = sku_price(sku=sku_for_sale, buyer_id=reseller.pk, quantity=1,
                                   sales_channel=SALES_CHANNEL_API)

    assert (len(queries), cache_reads) == (0, [])
    assert member_quote.unit_price == Decimal("9.50")  # VIP4 = 95折
    assert reseller_quote.unit_price == Decimal("8.00")  # 20 % off


def test_without_warming_the_same_pricing_goes_to_the_cache_or_the_database(cache_reads: list[str]) -> None:
    """The check above can fail: cold, the rules do read."""
    levels_install()
    member = UserFactory.create()
    member_at(member, "5000.00", 4)
    sku = next(iter(skus_for_sale(sku_ids=[SkuFactory.create(price=Decimal("10.00")).pk]).values()))
    membership_caches_clear()
    sku_price(sku=sku, buyer_id=member.pk, quantity=1, sales_channel=SALES_CHANNEL_API)  # tables loaded
    membership_caches_clear()
    cache_reads.clear()

    with CaptureQueriesContext(connection) as queries:
        sku_price(sku=sku, buyer_id=member.pk, quantity=1, sales_channel=SALES_CHANNEL_API)

    assert len(queries) + len(cache_reads) > 0
