"""The one exhaustive IDOR suite: every URL pattern of the project (storefront, consoles, staff admin, the JSON API,
the Open API v1, acg-faka docking, payments' notify/return, suppliers' callbacks, the simulators when installed)
is found by walking the URL resolver and must be classified in ROUTES below. A route that is not there fails
`test_every_route_is_classified`, naming it: add it to ROUTES with its kind (and, for an object route, a factory
that builds the object for its owner).

Kinds:
- PUBLIC — no object of anyone (the catalogue, log-in pages, API schemas).
- OWN — the requester's own data, no object id in the URL (or an id of a public thing, such as a SKU, acted on
  within the requester's own account): a visitor is sent to log in; a page for one role is 404 to the others.
- OBJECT — names an object of one account: the object is built for owner A, then asked for as another buyer,
  another reseller and another supplier (404 or 403) and anonymously (the login page, or 401 for the JSON API);
  the owner gets anything but 404, which proves the factory built the right object.
- STAFF — the staff admin (every pattern in the `admin` namespace): a visitor and a logged-in non-staff account
  are sent to the admin login, for every changelist/add/change/delete/history page of every registered model and
  every extra admin view.
- MACHINE — a signed door for another system (gateway notify, supplier callback, Open API, acg-faka): what proves
  it refuses strangers is its signature tests, named in `proof` (the files must exist). The Open API's order
  look-ups are also tried here, signed by another reseller.
- EXEMPT — with the reason.

The per-part suites (tests/suppliers/test_console_idor.py, tests/resellers/test_console_idor_*.py) go deeper into
each console (what a POST leaves unchanged); this file is the net that catches a route nobody classified.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from kameng.accounts.models import User
from kameng.after_sales.services import after_sales_request_create
from kameng.catalog.models import DeliveryKind
from kameng.catalog.pricing import SALES_CHANNEL_BATCH
from kameng.core.ids import public_number
from kameng.notices.services import notice_email_change_request
from kameng.orders.models import Order
from kameng.orders.services import order_checkout
from kameng.payments.models import ChannelKind, Payment, PaymentChannel, PaymentPurpose
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from kameng.resellers.apikeys import api_key_create
from kameng.resellers.commission_withdrawals import commission_withdrawal_request
from kameng.resellers.models import (
    NotifyDelivery,
    NotifyState,
    OpenApiOrder,
    Reseller,
    ResellerTier,
)
from kameng.suppliers.models import OfferStockSource, RestockRequest, Supplier
from kameng.suppliers.withdrawals import supplier_withdrawal_request
from tests.factories import SkuFactory, SupplierFactory, SupplierOfferFactory, UserFactory, fund_wallet, stock_sku
from tests.resellers.openapi_support import call, reseller_with_key
from tests.resellers.support import reseller_make, tier_make
from tests.suppliers.money_support import credit_payable
from tests.suppliers.onboarding_helpers import private_documents, upload

pytestmark = pytest.mark.django_db
__all__ = ["private_documents"]  # autouse: uploaded documents go to a temporary directory

REPO = Path(__file__).resolve().parents[2]


class Kind(StrEnum):
    PUBLIC = "public"
    OWN = "own"
    OBJECT = "object"
    STAFF = "staff"
    MACHINE = "machine"
    EXEMPT = "exempt"


class Role(StrEnum):
    BUYER = "buyer"
    RESELLER = "reseller"
    SUPPLIER = "supplier"
    STAFF = "staff"


@dataclass(frozen=True)
class Target:
    """What a factory built: the URL kwargs naming the object, and a query string some doors take instead."""

    kwargs: dict[str, Any] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)


ObjectFactory = Callable[[User], Target]


@dataclass(frozen=True)
class Route:
    kind: Kind
    # OWN: the role the page is for (None: any logged-in account). OBJECT: the role of the owner.
    role: Role | None = None
    factory: ObjectFactory | None = None
    methods: tuple[str, ...] = ("GET",)
    post_data: dict[str, str] = field(default_factory=dict)
    # The answers a stranger may get; a few doors say "this link is not valid" (400) rather than 404.
    refused: tuple[int, ...] = (403, 404)
    # Why the route is public/machine/exempt, and for MACHINE the tests proving strangers are refused.
    reason: str = ""
    proof: tuple[str, ...] = ()


def public(reason: str) -> Route:
    return Route(Kind.PUBLIC, reason=reason)


def own(role: Role | None = None, *methods: str, **data: str) -> Route:
    return Route(Kind.OWN, role=role, methods=methods or ("GET",), post_data=data)


def machine(reason: str, *proof: str) -> Route:
    return Route(Kind.MACHINE, reason=reason, proof=proof)


SIMULATOR = Route(Kind.EXEMPT, reason="the built-in stand-in for a third-party gateway or carrier, mounted only with "
                                     "KAMENG_SIMULATORS_ENABLED (demo, tests), never in production; it keeps no "
                                     "account data of kameng")


# ---- object factories: build an object of the owner, return its URL kwargs ----

def _reseller(user: User) -> Reseller:
    return Reseller.objects.get(user=user)


def _supplier(user: User) -> Supplier:
    return Supplier.objects.get(owner=user)


def _delivered_order(user: User) -> Order:
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 1, prefix=f"IDOR-{user.pk}")
    fund_wallet(user, "10.00", reference=f"idor-order-{user.pk}")
    return order_checkout(buyer_id=user.pk, sku_id=sku.pk, quantity=1).order


def _pending_order(user: User) -> Order:
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 1, prefix=f"IDOR-P-{user.pk}")
    return purchase_create(buyer_id=user.pk, sku_id=sku.pk, quantity=1, payment=PaymentChoice(PayBy.RESERVE),
                           request_id=None).order


def _channel() -> PaymentChannel:
    return PaymentChannel.objects.get_or_create(code="idor-epay", defaults={
        "name": "易支付", "kind": ChannelKind.EPAY_V1, "gateway_url": "https://pay.example.com/",
        "merchant_id": "1001", "merchant_key": "idor-merchant-key-0123456789abcdef"})[0]


def _order(user: User) -> Target:
    return Target({"number": _delivered_order(user).number})


def _order_asked_about(user: User) -> Target:
    """A delivered order with a pending after-sales request (售后申请) of its buyer."""
    order = _delivered_order(user)
    after_sales_request_create(buyer_id=user.pk, order_number=order.number, reason="key_invalid")
    return Target({"number": order.number})


def _pending(user: User) -> Target:
    return Target({"number": _pending_order(user).number})


def _order_payment(user: User) -> Payment:
    order = _pending_order(user)
    return Payment.objects.create(number=public_number("P"), user_id=user.pk, channel=_channel(),
                                  purpose=PaymentPurpose.ORDER, order=order, amount=order.total_amount)


def _payment_of_order(user: User) -> Target:
    payment = _order_payment(user)
    assert payment.order is not None
    return Target({"number": payment.order.number, "payment_number": payment.number})


def _topup(user: User) -> Payment:
    return Payment.objects.create(number=public_number("P"), user_id=user.pk, channel=_channel(),
                                  purpose=PaymentPurpose.WALLET_TOPUP, amount=Decimal("30.00"))


def _topup_status(user: User) -> Target:
    return Target({"number": _topup(user).number})


def _payment_return(user: User) -> Target:
    return Target(query={"out_trade_no": _topup(user).number})


def _email_link(user: User) -> Target:
    mail.outbox.clear()
    notice_email_change_request(user_id=user.pk, email=f"owner{user.pk}@example.com", language="zh-hans")
    token = re.search(r"/account/email/confirm/([^/\s]+)/", str(mail.outbox[-1].body))
    assert token is not None
    return Target({"token": token.group(1)})


def _batch_order(user: User) -> Target:
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 2, prefix=f"IDOR-B-{user.pk}")
    fund_wallet(user, "100.00", reference=f"idor-batch-{user.pk}")
    result = purchase_create(buyer_id=user.pk, sku_id=sku.pk, quantity=2, payment=PaymentChoice(PayBy.WALLET),
                             request_id=None, sales_channel=SALES_CHANNEL_BATCH)
    return Target({"number": result.order.number})


def _batch_keys(user: User) -> Target:
    return Target({**_batch_order(user).kwargs, "file_format": "txt"})


def _commission_withdrawal(user: User) -> Target:
    from kameng.ledger import recipes
    from kameng.ledger.services import journal_draft_post

    reference = f"idor-commission-{user.pk}"
    journal_draft_post(draft=recipes.reseller_earning_pending(reference=reference, memo="test",
                                                              amount=Decimal("500.00"), is_margin=False))
    journal_draft_post(draft=recipes.commission_released(reference=reference, memo="test", owner_id=user.pk,
                                                         amount=Decimal("500.00")))
    withdrawal = commission_withdrawal_request(reseller_id=_reseller(user).pk, amount=Decimal("200.00"),
                                               bank_name="工商银行", account_name="张三",
                                               account_number="6222020200112233445")
    return Target({"number": withdrawal.number})


def _api_key(user: User) -> Target:
    return Target({"key_id": api_key_create(reseller_id=_reseller(user).pk, name="A 的密钥").key.pk})


def _notify_delivery(user: User) -> Target:
    reseller = _reseller(user)
    key = api_key_create(reseller_id=reseller.pk, name="回调").key
    order = _delivered_order(user)
    link = OpenApiOrder.objects.create(reseller=reseller, api_key=key, order=order, request_no=f"R-{user.pk}",
                                       body_digest="0" * 64, notify_url="https://a.example.com/notify")
    delivery = NotifyDelivery.objects.create(openapi_order=link, status="delivered", url=link.notify_url,
                                             payload={"order_no": order.number}, state=NotifyState.GAVE_UP,
                                             attempts=1)
    return Target({"delivery_id": delivery.pk})


def _supplier_document(user: User) -> Target:
    return Target({"document_id": upload(_supplier(user)).pk})


def _supplier_offer(user: User) -> Target:
    return Target({"offer_id": SupplierOfferFactory.create(supplier=_supplier(user)).pk})


def _supplier_card_key_offer(user: User) -> Target:
    sku = SkuFactory.create(product__delivery_kind=DeliveryKind.CARD_KEY)
    offer = SupplierOfferFactory.create(supplier=_supplier(user), sku=sku, stock_source=OfferStockSource.CARD_KEYS)
    return Target({"offer_id": offer.pk})


def _supplier_withdrawal(user: User) -> Target:
    supplier = _supplier(user)
    credit_payable(supplier, "500.00", reference=f"idor-all-credit-{supplier.pk}")
    withdrawal = supplier_withdrawal_request(supplier_id=supplier.pk, amount=Decimal("200.00"), bank_name="工商银行",
                                             account_name="甲公司", account_number="6222000011112222")
    return Target({"number": withdrawal.number})


def _restock_request(user: User) -> Target:
    supplier = _supplier(user)
    offer = SupplierOfferFactory.create(supplier=supplier, upstream_stock=1)
    request = RestockRequest.objects.create(offer=offer, supplier=supplier, stock_at_raise=1, threshold=10)
    return Target({"request_id": request.pk, "to": "acknowledged"})


def _obj(role: Role, factory: ObjectFactory, *methods: str, refused: tuple[int, ...] = (403, 404),
         **data: str) -> Route:
    return Route(Kind.OBJECT, role=role, factory=factory, methods=methods or ("GET",), post_data=data,
                 refused=refused)


B, R, S = Role.BUYER, Role.RESELLER, Role.SUPPLIER
SUPPLIER_PROOF = ("tests/suppliers/test_callbacks.py", "tests/suppliers/test_push.py")
OPENAPI_PROOF = ("tests/resellers/test_openapi_auth.py", "tests/resellers/test_openapi_orders.py")
ACG_PROOF = ("tests/resellers/test_acg_shared.py",)
ACG = machine("acg-faka 店铺共享 docking: every call signed with the reseller's key (answers only while "
              "KAMENG_ACG_SHARED_ENABLED)", *ACG_PROOF)

# Every route of the project by URL name (a route without a name by its pattern). The admin namespace is one rule:
# STAFF (see ADMIN_PUBLIC for its own log-in page) — the admin test walks each of its patterns.
ROUTES: dict[str, Route] = {
    # storefront
    "web:home": public("the catalogue"),
    "web:search": public("the catalogue"),
    "web:product": public("a product page of the catalogue"),
    "web:buy": own(None, "POST"),  # the product is public; the order is the buyer's own
    "web:login": public("log in"),
    "web:login_sms_send": public("log in by SMS (rate-limited by the risk engine)"),
    "web:login_sms": public("log in by SMS"),
    "web:login_onetap": public("log in with the carrier's one-tap token"),
    "web:logout": public("log out"),
    "web:register": public("register"),
    "set_language": public("the language cookie"),
    "web:account": own(),
    "web:account_email": own(None, "POST"),
    "web:account_email_remove": own(None, "POST"),
    "web:account_email_confirm": _obj(B, _email_link, "GET", "POST", refused=(400, 403, 404)),
    "web:realname": own(None, "GET", "POST"),
    "web:order_list": own(),
    "web:order_detail": _obj(B, _order),
    "web:order_status": _obj(B, _order),
    "web:order_progress": _obj(B, _order),
    "web:order_keys_txt": _obj(B, _order),
    "web:order_pay": _obj(B, _pending, "GET", "POST", channel="balance"),
    "web:order_payment": _obj(B, _payment_of_order),
    "web:order_cancel": _obj(B, _pending, "POST"),
    "web:order_after_sales": _obj(B, _order, "GET", "POST", reason="key_invalid", note="IDOR"),
    "web:order_after_sales_withdraw": _obj(B, _order_asked_about, "POST"),
    "web:after_sales_list": own(),
    "web:membership": own(None, "GET", "POST"),
    "web:points": own(),
    "web:points_shop": public("the points shop's items (exchanging is web:points_exchange)"),
    "web:points_exchange": own(None, "POST"),  # the item is of the public points shop; the points the buyer's own
    "web:wallet": own(),
    "web:topup": own(None, "POST"),
    "web:topup_return": public("an old return address: forwards to payments:return, which is an object route"),
    "web:topup_status": _obj(B, _topup_status),
    "web:security": own(),
    "web:security_pin": own(None, "POST"),
    "web:security_limit": own(None, "POST"),
    # reseller console
    "web:reseller_home": own(R),
    "web:reseller_apply": own(None, "GET", "POST"),
    "web:reseller_prices": own(R),
    "web:reseller_batch": own(R, "GET", "POST"),
    "web:reseller_batch_order": _obj(R, _batch_order),
    "web:reseller_batch_keys": _obj(R, _batch_keys),
    "web:reseller_promotion": own(R),
    "web:reseller_margins": own(R),
    "web:reseller_withdrawals": own(R, "GET", "POST"),
    "web:reseller_commission_to_wallet": own(R, "POST", amount="1.00", request_id="x1"),
    "web:reseller_withdrawal": _obj(R, _commission_withdrawal),
    "web:reseller_notifications": own(R),
    "web:reseller_notification_resend": _obj(R, _notify_delivery, "POST"),
    "web:reseller_subsite": own(R, "GET", "POST"),
    "web:reseller_subsite_markup": own(R, "POST"),
    # the SKU is of the public catalogue; the mark-up removed is of the requester's own sub-site
    # (tests/resellers/test_console_idor_subsite.py proves another's is unchanged)
    "web:reseller_subsite_markup_remove": own(R, "POST"),
    "web:reseller_subsite_domain": own(R, "POST"),
    "web:reseller_subsite_domain_verify": own(R, "POST"),
    "web:reseller_apikeys": own(R, "GET", "POST"),
    "web:reseller_apikey_edit": _obj(R, _api_key, "GET", "POST", name="改名", ip_allowlist="203.0.113.9"),
    "web:reseller_apikey_revoke": _obj(R, _api_key, "POST"),
    # supplier console
    "web:supplier_home": own(S),
    "web:supplier_apply": own(None, "GET", "POST"),
    "web:supplier_company": own(S, "GET", "POST"),
    "web:supplier_legal_person": own(S, "POST"),
    "web:supplier_document_upload": own(S, "POST"),
    "web:supplier_document": _obj(S, _supplier_document),
    "web:supplier_agreement": own(S, "GET", "POST"),
    "web:supplier_submit": own(S, "POST"),
    "web:supplier_offers": own(S, "GET", "POST"),
    "web:supplier_offer_edit": _obj(S, _supplier_offer, "GET", "POST", price="1.00", stock_source="upstream",
                                    upstream_product_id="X"),
    "web:supplier_offer_keys": _obj(S, _supplier_card_key_offer, "GET", "POST", text="STOLEN-KEY-0001"),
    "web:supplier_orders": own(S),
    "web:supplier_disputes": own(S),
    "web:supplier_rating": own(S),
    "web:supplier_statements": own(S),
    "web:supplier_statement_download": own(S),  # names a month of the requester's own statement
    "web:supplier_withdrawals": own(S, "GET", "POST"),
    "web:supplier_withdrawal": _obj(S, _supplier_withdrawal),
    "web:supplier_restock": own(S),
    "web:supplier_restock_settings": own(S, "POST"),
    "web:supplier_restock_move": _obj(S, _restock_request, "POST"),
    # staff 2FA pages (kameng.accounts.staff_views): staff only, tests/staffsec/test_staff_otp.py
    "staff_otp:verify": own(Role.STAFF, "GET", "POST"),
    "staff_otp:enrol": own(Role.STAFF, "GET", "POST"),
    # JSON API (session)
    "api:openapi-json": public("the API schema"),
    "api:openapi-view": public("the API docs page"),
    "api:api-root": public("the API root (404)"),
    "api:unknown_path": public("any other path under /api/: a JSON 404 (kameng.core.api_urls)"),
    "api:list_products": public("the catalogue"),
    "api:get_product": public("a product of the catalogue"),
    "api:create_order": own(None, "POST"),
    "api:get_order": _obj(B, _order),
    "api:create_after_sales": _obj(B, _order, "POST", reason="key_invalid", note="IDOR"),
    "api:withdraw_after_sales": _obj(B, _order_asked_about, "POST"),
    "api:list_after_sales": own(),
    "api:get_wallet": own(),
    "api:get_points": own(),
    "api:get_membership": own(),
    "api:get_realname": own(),
    "api:post_realname": own(None, "POST"),
    "api:send_phone_code": public("log in by phone: asks for a code (rate-limited)"),
    "api:login_with_phone_code": public("log in by phone"),
    "api:login_with_onetap": public("log in with the carrier's one-tap token"),
    # Open API v1 (signed by a reseller's key); the order look-ups are tried here too (test_openapi_*)
    "openapi:openapi-json": public("the Open API schema"),
    "openapi:openapi-view": public("the Open API docs page"),
    "openapi:api-root": public("the Open API root (404)"),
    "openapi:unknown_path": public("any other path under /openapi/v1/: a JSON 404 (kameng.core.api_urls)"),
    "openapi:list_products": machine("signed by a reseller's key; the catalogue at the reseller's price",
                                     *OPENAPI_PROOF),
    "openapi:get_product": machine("signed by a reseller's key; a SKU of the catalogue", *OPENAPI_PROOF),
    "openapi:get_balance": machine("signed; the signer's own balance", *OPENAPI_PROOF),
    "openapi:create_order": machine("signed; an order of the signer", *OPENAPI_PROOF),
    "openapi:find_order": machine("signed; looks up the signer's own request numbers", *OPENAPI_PROOF),
    "openapi:get_order": machine("signed; the signer's own order", *OPENAPI_PROOF),
    # acg-faka docking
    "acg_shared_connect": ACG,
    "acg_shared_items": ACG,
    "acg_shared_item": ACG,
    "acg_shared_inventory": ACG,
    "acg_shared_inventory_state": ACG,
    "acg_shared_trade": ACG,
    "acg_shared_query": ACG,
    "acg_shared_draft_card": ACG,
    "acg_shared_cover": public("product cover pictures of the catalogue, for acg-faka shops"),
    # payments' gateway edges
    "payments:notify": machine("the gateway's signed notification, verified per channel",
                               "tests/payments/test_notification_process.py",
                               "tests/payments/test_notify_hostile_input.py"),
    "payments:return": _obj(B, _payment_return),  # names the payment in ?out_trade_no=; only the buyer's own
    # suppliers' top-up callbacks and signed pushes
    "suppliers:callback": machine("a supplier's signed top-up callback", *SUPPLIER_PROOF),
    "suppliers:push": machine("a supplier's signed push", *SUPPLIER_PROOF),
    # media served by Django with DEBUG only
    "<unnamed ^media/(?P<path>.*)$>": public("uploaded product pictures (DEBUG only; the web server in production)"),
}

SIMULATOR_NAMESPACE = "simulators"
ADMIN_NAMESPACE = "admin"
ADMIN_PUBLIC = {"admin:login", "admin:logout"}  # logging in, and logging the session's own user out
# Routes that exist only in some settings (served with DEBUG): not stale when absent.
OPTIONAL = {"<unnamed ^media/(?P<path>.*)$>"}


def _walk(patterns: list[URLPattern | URLResolver], prefix: str = "",
          namespace: str = "") -> Iterator[tuple[str, str]]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}:{pattern.namespace}".strip(":") if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, route, inner)
        else:
            name = f"{namespace}:{pattern.name}".strip(":") if pattern.name else f"<unnamed {route}>"
            yield route, name


def all_routes() -> list[tuple[str, str]]:
    """(URL name, pattern) of every route, the admin's included; several ninja operations share one path."""
    return [(name, route) for route, name in _walk(get_resolver().url_patterns)]


