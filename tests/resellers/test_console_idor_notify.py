"""Object-level permissions (IDOR) of the reseller console's callback log: every route of this part is listed in
ROUTE_CASES; an object of reseller A requested as reseller B, as a buyer, as a pending reseller and anonymously is
404 (the login page for the visitor); its owner gets it. The page lists only the reseller's own deliveries, and the
search finds nothing of another's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import get_resolver, reverse

from kameng.resellers.models import NotifyAttempt, NotifyDelivery, NotifyState, Reseller, ResellerStatus
from tests.factories import UserFactory
from tests.resellers.notify_support import card_order, openapi_order, reseller_with_key

pytestmark = pytest.mark.django_db

ObjectFactory = Callable[[Reseller], dict[str, int | str]]
PART_PREFIX = "reseller/notifications/"


@dataclass(frozen=True)
class RouteCase:
    methods: tuple[str, ...] = ("GET",)
    factory: ObjectFactory | None = None


def _delivery(reseller: Reseller, *, state: str = NotifyState.GAVE_UP, request_no: str = "R-1") -> NotifyDelivery:
    key = reseller.api_keys.first()
    order = card_order(reseller, quantity=1)
    link = openapi_order(order, reseller, key, request_no=request_no)
    delivery = NotifyDelivery.objects.create(openapi_order=link, status="delivered", url=link.notify_url,
                                             payload={"order_no": order.number, "request_no": request_no,
                                                      "status": "delivered"}, state=state, attempts=1)
    NotifyAttempt.objects.create(delivery=delivery, attempt_no=1, started_at=delivery.created_at, status_code=410,
                                 response_excerpt="gone-" + request_no)
    return delivery


def _gave_up_delivery(reseller: Reseller) -> dict[str, int | str]:
    return {"delivery_id": _delivery(reseller).pk}


ROUTE_CASES: dict[str, RouteCase] = {
    "web:reseller_notifications": RouteCase(),
    "web:reseller_notification_resend": RouteCase(methods=("POST",), factory=_gave_up_delivery),
}


def _part_routes() -> dict[str, str]:
    from tests.suppliers.test_console_idor import _walk

    return {name: route for route, name in _walk(get_resolver().url_patterns)
            if route.lstrip("^").startswith(PART_PREFIX)}


def test_every_route_of_this_part_has_a_case() -> None:
    routes = _part_routes()
    assert sorted(routes) == sorted(ROUTE_CASES)


def _reseller(*, key_id: str) -> Reseller:
    return reseller_with_key(key_id=key_id)[0]


@pytest.mark.parametrize(("name", "method"), [(name, method) for name, case in ROUTE_CASES.items()
                                              if case.factory is not None for method in case.methods])
def test_an_object_of_another_reseller_is_not_found(client: Client, name: str, method: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from kameng.resellers import notify

    monkeypatch.setattr(notify, "_enqueue", lambda _ids: None)  # no network in this test
    case = ROUTE_CASES[name]
    assert case.factory is not None
    owner = _reseller(key_id="kmk_owner")
    url = reverse(name, kwargs=case.factory(owner))
    pending = Reseller.objects.create(user=UserFactory.create(), status=ResellerStatus.PENDING)

    def attempt() -> Any:
        return client.post(url) if method == "POST" else client.get(url)

    client.force_login(_reseller(key_id="kmk_other").user)
    as_other = attempt().status_code
    client.force_login(UserFactory.create())
    as_buyer = attempt().status_code
    client.force_login(pending.user)
    as_pending = attempt().status_code
    client.logout()
    anonymous = attempt()
    unchanged = NotifyDelivery.objects.get().state
    client.force_login(owner.user)
    as_owner = attempt().status_code

    assert (as_other, as_buyer, as_pending) == (404, 404, 404)
    assert anonymous.status_code == 302
    assert "/login/" in anonymous["Location"]
    assert unchanged == NotifyState.GAVE_UP
    assert as_owner == 302
    assert NotifyDelivery.objects.get().state == NotifyState.PENDING


def test_the_log_shows_only_the_resellers_own_deliveries(client: Client) -> None:
    mine = _reseller(key_id="kmk_mine")
    theirs = _reseller(key_id="kmk_theirs")
    own = _delivery(mine, request_no="MINE-1")
    other = _delivery(theirs, request_no="THEIRS-1")
    client.force_login(mine.user)

    page = client.get(reverse("web:reseller_notifications")).content.decode()
    searched = client.get(reverse("web:reseller_notifications"), {"q": "THEIRS"}).content.decode()
    by_number = client.get(reverse("web:reseller_notifications"),
                           {"q": other.openapi_order.order.number}).content.decode()
    filtered = client.get(reverse("web:reseller_notifications"), {"state": "delivered"}).content.decode()

    assert "MINE-1" in page
    assert "gone-MINE-1" in page  # the attempt's response excerpt
    assert "重新发送" in page
    assert f'data-delivery-id="{own.pk}"' in page
    assert "THEIRS-1" not in page
    assert "THEIRS-1" not in searched
    assert 'data-testid="notify-row"' not in by_number
    assert 'data-testid="notify-row"' not in filtered


def test_the_console_nav_links_the_log(client: Client) -> None:
    reseller = _reseller(key_id="kmk_nav")
    client.force_login(reseller.user)
    page = client.get(reverse("web:reseller_home")).content.decode()
    assert reverse("web:reseller_notifications") in page
