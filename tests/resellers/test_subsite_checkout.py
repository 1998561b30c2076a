"""Buying on a sub-site end to end with the test client (CSRF checks on): log in at /s/<slug>/login/, pay from the
wallet at /s/<slug>/products/<id>/buy/; the order stores the sub-site's channel and its two price lines."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from kameng.orders.models import Order, OrderStatus
from kameng.resellers.models import MarkupKind, SubSitePrice
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku
from tests.resellers.subsite_support import RULES, fresh_subsite_caches, subsite_create

pytestmark = pytest.mark.django_db
__all__ = ["fresh_subsite_caches"]

TOKEN_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture(autouse=True)
def _rules(settings: Settings) -> None:
    settings.KAMENG_PRICE_RULES = RULES


def _token(client: Client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, path
    found = TOKEN_RE.search(page.content.decode())
    assert found is not None
    return found.group(1)


def test_login_and_wallet_checkout_on_the_path_prefix() -> None:
    client = Client(enforce_csrf_checks=True)
    buyer = UserFactory.create(username="shopper")
    fund_wallet(buyer, "100.00")
    sku = SkuFactory.create(price=Decimal("20.00"), product__name="分站点卡")
    stock_sku(sku, 3)
    subsite = subsite_create(slug="demo", markup_value="10.00")
    SubSitePrice.objects.create(subsite=subsite, sku=sku, markup_kind=MarkupKind.FIXED, markup_value=Decimal("0.70"))

    product_path = f"/s/demo/products/{sku.product_id}/"
    anonymous_buy = client.post(f"{product_path}buy/", {"csrfmiddlewaretoken": _token(client, product_path),
                                                        "sku": sku.pk, "quantity": 2})
    assert anonymous_buy.status_code == 302
    assert anonymous_buy["Location"] == f"/s/demo/login/?next={product_path}"

    login = client.post("/s/demo/login/", {"csrfmiddlewaretoken": _token(client, "/s/demo/login/"),
                                          "username": "shopper", "password": "correct-horse-9",
                                          "next": product_path})
    assert (login.status_code, login["Location"]) == (302, product_path)

    page = client.get(product_path).content.decode()
    assert "16.70" in page  # cost 16.00 + 0.70
    bought = client.post(f"{product_path}buy/", {
        "csrfmiddlewaretoken": _token(client, product_path), "sku": sku.pk, "quantity": 2,
        "request_id": "subsite-order-1", "payment_method": "balance"})

    order = Order.objects.get(buyer=buyer)
    assert bought.status_code == 302
    assert bought["Location"] == f"/s/demo/orders/{order.number}/"
    assert order.sales_channel == f"subsite:{subsite.pk}"
    assert order.status == OrderStatus.DELIVERED
    assert (order.unit_price, order.total_amount) == (Decimal("16.70"), Decimal("33.40"))
    assert order.price_lines == [{"code": "reseller_cost", "label": "分站成本价", "amount": "-4.00"},
                                 {"code": "subsite_markup", "label": "分站加价", "amount": "0.70"}]
    detail = client.get(bought["Location"])
    assert detail.status_code == 200
    assert "33.40" in detail.content.decode()


def test_a_post_without_the_csrf_token_is_refused_on_the_sub_site() -> None:
    client = Client(enforce_csrf_checks=True)
    subsite_create(slug="demo")
    UserFactory.create(username="shopper")
    response = client.post("/s/demo/login/", {"username": "shopper", "password": "correct-horse-9"})
    assert response.status_code == 403


def test_the_session_of_the_prefix_is_the_main_sites() -> None:
    client = Client(enforce_csrf_checks=True)
    subsite_create(slug="demo")
    UserFactory.create(username="shopper")
    client.post("/s/demo/login/", {"csrfmiddlewaretoken": _token(client, "/s/demo/login/"),
                                   "username": "shopper", "password": "correct-horse-9"})
    assert client.get("/orders/").status_code == 200
    assert client.get("/s/demo/orders/").status_code == 200


def test_an_order_on_the_main_site_stays_a_storefront_order(client: Client) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "100.00")
    sku = SkuFactory.create(price=Decimal("20.00"))
    stock_sku(sku, 1)
    subsite_create(slug="demo")
    client.force_login(buyer)
    client.post(f"/products/{sku.product_id}/buy/", {"sku": sku.pk, "quantity": 1, "request_id": "main-1",
                                                     "payment_method": "balance"})
    order = Order.objects.get(buyer=buyer)
    assert (order.sales_channel, order.total_amount, order.price_lines) == ("storefront", Decimal("20.00"), [])
