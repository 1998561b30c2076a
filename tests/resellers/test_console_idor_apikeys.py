"""Object-level permissions of the reseller console's API key pages (IDOR): every /reseller/api-keys/ route is
listed here. A key of reseller A, requested as reseller B, as a buyer and anonymously: 404, or the login page for
the anonymous visitor; its owner gets anything but 404. A new /reseller/api-keys/ route without a case fails
`test_every_api_key_route_has_a_case`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from kameng.resellers.apikeys import api_key_create
from kameng.resellers.models import ApiKey, Reseller, ResellerStatus
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ObjectFactory = Callable[[Reseller], dict[str, int | str]]


@dataclass(frozen=True)
class RouteCase:
    methods: tuple[str, ...] = ("GET",)
    factory: ObjectFactory | None = None
    post_data: dict[str, str] = field(default_factory=dict)


def _key(reseller: Reseller) -> dict[str, int | str]:
    return {"key_id": api_key_create(reseller_id=reseller.pk, name="A 的密钥").key.pk}


ROUTE_CASES: dict[str, RouteCase] = {
    "web:reseller_apikeys": RouteCase(methods=("GET", "POST"), post_data={"name": "新密钥", "ip_allowlist": ""}),
    "web:reseller_apikey_edit": RouteCase(methods=("GET", "POST"), factory=_key,
                                          post_data={"name": "改名", "ip_allowlist": "203.0.113.9"}),
    "web:reseller_apikey_revoke": RouteCase(methods=("GET", "POST"), factory=_key),
}


def _reseller(status: str = ResellerStatus.ACTIVE) -> Reseller:
    return Reseller.objects.create(user=UserFactory.create(), status=status)


def _walk(patterns: list[URLPattern | URLResolver], prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str]]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}:{pattern.namespace}".strip(":") if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, route, inner)
        else:
            yield route, f"{namespace}:{pattern.name}".strip(":") if pattern.name else f"<unnamed {route}>"


def test_every_api_key_route_has_a_case() -> None:
    routes = {name: route for route, name in _walk(get_resolver().url_patterns)
              if route.lstrip("^").startswith("reseller/api-keys/")}

    assert sorted(routes) == sorted(ROUTE_CASES)
    assert all(ROUTE_CASES[name].factory is not None for name, route in routes.items() if "<" in route)


def _status(client: Client, method: str, url: str, data: dict[str, str]) -> int:
    return (client.post(url, data) if method == "POST" else client.get(url)).status_code


@pytest.mark.parametrize(("name", "method"), [(name, method) for name, case in ROUTE_CASES.items()
                                              if case.factory is not None for method in case.methods])
def test_a_key_of_another_reseller_is_not_found(client: Client, name: str, method: str) -> None:
    case = ROUTE_CASES[name]
    assert case.factory is not None
    owner = _reseller()
    url = reverse(name, kwargs=case.factory(owner))

    client.force_login(_reseller().user)
    as_other_reseller = _status(client, method, url, case.post_data)
    client.force_login(UserFactory.create())
    as_buyer = _status(client, method, url, case.post_data)
    client.logout()
    anonymous = client.post(url, case.post_data) if method == "POST" else client.get(url)
    client.force_login(owner.user)
    as_owner = _status(client, "GET" if "GET" in case.methods else method, url, case.post_data)

    assert (as_other_reseller, as_buyer) == (404, 404)
    assert anonymous.status_code == 302
    assert "/login/" in anonymous["Location"]
    assert as_owner != 404


@pytest.mark.parametrize("name", [name for name, case in ROUTE_CASES.items() if case.factory is None])
def test_the_key_list_is_for_approved_resellers_only(client: Client, name: str) -> None:
    url = reverse(name)

    client.force_login(UserFactory.create())
    as_buyer = client.get(url).status_code
    client.force_login(_reseller(ResellerStatus.PENDING).user)
    as_pending = client.get(url).status_code
    client.logout()
    anonymous = client.get(url)

    assert (as_buyer, as_pending) == (404, 404)
    assert anonymous.status_code == 302


def test_nothing_of_another_resellers_key_changes(client: Client) -> None:
    owner = _reseller()
    key_pk = int(_key(owner)["key_id"])
    client.force_login(_reseller().user)

    client.post(reverse("web:reseller_apikey_edit", args=[key_pk]), ROUTE_CASES["web:reseller_apikey_edit"].post_data)
    client.post(reverse("web:reseller_apikey_revoke", args=[key_pk]))

    key = ApiKey.objects.get(pk=key_pk)
    assert (key.name, key.ip_allowlist, key.revoked_at) == ("A 的密钥", "", None)