def _is_admin(name: str, route: str) -> bool:
    return name.startswith(f"{ADMIN_NAMESPACE}:") or (route.startswith("admin/") and not name.startswith("staff_otp:"))


def _is_simulator(name: str) -> bool:
    return name.startswith(f"{SIMULATOR_NAMESPACE}:")


def classify(name: str, route: str) -> Route | None:
    if name in ROUTES:
        return ROUTES[name]
    if _is_admin(name, route):
        return public("the admin's log-in and log-out") if name in ADMIN_PUBLIC else Route(Kind.STAFF)
    if _is_simulator(name):
        return SIMULATOR
    return None


def unclassified(routes: list[tuple[str, str]]) -> list[str]:
    return sorted({f"{name} (/{route})" for name, route in routes if classify(name, route) is None})


def test_every_route_is_classified() -> None:
    routes = all_routes()
    names = {name for name, _ in routes}

    missing = unclassified(routes)
    stale = sorted(name for name in ROUTES if name not in names and name not in OPTIONAL)

    assert len(routes) > 400  # the walk reached the admin, the APIs and the simulators
    assert not missing, ("routes nobody classified for the IDOR suite — add each to ROUTES in "
                         f"tests/security/test_idor_all_routes.py (an object route with a factory): {missing}")
    assert not stale, f"ROUTES names routes that no longer exist: {stale}"


