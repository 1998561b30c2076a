"""Object-level permissions of the console's sub-site pages (IDOR): every URL under /reseller/subsite/ is listed.

The routes are found by walking the URL resolver; each needs a case in ROUTE_CASES (a new route without one fails
`test_every_subsite_route_has_a_case`). None of them names a sub-site: each acts on the requester's own. So for
every route: a buyer and a reseller still under review get 404, a visitor the login page, and reseller B acting
with A's ids (a SKU A marked up) changes only B's sub-site, never A's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from kameng.catalog.models import Sku
from kameng.resellers import domain_probe
from kameng.resellers.models import MarkupKind, ResellerStatus, SubSite, SubSitePrice
from tests.factories import SkuFactory, UserFactory
from tests.resellers.subsite_support import fresh_subsite_caches, reseller_create, subsite_create

pytestmark = pytest.mark.django_db
__all__ = ["fresh_subsite_caches"]


@dataclass(frozen=True)
class RouteCase:
    methods: tuple[str, ...]
    post_data: dict[str, str] = field(default_factory=dict)
    takes_sku: bool = False


ROUTE_CASES: dict[str, RouteCase] = {
    "web:reseller_subsite": RouteCase(("GET", "POST"), {"slug": "taken-over", "title": "抢占", "markup_kind": "percent",
                                                        "markup_value": "1"}),
    "web:reseller_subsite_markup": RouteCase(("POST",), {"markup_kind": "fixed", "markup_value": "0.01"}),
    "web:reseller_subsite_markup_remove": RouteCase(("POST",), takes_sku=True),
    "web:reseller_subsite_domain": RouteCase(("POST",), {"domain": "a-shop.example.com"}),
    "web:reseller_subsite_domain_verify": RouteCase(("POST",)),
}


def _routes(patterns: list[URLPattern | URLResolver], prefix: str = "", namespace: str = "") -> Iterator[
        tuple[str, str]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}:{pattern.namespace}" if namespace and pattern.namespace else (
                pattern.namespace or namespace)
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif pattern.name:
            yield prefix + str(pattern.pattern), f"{namespace}:{pattern.name}" if namespace else pattern.name


SUBSITE_ROUTES = sorted({name for route, name in _routes(get_resolver().url_patterns)
                         if route.startswith("reseller/subsite")})


@pytest.fixture(autouse=True)
def _probes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever is asked, the internet publishes every token: verification succeeds for whoever asks.
    monkeypatch.setattr(domain_probe, "TXT_RESOLVER",
                        lambda name: list(SubSite.objects.values_list("domain_token", flat=True)))
    monkeypatch.setattr(domain_probe, "FILE_FETCHER", lambda domain: "")


def test_every_subsite_route_has_a_case() -> None:
    assert SUBSITE_ROUTES, "no /reseller/subsite/ routes found"
    assert sorted(ROUTE_CASES) == SUBSITE_ROUTES


def _state(subsite: SubSite) -> tuple[object, ...]:
    subsite.refresh_from_db()
    markups = sorted(SubSitePrice.objects.filter(subsite=subsite).values_list("sku_id", "markup_kind",
                                                                             "markup_value"))
    return (subsite.slug, subsite.title, subsite.markup_kind, subsite.markup_value, subsite.custom_domain,
            subsite.domain_token, subsite.domain_verified_at, subsite.is_enabled, tuple(markups))


def _url(name: str, sku: Sku) -> str:
    return reverse(name, args=[sku.pk]) if ROUTE_CASES[name].takes_sku else reverse(name)


@pytest.mark.parametrize("name", sorted(ROUTE_CASES))
def test_another_reseller_never_changes_a_sub_site_not_its_own(client: Client, name: str) -> None:
    sku = SkuFactory.create(price=Decimal("100.00"))
    owner = subsite_create(slug="owner-site", custom_domain="owner.example.com", domain_token="owner-token",
                           domain_verified_at=timezone.now())
    SubSitePrice.objects.create(subsite=owner, sku=sku, markup_kind=MarkupKind.FIXED, markup_value=Decimal("5.00"))
    intruder = subsite_create(slug="intruder-site")
    before = _state(owner)
    client.force_login(intruder.reseller.user)

    case = ROUTE_CASES[name]
    for method in case.methods:
        data = {**case.post_data, "sku_id": str(sku.pk)} if method == "POST" else {}
        response = getattr(client, method.lower())(_url(name, sku), data)
        assert response.status_code != 500

    assert _state(owner) == before


@pytest.mark.parametrize("name", sorted(ROUTE_CASES))
def test_buyers_and_resellers_under_review_get_404_and_visitors_the_login_page(client: Client, name: str) -> None:
    sku = SkuFactory.create()
    case = ROUTE_CASES[name]
    url = _url(name, sku)
    method = case.methods[0].lower()
    assert getattr(client, method)(url).status_code == 302  # the visitor goes to the login page
    assert reverse("web:login") in getattr(client, method)(url)["Location"]
    for user in (UserFactory.create(), reseller_create(status=ResellerStatus.PENDING).user):
        client.force_login(user)
        assert getattr(client, method)(url, case.post_data).status_code == 404
    assert not SubSite.objects.exists()
