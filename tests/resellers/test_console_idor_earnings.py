"""Object-level permissions (IDOR) of the reseller console's money pages (推广 / 利润 / 提现), and what they show.

Every route of this part is listed in ROUTE_CASES (a route added to the part without a case fails
`test_every_earnings_route_has_a_case`). A withdrawal of reseller A asked for by reseller B, by a buyer or by a
pending reseller answers 404, anonymously the login page; its owner sees it. Pages without an object id are
hidden (404) from buyers and from resellers not yet approved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from kameng.accounts.models import User
from kameng.ledger import recipes
from kameng.ledger.models import AccountKind
from kameng.ledger.services import journal_draft_post
from kameng.resellers.commission_withdrawals import commission_withdrawal_request
from kameng.resellers.models import Reseller, ResellerStatus, ResellerWithdrawal
from kameng.resellers.referrals import invite_code_of
from tests.factories import UserFactory
from tests.resellers.earnings_support import (
    Capture,
    buy,
    earning,
    invited_by,
    later,
    owner_balance,
    reseller,
)

pytestmark = pytest.mark.django_db
__all__ = ["earning"]
ACCOUNT = "6222020200112233445"

ObjectFactory = Callable[[User], dict[str, str]]


@dataclass(frozen=True)
class RouteCase:
    methods: tuple[str, ...] = ("GET",)
    factory: ObjectFactory | None = None
    post_data: dict[str, str] = field(default_factory=dict)


def _credit_commission(user: User, amount: str) -> None:
    """Confirmed commission in the user's balance, as a release would put it (no order)."""
    journal_draft_post(draft=recipes.reseller_earning_pending(reference=f"idor-{user.pk}", memo="test",
                                                              amount=Decimal(amount), is_margin=False))
    journal_draft_post(draft=recipes.commission_released(reference=f"idor-{user.pk}", memo="test", owner_id=user.pk,
                                                         amount=Decimal(amount)))


def _withdrawal(user: User) -> dict[str, str]:
    _credit_commission(user, "500.00")
    withdrawal = commission_withdrawal_request(reseller_id=Reseller.objects.get(user=user).pk,
                                               amount=Decimal("200.00"), bank_name="工商银行", account_name="张三",
                                               account_number=ACCOUNT)
    return {"number": withdrawal.number}


ROUTE_CASES: dict[str, RouteCase] = {
    "web:reseller_promotion": RouteCase(),
    "web:reseller_margins": RouteCase(),
    "web:reseller_withdrawals": RouteCase(methods=("GET", "POST")),
    "web:reseller_commission_to_wallet": RouteCase(methods=("POST",), post_data={"amount": "1.00",
                                                                                 "request_id": "x1"}),
    "web:reseller_withdrawal": RouteCase(factory=_withdrawal),
}
VIEW_MODULE = "kameng.web.views.reseller_earnings"


def _walk(patterns: list[URLPattern | URLResolver], prefix: str = "",
          namespace: str = "") -> Iterator[tuple[str, str, str]]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}:{pattern.namespace}".strip(":") if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, route, inner)
        else:
            yield route, f"{namespace}:{pattern.name}".strip(":"), getattr(pattern.callback, "__module__", "")


def test_every_earnings_route_has_a_case() -> None:
    """Every URL served by this part's views is under /reseller/ and has a case here (and no case is stale)."""
    routes = {name: route for route, name, module in _walk(get_resolver().url_patterns) if module == VIEW_MODULE}

    assert sorted(routes) == sorted(ROUTE_CASES)
    assert all(route.startswith("reseller/") for route in routes.values())


def _status(client: Client, method: str, url: str, data: dict[str, str]) -> int:
    return (client.post(url, data) if method == "POST" else client.get(url)).status_code


@pytest.mark.parametrize(("name", "method"), [(name, method) for name, case in ROUTE_CASES.items()
                                              if case.factory is not None for method in case.methods])
def test_a_withdrawal_of_another_reseller_is_not_found(client: Client, name: str, method: str) -> None:
    case = ROUTE_CASES[name]
    assert case.factory is not None
    owner = reseller()
    url = reverse(name, kwargs=case.factory(owner))

    client.force_login(reseller())
    as_other = _status(client, method, url, case.post_data)
    client.force_login(UserFactory.create())
    as_buyer = _status(client, method, url, case.post_data)
    client.force_login(reseller(status=ResellerStatus.PENDING))
    as_pending = _status(client, method, url, case.post_data)
    client.logout()
    anonymous = client.get(url)
    client.force_login(owner)
    as_owner = client.get(url)

    assert (as_other, as_buyer, as_pending) == (404, 404, 404)
    assert anonymous.status_code == 302
    assert "/login/" in anonymous["Location"]
    assert as_owner.status_code == 200
    assert ACCOUNT not in as_owner.content.decode()  # masked
    assert "**** 3445" in as_owner.content.decode()


