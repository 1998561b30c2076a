"""The sub-site price rule: the owner's cost plus the markup, two lines of exact amounts, isolated per sub-site,
never on the main site."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pytest_django.fixtures import Settings

from kameng.catalog.pricing import SALES_CHANNEL_STOREFRONT, sku_price, subsite_channel
from kameng.catalog.selectors import skus_for_sale
from kameng.core.errors import NotFoundError
from kameng.resellers.models import MarkupKind, ResellerStatus, SubSitePrice
from kameng.resellers.pricing_subsite import subsite_price_rule
from kameng.resellers.subsite_cache import subsite_caches_clear
from tests.factories import SkuFactory, UserFactory
from tests.membership.support import levels_install, member_at
from tests.resellers.subsite_support import RULES, fresh_subsite_caches, reseller_create, subsite_create

pytestmark = pytest.mark.django_db
__all__ = ["fresh_subsite_caches"]


@pytest.fixture(autouse=True)
def _rules(settings: Settings) -> None:
    settings.KAMENG_PRICE_RULES = RULES


def _price(sku_id: int, channel: str, buyer_id: int = 0) -> tuple[Decimal, list[dict[str, str]]]:
    quote = sku_price(sku=skus_for_sale(sku_ids=[sku_id])[sku_id], buyer_id=buyer_id, quantity=1,
                      sales_channel=channel)
    return quote.unit_price, quote.lines_json()


def test_a_percent_markup_on_the_owners_cost_gives_two_exact_lines() -> None:
    sku = SkuFactory.create(price=Decimal("100.00"))
    subsite = subsite_create(markup_value="12.50")

    price, lines = _price(sku.pk, subsite_channel(subsite.pk))

    # cost = 100 × 0.8 = 80.00; markup = 12.5 % of 80 = 10.00
    assert price == Decimal("90.00")
    assert lines == [{"code": "reseller_cost", "label": "分站成本价", "amount": "-20.00"},
                     {"code": "subsite_markup", "label": "分站加价", "amount": "10.00"}]


def test_a_skus_own_fixed_markup_overrides_the_default() -> None:
    sku = SkuFactory.create(price=Decimal("9.50"))
    subsite = subsite_create(markup_value="10.00")
    SubSitePrice.objects.create(subsite=subsite, sku=sku, markup_kind=MarkupKind.FIXED, markup_value=Decimal("1.23"))

    price, lines = _price(sku.pk, subsite_channel(subsite.pk))

    assert price == Decimal("8.83")  # 7.60 + 1.23
    assert [line["amount"] for line in lines] == ["-1.90", "1.23"]


def test_the_markup_is_clamped_to_the_tier_cap_when_the_cap_was_lowered() -> None:
    sku = SkuFactory.create(price=Decimal("100.00"))
    subsite = subsite_create(markup_value="40.00")
    tier = subsite.reseller.tier
    assert tier is not None
    tier.subsite_markup_cap_percent = Decimal("5.00")
    tier.save()
    subsite_caches_clear()

    price, lines = _price(sku.pk, subsite_channel(subsite.pk))

    assert price == Decimal("84.00")  # 80 + 5 % of 80
    assert lines[-1] == {"code": "subsite_markup", "label": "分站加价", "amount": "4.00"}


def test_a_sub_sites_price_never_shows_on_another_or_on_the_main_site() -> None:
    sku = SkuFactory.create(price=Decimal("100.00"))
    first = subsite_create(slug="alpha", markup_value="10.00")
    second = subsite_create(slug="bravo", markup_kind=MarkupKind.FIXED, markup_value="3.00")
    SubSitePrice.objects.create(subsite=first, sku=sku, markup_kind=MarkupKind.FIXED, markup_value=Decimal("7.00"))

    assert _price(sku.pk, subsite_channel(first.pk))[0] == Decimal("87.00")
    assert _price(sku.pk, subsite_channel(second.pk))[0] == Decimal("83.00")
    assert _price(sku.pk, SALES_CHANNEL_STOREFRONT) == (Decimal("100.00"), [])


def test_main_site_buyers_keep_member_prices_and_get_none_on_a_sub_site() -> None:
    levels_install()
    buyer = UserFactory.create()
    member_at(buyer, "6000.00", 4)  # VIP4: 95 %
    sku = SkuFactory.create(price=Decimal("100.00"))
    subsite = subsite_create(markup_value="10.00")

    main_price, main_lines = _price(sku.pk, SALES_CHANNEL_STOREFRONT, buyer.pk)
    sub_price, sub_lines = _price(sku.pk, subsite_channel(subsite.pk), buyer.pk)

    assert (main_price, [line["code"] for line in main_lines]) == (Decimal("95.00"), ["member"])
    assert (sub_price, [line["code"] for line in sub_lines]) == (Decimal("88.00"), ["reseller_cost", "subsite_markup"])


def test_the_main_site_path_costs_the_rule_no_query() -> None:
    sku = skus_for_sale(sku_ids=[SkuFactory.create().pk])
    with CaptureQueriesContext(connection) as queries:
        answer = subsite_price_rule(sku=next(iter(sku.values())), buyer_id=1, quantity=1,
                                    sales_channel=SALES_CHANNEL_STOREFRONT, unit_price=Decimal("9.50"))
    assert answer is None
    assert len(queries) == 0


def test_a_sub_site_read_once_is_priced_without_queries_for_its_own_rows() -> None:
    sku = SkuFactory.create(price=Decimal("100.00"))
    subsite = subsite_create()
    _price(sku.pk, subsite_channel(subsite.pk))
    for_sale = skus_for_sale(sku_ids=[sku.pk])[sku.pk]
    with CaptureQueriesContext(connection) as queries:
        sku_price(sku=for_sale, buyer_id=0, quantity=1, sales_channel=subsite_channel(subsite.pk))
    # only the stand-in tier rule's own look-up of the owner remains
    assert [query["sql"] for query in queries.captured_queries if "resellers_subsite" in query["sql"]] == []


@pytest.mark.parametrize("how", ["disabled", "suspended", "missing"])
def test_a_sub_site_not_served_prices_nothing(how: str) -> None:
    sku = SkuFactory.create()
    subsite = subsite_create()
    if how == "disabled":
        subsite.is_enabled = False
        subsite.save()
    elif how == "suspended":
        subsite.reseller.status = ResellerStatus.SUSPENDED
        subsite.reseller.save()
    channel = subsite_channel(subsite.pk + 1000 if how == "missing" else subsite.pk)

    with pytest.raises(NotFoundError):
        _price(sku.pk, channel)


def test_the_pages_show_each_sites_own_price(client: Client) -> None:
    sku = SkuFactory.create(price=Decimal("100.00"), product__name="隔离测试卡")
    first = subsite_create(slug="alpha", markup_value="10.00")
    subsite_create(slug="bravo", markup_kind=MarkupKind.FIXED, markup_value="3.00")
    SubSitePrice.objects.create(subsite=first, sku=sku, markup_kind=MarkupKind.FIXED, markup_value=Decimal("7.00"))

    pages = {name: client.get(path).content.decode() for name, path in [
        ("main", "/"), ("alpha", "/s/alpha/"), ("bravo", "/s/bravo/"),
        ("alpha_product", f"/s/alpha/products/{sku.product_id}/"),
        ("bravo_product", f"/s/bravo/products/{sku.product_id}/"),
        ("alpha_search", "/s/alpha/search/?q=隔离测试卡")]}

    assert "87.00" in pages["alpha"]
    assert "83.00" not in pages["alpha"]
    assert "100.00" not in pages["alpha"]
    assert "83.00" in pages["bravo"]
    assert "87.00" not in pages["bravo"]
    assert "100.00" in pages["main"]
    assert "87.00" not in pages["main"]
    assert "83.00" not in pages["main"]
    assert "87.00" in pages["alpha_product"]
    assert "83.00" not in pages["alpha_product"]
    assert "83.00" in pages["bravo_product"]
    assert "87.00" not in pages["bravo_product"]
    assert "87.00" in pages["alpha_search"]


def test_reseller_create_helper_makes_an_active_reseller() -> None:
    assert reseller_create().is_active