def test_a_new_route_without_a_case_is_named() -> None:
    routes = [*all_routes(), ("web:order_invoice", "orders/<str:number>/invoice/")]

    assert unclassified(routes) == ["web:order_invoice (/orders/<str:number>/invoice/)"]


def test_every_route_with_an_object_id_says_whose_it_is() -> None:
    """A web route with a parameter is an object route unless the table says why not (no silent PUBLIC/OWN)."""
    with_ids = {name for name, route in all_routes() if "<" in route and name.startswith("web:")}
    allowed_without_factory = {"web:product", "web:buy", "web:points_exchange", "web:reseller_subsite_markup_remove",
                               "web:supplier_statement_download"}

    without = sorted(name for name in with_ids - allowed_without_factory if ROUTES[name].factory is None)

    assert not without, f"routes with an object id need a factory in ROUTES: {without}"


def test_machine_routes_name_tests_that_exist() -> None:
    for name, route in ROUTES.items():
        if route.kind == Kind.MACHINE:
            assert route.proof, f"{name}: name the tests proving its signature check"
            for path in route.proof:
                assert (REPO / path).is_file(), f"{name}: {path} does not exist"
        if route.kind in (Kind.PUBLIC, Kind.MACHINE, Kind.EXEMPT):
            assert route.reason, f"{name}: say why it is {route.kind}"