@pytest.mark.parametrize("name", [name for name, case in ROUTE_CASES.items() if case.factory is None])
def test_a_page_without_an_object_is_for_approved_resellers_only(client: Client, name: str) -> None:
    case = ROUTE_CASES[name]
    url = reverse(name)
    method = case.methods[0]

    client.force_login(UserFactory.create())
    as_buyer = _status(client, method, url, case.post_data)
    client.force_login(reseller(status=ResellerStatus.PENDING))
    as_pending = _status(client, method, url, case.post_data)
    client.logout()
    anonymous = client.post(url, case.post_data) if method == "POST" else client.get(url)

    assert (as_buyer, as_pending) == (404, 404)
    assert anonymous.status_code == 302
    assert "/login/" in anonymous["Location"]


def test_a_post_moves_only_the_requesters_own_money(client: Client) -> None:
    owner, other = reseller(), reseller()
    _credit_commission(owner, "50.00")
    client.force_login(other)

    to_wallet = client.post(reverse("web:reseller_commission_to_wallet"), {"amount": "10.00", "request_id": "a"})
    withdraw = client.post(reverse("web:reseller_withdrawals"), {
        "amount": "100.00", "bank_name": "工商银行", "account_name": "李四", "account_number": ACCOUNT,
        "request_id": "b"})

    assert (to_wallet.status_code, withdraw.status_code) == (409, 409)
    assert owner_balance(owner, AccountKind.RESELLER_COMMISSION) == Decimal("50.00")
    assert not ResellerWithdrawal.objects.exists()


@pytest.mark.usefixtures("earning")
def test_the_promotion_page_shows_the_link_the_totals_and_masked_orders(
        client: Client, django_capture_on_commit_callbacks: Capture) -> None:
    from kameng.resellers.earnings import earnings_release_due

    owner = reseller()
    buyer = invited_by(UserFactory.create(), owner)
    first = buy(django_capture_on_commit_callbacks, buyer, price="100.00")
    earnings_release_due(now=later())
    second = buy(django_capture_on_commit_callbacks, buyer, price="40.00")
    client.force_login(owner)

    body = client.get(reverse("web:reseller_promotion")).content.decode()

    assert f"?aff={invite_code_of(user_id=owner.pk)}" in body
    assert 'data-testid="invitees">1<' in body
    assert 'data-testid="total-pending">¥2.00<' in body
    assert 'data-testid="total-available">¥5.00<' in body
    assert first.number not in body
    assert second.number not in body
    assert first.number[-4:] in body
    margins = client.get(reverse("web:reseller_margins"))
    assert margins.status_code == 200


def test_the_withdrawal_page_transfers_to_the_wallet_and_requests_a_withdrawal(client: Client) -> None:
    owner = reseller()
    _credit_commission(owner, "300.00")
    client.force_login(owner)

    page = client.get(reverse("web:reseller_withdrawals")).content.decode()
    moved = client.post(reverse("web:reseller_commission_to_wallet"), {"amount": "50.00", "request_id": "t1"})
    asked = client.post(reverse("web:reseller_withdrawals"), {
        "amount": "200.00", "bank_name": "工商银行", "account_name": "张三", "account_number": ACCOUNT,
        "request_id": "w1"})
    too_much = client.post(reverse("web:reseller_withdrawals"), {
        "amount": "100.00", "bank_name": "工商银行", "account_name": "张三", "account_number": ACCOUNT,
        "request_id": "w2"})

    assert 'data-testid="commission-balance">¥300.00<' in page
    assert (moved.status_code, asked.status_code, too_much.status_code) == (302, 302, 409)
    assert "佣金余额不足" in too_much.content.decode()
    history = client.get(reverse("web:reseller_withdrawals")).content.decode()
    assert 'data-testid="commission-balance">¥50.00<' in history
    assert "转入余额" in history
    assert "**** 3445" in history
    assert ACCOUNT not in history
