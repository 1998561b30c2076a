"""Object-level permissions of the reseller console pages of the tiers part (IDOR): apply, overview, price list,
batch purchase, a batch order and its key files.

Each route of these pages (found by walking the URL resolver, by the view's module) needs a case in ROUTE_CASES.
A route with an object id is requested, with the object of reseller A, as reseller B, as a plain buyer and
anonymously: 404, or the login page for the visitor; its owner gets anything but 404. A page without an object is
closed to a buyer who is not a reseller (404), except applying, which any logged-in account may open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from kameng.catalog.pricing import SALES_CHANNEL_BATCH
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from kameng.resellers.models import Reseller
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku
from tests.resellers.support import reseller_make, tier_make

pytestmark = pytest.mark.django_db
MODULES = ("kameng.web.views.reseller_apply", "kameng.web.views.reseller_prices", "kameng.web.views.reseller_batch",
           "kameng.web.views.reseller_console")

ObjectFactory = Callable[[Reseller], dict[str, int | str]]


@dataclass(frozen=True)
class RouteCase:
    methods: tuple[str, ...] = ("GET",)
    factory: ObjectFactory | None = None
    anyone: bool = False  # any logged-in account may open it (applying)


def _batch_order(reseller: Reseller) -> dict[str, int | str]:
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 3, prefix=f"IDOR-{reseller.pk}")
    fund_wallet(reseller.user, "100.00", reference=f"idor-{reseller.pk}")
    result = purchase_create(buyer_id=reseller.user_id, sku_id=sku.pk, quantity=3,
                             payment=PaymentChoice(PayBy.WALLET), request_id=None, sales_channel=SALES_CHANNEL_BATCH)
    return {"number": result.order.number}


def _batch_keys(file_format: str) -> ObjectFactory:
    def factory(reseller: Reseller) -> dict[str, int | str]:
        return {**_batch_order(reseller), "file_format": file_format}

    return factory


ROUTE_CASES: dict[str, RouteCase] = {
    "web:reseller_home": RouteCase(),
    "web:reseller_apply": RouteCase(methods=("GET", "POST"), anyone=True),
    "web:reseller_prices": RouteCase(),
    "web:reseller_batch": RouteCase(methods=("GET", "POST")),
    "web:reseller_batch_order": RouteCase(factory=_batch_order),
    "web:reseller_batch_keys": RouteCase(factory=_batch_keys("txt")),
}
EXTRA_OBJECT_CASES = {"csv": _batch_keys("csv")}


def _walk(patterns: list[URLPattern | URLResolver], prefix: str = "", namespace: str = "") -> Iterator[
        tuple[str, str, str]]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}:{pattern.namespace}".strip(":") if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, route, inner)
        else:
            name = f"{namespace}:{pattern.name}".strip(":") if pattern.name else f"<unnamed {route}>"
            yield route, name, getattr(pattern.callback, "__module__", "")


def tier_routes() -> dict[str, str]:
    """URL name → route of every /reseller/ pattern served by this part's view modules."""
    return {name: route for route, name, module in _walk(get_resolver().url_patterns)
            if route.lstrip("^").startswith("reseller/") and module in MODULES}


def test_every_route_of_these_pages_has_a_case() -> None:
    routes = tier_routes()
    assert sorted(routes) == sorted(ROUTE_CASES)


def _status(client: Client, method: str, url: str) -> int:
    return (client.post(url, {}) if method == "POST" else client.get(url)).status_code


def _object_cases() -> list[tuple[str, ObjectFactory]]:
    cases = [(name, case.factory) for name, case in ROUTE_CASES.items() if case.factory is not None]
    return [*cases, *(("web:reseller_batch_keys", factory) for factory in EXTRA_OBJECT_CASES.values())]


@pytest.mark.parametrize(("name", "factory"), _object_cases())
def test_an_object_of_another_reseller_is_not_found(client: Client, name: str, factory: ObjectFactory) -> None:
    tier = tier_make()
    owner = reseller_make(tier)
    url = reverse(name, kwargs=factory(owner))

    client.force_login(reseller_make(tier).user)
    as_other_reseller = client.get(url).status_code
    client.force_login(UserFactory.create())
    as_buyer = client.get(url).status_code
    client.logout()
    anonymous = client.get(url)
    client.force_login(owner.user)
    as_owner = client.get(url)

    assert (as_other_reseller, as_buyer) == (404, 404)
    assert anonymous.status_code == 302
    assert "/login/" in anonymous["Location"]
    assert as_owner.status_code == 200


@pytest.mark.parametrize(("name", "method"), [(name, method) for name, case in ROUTE_CASES.items()
                                              if case.factory is None and not case.anyone
                                              for method in case.methods])
def test_a_buyer_who_is_not_a_reseller_finds_nothing(client: Client, name: str, method: str) -> None:
    url = reverse(name)
    client.force_login(UserFactory.create())
    assert _status(client, method, url) == 404
    client.logout()
    anonymous = client.post(url, {}) if method == "POST" else client.get(url)
    assert anonymous.status_code == 302
    assert "/login/" in anonymous["Location"]


@pytest.mark.parametrize("name", ["web:reseller_prices", "web:reseller_batch"])
def test_active_pages_are_closed_to_a_pending_reseller(client: Client, name: str) -> None:
    client.force_login(reseller_make(tier_make(), status="pending").user)
    assert client.get(reverse(name)).status_code == 404
    assert client.get(reverse("web:reseller_home")).status_code == 200