# ---- requesting as each role ----

def user_of(role: Role) -> User:
    if role == Role.RESELLER:
        tier = ResellerTier.objects.first() or tier_make()
        return reseller_make(tier).user
    if role == Role.SUPPLIER:
        return SupplierFactory.create().owner
    if role == Role.STAFF:
        return UserFactory.create(is_staff=True)
    return UserFactory.create()


def _request(client: Client, method: str, url: str, query: dict[str, str], data: dict[str, str]) -> Any:
    if method == "POST" and url.startswith("/api/"):  # the JSON API reads JSON bodies
        return client.post(url, data, content_type="application/json")
    if method == "POST":
        return client.post(url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""), data)
    return client.get(url, query)


def _is_api(name: str) -> bool:
    return name.startswith("api:")


def _sent_to_login(name: str, response: Any) -> bool:
    if _is_api(name):
        return bool(response.status_code == 401)
    return response.status_code == 302 and "/login/" in response["Location"]


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    from kameng.resellers import notify

    monkeypatch.setattr(notify, "_enqueue", lambda _ids: None)


def _object_cases() -> list[tuple[str, str]]:
    return [(name, method) for name, route in ROUTES.items() if route.kind == Kind.OBJECT
            for method in route.methods]


@pytest.mark.parametrize(("name", "method"), _object_cases())
def test_an_object_is_refused_to_every_other_account(client: Client, name: str, method: str) -> None:
    route = ROUTES[name]
    assert route.factory is not None
    assert route.role is not None
    owner = user_of(route.role)
    target = route.factory(owner)
    url = reverse(name, kwargs=target.kwargs)

    answers = {}
    for role in (Role.BUYER, Role.RESELLER, Role.SUPPLIER):
        client.force_login(user_of(role))
        answers[role.value] = _request(client, method, url, target.query, route.post_data).status_code
    client.logout()
    anonymous = _request(client, method, url, target.query, route.post_data)
    client.force_login(owner)
    as_owner = _request(client, "GET" if "GET" in route.methods else method, url, target.query, route.post_data)

    assert all(status in route.refused for status in answers.values()), (name, method, answers)
    assert _sent_to_login(name, anonymous), (name, method, anonymous.status_code)
    assert as_owner.status_code not in (403, 404), (name, as_owner.status_code)


