"""The one price function: rules listed in a setting change the price in the storefront and the API, and the
order keeps the lines it was priced with. (The group-commit batch: tests/concurrency/test_checkout_group_commit.py.)"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from kameng.catalog.pricing import SALES_CHANNEL_API, SALES_CHANNEL_STOREFRONT, sku_price
from kameng.catalog.selectors import skus_for_sale
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db
TEN_PERCENT_OFF = "tests.catalog.price_rules.ten_percent_off"
API_SURCHARGE = "tests.catalog.price_rules.api_surcharge"


def test_without_rules_the_price_is_the_retail_price() -> None:
    sku = SkuFactory.create(price=Decimal("9.50"))

    quote = sku_price(sku=skus_for_sale(sku_ids=[sku.pk])[sku.pk], buyer_id=1, quantity=3,
                      sales_channel=SALES_CHANNEL_STOREFRONT)

    assert (quote.base_unit_price, quote.lines, quote.unit_price, quote.total) == (
        Decimal("9.50"), (), Decimal("9.50"), Decimal("28.50"))


def test_rules_apply_in_order_each_to_the_price_the_last_one_left(settings: Settings) -> None:
    settings.KAMENG_PRICE_RULES = [TEN_PERCENT_OFF, API_SURCHARGE]
    sku = SkuFactory.create(price=Decimal("10.00"))
    for_sale = skus_for_sale(sku_ids=[sku.pk])[sku.pk]

    api = sku_price(sku=for_sale, buyer_id=1, quantity=2, sales_channel=SALES_CHANNEL_API)
    storefront = sku_price(sku=for_sale, buyer_id=1, quantity=2, sales_channel=SALES_CHANNEL_STOREFRONT)

    assert [(line.code, line.amount) for line in api.lines] == [("member", Decimal("-1.00")), ("api", Decimal("0.50"))]
    assert (api.unit_price, api.total) == (Decimal("9.50"), Decimal("19.00"))
    assert [(line.code, line.amount) for line in storefront.lines] == [("member", Decimal("-1.00"))]
    assert (storefront.unit_price, storefront.total) == (Decimal("9.00"), Decimal("18.00"))


def test_a_rule_in_settings_changes_the_storefront_price(settings: Settings, client: Client) -> None:
    settings.KAMENG_PRICE_RULES = [TEN_PERCENT_OFF]
    buyer = UserFactory.create()
    fund_wallet(buyer, "50.00")
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 5)
    client.force_login(buyer)

    response = client.post(f"/products/{sku.product_id}/buy/", {
        "sku": sku.pk, "quantity": 3, "request_id": "priced-web", "payment_method": "balance"})

    assert response.status_code == 302
    order = Order.objects.get()
    assert (order.status, order.unit_price, order.total_amount) == (
        OrderStatus.DELIVERED, Decimal("9.00"), Decimal("27.00"))
    assert order.price_lines == [{"code": "member", "label": "会员九折", "amount": "-1.00"}]
    assert wallet_balance(user_id=buyer.pk) == Decimal("23.00")


def test_a_rule_in_settings_changes_the_api_price(settings: Settings) -> None:
    settings.KAMENG_PRICE_RULES = [TEN_PERCENT_OFF, API_SURCHARGE]
    buyer = UserFactory.create()
    fund_wallet(buyer, "50.00")
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 5)
    client = Client()
    client.force_login(buyer)

    response = client.post("/api/v1/shop/orders", json.dumps({"sku_id": sku.pk, "quantity": 2,
                                                              "request_id": "priced-api"}),
                           content_type="application/json")

    assert response.status_code == 201, response.content
    assert response.json()["total_amount"] == "19.00"
    order = Order.objects.get()
    assert (order.unit_price, order.total_amount) == (Decimal("9.50"), Decimal("19.00"))
    assert [line["code"] for line in order.price_lines] == ["member", "api"]
    assert wallet_balance(user_id=buyer.pk) == Decimal("31.00")


def test_an_unpaid_order_is_priced_by_the_rules_too(settings: Settings) -> None:
    settings.KAMENG_PRICE_RULES = [TEN_PERCENT_OFF]
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("20.00"))
    stock_sku(sku, 2)
    client = Client()
    client.force_login(buyer)

    response = client.post("/api/v1/shop/orders", json.dumps({"sku_id": sku.pk, "quantity": 1,
                                                              "pay_with_wallet": False}),
                           content_type="application/json")

    assert response.status_code == 201, response.content
    order = Order.objects.get()
    assert (order.status, order.total_amount) == (OrderStatus.PENDING_PAYMENT, Decimal("18.00"))
