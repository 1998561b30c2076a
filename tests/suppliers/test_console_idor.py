"""Object-level permissions of the supplier console (IDOR): every URL under /supplier/ is listed here.

The routes are found by walking the URL resolver. Each one needs a case in ROUTE_CASES: how to build an object of
a given supplier for the route's ids (a factory returning the URL kwargs), or that the route takes no object id.
For each route with an id, the object of supplier A is requested as supplier B, as a buyer and anonymously: 404, or
the login page for the anonymous visitor; its owner gets anything but 404, which proves the factory built the
right object. A new /supplier/ route without a case fails `test_every_supplier_route_has_a_case`, naming it: add
its case (a factory for its object) here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from kameng.catalog.models import DeliveryKind
from kameng.suppliers.models import OfferStockSource, RestockRequest, Supplier
from kameng.suppliers.withdrawals import supplier_withdrawal_request
from tests.factories import SkuFactory, SupplierFactory, SupplierOfferFactory, UserFactory
from tests.suppliers.money_support import credit_payable
from tests.suppliers.onboarding_helpers import private_documents, upload

pytestmark = pytest.mark.django_db
__all__ = ["private_documents"]  # the autouse fixture: documents go to a temporary directory

ObjectFactory = Callable[[Supplier], dict[str, int | str]]


@dataclass(frozen=True)
class RouteCase:
    """How to exercise one console route. `factory` builds an object of the supplier passed and returns the URL
    kwargs naming it (None for a route without an object id). `methods` are those the view answers. `anyone` marks
    a page any logged-in account may open (applying to become a supplier)."""

    methods: tuple[str, ...] = ("GET",)
    factory: ObjectFactory | None = None
    anyone: bool = False
    # The URL's parameters name no object of one supplier (a month of the requester's own statement): every
    # supplier gets its own, a buyer 404, a visitor the login page.
    shared: bool = False
    post_data: dict[str, str] = field(default_factory=dict)


def _offer(supplier: Supplier) -> dict[str, int | str]:
    return {"offer_id": SupplierOfferFactory.create(supplier=supplier).pk}


def _card_key_offer(supplier: Supplier) -> dict[str, int | str]:
    sku = SkuFactory.create(product__delivery_kind=DeliveryKind.CARD_KEY)
    offer = SupplierOfferFactory.create(supplier=supplier, sku=sku, stock_source=OfferStockSource.CARD_KEYS)
    return {"offer_id": offer.pk}


def _document(supplier: Supplier) -> dict[str, int | str]:
    return {"document_id": upload(supplier).pk}


def _withdrawal(supplier: Supplier) -> dict[str, int | str]:
    credit_payable(supplier, "500.00", reference=f"idor-credit-{supplier.pk}")
    withdrawal = supplier_withdrawal_request(supplier_id=supplier.pk, amount=Decimal("200.00"), bank_name="工商银行",
                                             account_name="甲公司", account_number="6222000011112222")
    return {"number": withdrawal.number}


def _restock_request(supplier: Supplier) -> dict[str, int | str]:
    offer = SupplierOfferFactory.create(supplier=supplier, upstream_stock=1)
    request = RestockRequest.objects.create(offer=offer, supplier=supplier, stock_at_raise=1, threshold=10)
    return {"request_id": request.pk, "to": "acknowledged"}


def _statement(supplier: Supplier) -> dict[str, int | str]:
    # A statement is of the requesting supplier's own month: the URL names a month, not another's object.
    return {"month": "2026-11", "file_format": "csv"}


# Every route under /supplier/, by URL name. Other console pages (restock, statements, withdrawals, rating) add
# their cases here with a factory for their object.
ROUTE_CASES: dict[str, RouteCase] = {
    "web:supplier_home": RouteCase(),
    "web:supplier_apply": RouteCase(methods=("GET", "POST"), anyone=True),
    "web:supplier_company": RouteCase(methods=("GET", "POST")),
    "web:supplier_legal_person": RouteCase(methods=("POST",)),
    "web:supplier_document_upload": RouteCase(methods=("POST",)),
    "web:supplier_document": RouteCase(factory=_document),
    "web:supplier_agreement": RouteCase(methods=("GET", "POST")),
    "web:supplier_submit": RouteCase(methods=("POST",)),
    "web:supplier_offers": RouteCase(methods=("GET", "POST")),
    "web:supplier_offer_edit": RouteCase(methods=("GET", "POST"), factory=_offer,
                                         post_data={"price": "1.00", "stock_source": "upstream",
                                                    "upstream_product_id": "X"}),
    "web:supplier_offer_keys": RouteCase(methods=("GET", "POST"), factory=_card_key_offer,
                                         post_data={"text": "STOLEN-KEY-0001"}),
    "web:supplier_orders": RouteCase(),
    "web:supplier_disputes": RouteCase(),
    "web:supplier_rating": RouteCase(),
    "web:supplier_statements": RouteCase(),
    "web:supplier_statement_download": RouteCase(factory=_statement, shared=True),
    "web:supplier_withdrawals": RouteCase(methods=("GET", "POST")),
    "web:supplier_withdrawal": RouteCase(factory=_withdrawal),
    "web:supplier_restock": RouteCase(),
    "web:supplier_restock_settings": RouteCase(methods=("POST",)),
    "web:supplier_restock_move": RouteCase(methods=("POST",), factory=_restock_request),
}


def _walk(patterns: list[URLPattern | URLResolver], prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str]]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}:{pattern.namespace}".strip(":") if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, route, inner)
        else:
            name = f"{namespace}:{pattern.name}".strip(":") if pattern.name else f"<unnamed {route}>"
            yield route, name


def supplier_routes() -> dict[str, str]:
    """URL name → route of every pattern whose address starts with /supplier/."""
    return {name: route for route, name in _walk(get_resolver().url_patterns)
            if route.lstrip("^").startswith("supplier/")}


def routes_without_cases(routes: dict[str, str], cases: dict[str, RouteCase]) -> list[str]:
    return sorted(f"{name} (/{route})" for name, route in routes.items() if name not in cases)


def test_every_supplier_route_has_a_case() -> None:
    routes = supplier_routes()

    missing = routes_without_cases(routes, ROUTE_CASES)
    stale = sorted(name for name in ROUTE_CASES if name not in routes)

    assert not missing, ("console routes without an IDOR case — add each to ROUTE_CASES in "
                         f"tests/suppliers/test_console_idor.py with a factory for its object: {missing}")
    assert not stale, f"ROUTE_CASES names routes that no longer exist: {stale}"


def test_a_new_route_without_a_case_is_named() -> None:
    routes = {**supplier_routes(), "web:supplier_statement": "supplier/statements/<int:statement_id>/"}

    assert routes_without_cases(routes, ROUTE_CASES) == [
        "web:supplier_statement (/supplier/statements/<int:statement_id>/)"]


def test_every_route_with_an_object_id_has_a_factory() -> None:
    routes = supplier_routes()

    without = sorted(name for name, route in routes.items()
                     if "<" in route and name in ROUTE_CASES and ROUTE_CASES[name].factory is None)

    assert not without, f"routes with an object id need a factory in ROUTE_CASES: {without}"


def _request(client: Client, method: str, url: str, data: dict[str, str]) -> int:
    response = client.post(url, data) if method == "POST" else client.get(url)
    return response.status_code


def _cases_with_objects() -> list[tuple[str, str]]:
    return [(name, method) for name, case in ROUTE_CASES.items() if case.factory is not None and not case.shared
            for method in case.methods]


@pytest.mark.parametrize(("name", "method"), _cases_with_objects())
def test_an_object_of_another_supplier_is_not_found(client: Client, name: str, method: str) -> None:
    case = ROUTE_CASES[name]
    assert case.factory is not None
    owner = SupplierFactory.create()
    url = reverse(name, kwargs=case.factory(owner))

    client.force_login(SupplierFactory.create().owner)
    as_other_supplier = _request(client, method, url, case.post_data)
    client.force_login(UserFactory.create())
    as_buyer = _request(client, method, url, case.post_data)
    client.logout()
    anonymous = client.post(url, case.post_data) if method == "POST" else client.get(url)
    client.force_login(owner.owner)
    as_owner = _request(client, "GET" if "GET" in case.methods else method, url, case.post_data)

    assert (as_other_supplier, as_buyer) == (404, 404)
    assert anonymous.status_code == 302
    assert "/login/" in anonymous["Location"]
    assert as_owner != 404


@pytest.mark.parametrize("name", [name for name, case in ROUTE_CASES.items() if case.shared])
def test_a_route_of_the_requesters_own_data_is_hidden_from_buyers(client: Client, name: str) -> None:
    case = ROUTE_CASES[name]
    assert case.factory is not None
    url = reverse(name, kwargs=case.factory(SupplierFactory.create()))

    client.force_login(UserFactory.create())
    as_buyer = client.get(url).status_code
    client.logout()
    anonymous = client.get(url)

    assert as_buyer == 404
    assert anonymous.status_code == 302
    assert "/login/" in anonymous["Location"]


def test_nothing_was_written_for_another_supplier(client: Client) -> None:
    """The POST routes with an object id changed nothing of the owner's: its offer and its stock are as built."""
    from kameng.inventory.models import CardKey
    from kameng.suppliers.models import SupplierOffer

    owner = SupplierFactory.create()
    offer_id = _offer(owner)["offer_id"]
    keys_offer_id = _card_key_offer(owner)["offer_id"]
    client.force_login(SupplierFactory.create().owner)

    client.post(reverse("web:supplier_offer_edit", args=[offer_id]), ROUTE_CASES["web:supplier_offer_edit"].post_data)
    client.post(reverse("web:supplier_offer_keys", args=[keys_offer_id]), {"text": "STOLEN-KEY-0001"})

    offer = SupplierOffer.objects.get(pk=offer_id)
    assert (str(offer.price), offer.upstream_product_id) != ("1.00", "X")
    assert CardKey.objects.count() == 0


@pytest.mark.parametrize("name", [name for name, case in ROUTE_CASES.items() if case.factory is None])
def test_a_page_without_an_object_is_hidden_from_buyers_and_asks_visitors_to_log_in(client: Client,
                                                                                    name: str) -> None:
    case = ROUTE_CASES[name]
    url = reverse(name)
    method = case.methods[0]

    client.force_login(UserFactory.create())
    as_buyer = _request(client, method, url, case.post_data)
    client.logout()
    anonymous = client.post(url, case.post_data) if method == "POST" else client.get(url)

    assert anonymous.status_code == 302
    assert "/login/" in anonymous["Location"]
    if case.anyone:
        assert as_buyer in (200, 302, 400)
    else:
        assert as_buyer == 404