def test_an_open_api_order_of_another_reseller_is_404_signed_as_another(client: Client) -> None:
    owner, other = reseller_with_key(funds="100.00"), reseller_with_key(funds="100.00")
    sku = SkuFactory.create()
    stock_sku(sku, 1)
    created = call(client, owner, "POST", "/orders", {"request_no": "IDOR-1", "sku_id": sku.pk, "quantity": 1})
    number = created.json()["order_no"]

    by_number = call(client, other, "GET", f"/orders/{number}")
    by_request = call(client, other, "GET", "/orders?request_no=IDOR-1")
    unsigned = client.get(f"/openapi/v1/orders/{number}")
    own_answer = call(client, owner, "GET", f"/orders/{number}")

    assert created.status_code == 201
    assert (by_number.status_code, by_request.status_code) == (404, 404)
    assert unsigned.status_code == 401
    assert own_answer.status_code == 200


def _own_cases() -> list[str]:
    return [name for name, route in ROUTES.items() if route.kind == Kind.OWN]


def _own_url(name: str) -> str:
    args: dict[str, dict[str, Any]] = {"web:reseller_subsite_markup_remove": {"sku_id": 1},
            "web:supplier_statement_download": {"month": "2026-11", "file_format": "csv"},
            "web:points_exchange": {"item_id": 1}}
    if name == "web:buy":
        return reverse(name, args=[SkuFactory.create().product_id])
    return reverse(name, kwargs=args.get(name, {}))


@pytest.mark.parametrize("name", _own_cases())
def test_own_pages_send_visitors_to_log_in_and_are_closed_to_other_roles(client: Client, name: str) -> None:
    route = ROUTES[name]
    url = _own_url(name)
    method = route.methods[0]

    anonymous = _request(client, method, url, {}, route.post_data)
    others = {}
    if route.role is not None:
        for role in (Role.BUYER, Role.RESELLER, Role.SUPPLIER):
            if role != route.role:
                client.force_login(user_of(role))
                others[role.value] = _request(client, method, url, {}, route.post_data)

    if route.role == Role.STAFF:
        assert anonymous.status_code == 302, name
        assert "/admin/login/" in anonymous["Location"], name
        assert all(response.status_code == 302 and "/admin/login/" in response["Location"]
                   for response in others.values()), name
    else:
        assert _sent_to_login(name, anonymous), (name, anonymous.status_code)
        assert all(response.status_code == 404 for response in others.values()), (
            name, {role: response.status_code for role, response in others.items()})


def _admin_url(route: str) -> str:
    """A concrete address for an admin pattern: object ids become 1, an app label a registered one."""
    route = re.sub(r"\^\(\?P<app_label>([a-z_]+)\|[^)]*\)/\$$", r"\1/", route)
    route = re.sub(r"<(?:(?:int|str|path|slug):)?[a-z_]+>", "1", route)
    return "/" + route.replace("^", "").replace("$", "")


def test_every_admin_page_sends_non_staff_to_the_admin_login(client: Client) -> None:
    """Changelist, add, change, delete and history of every registered model, and every extra admin view."""
    admin_routes = [(name, route) for name, route in all_routes()
                    if _is_admin(name, route) and name not in ADMIN_PUBLIC]
    buyer, reseller, supplier = (user_of(role) for role in (Role.BUYER, Role.RESELLER, Role.SUPPLIER))
    leaks = []

    for user in (None, buyer, reseller, supplier):
        if user is None:
            client.logout()
        else:
            client.force_login(user)
        for name, route in admin_routes:
            url = _admin_url(route)
            for method in ("GET", "POST"):
                response = client.post(url, {}) if method == "POST" else client.get(url)
                if name.startswith("<unnamed") and response.status_code in (301, 302) and \
                        "/admin/login/" not in response["Location"]:
                    response = client.get(response["Location"])  # the old object address redirects to change/
                if not (response.status_code == 302 and "/admin/login/" in response["Location"]):
                    leaks.append((user and user.username, method, name, url, response.status_code))

    assert len(admin_routes) > 300
    assert not leaks, f"admin pages open to non-staff: {leaks[:20]} ({len(leaks)} in all)"
