"""The storefront JSON API: checkout paid from the wallet, its errors mapped to HTTP in one place."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db
URL = "/api/v1/shop/orders"


def _client_for(user: object) -> Client:
    client = Client()
    client.force_login(user)  # type: ignore[arg-type]
    return client


def _post(client: Client, payload: dict[str, object]) -> tuple[int, dict[str, Any]]:
    response = client.post(URL, data=json.dumps(payload), content_type="application/json")
    return response.status_code, response.json()


def test_checkout_returns_201_with_the_keys_and_200_on_replay() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("9.50"))
    secrets = stock_sku(sku, 3)
    fund_wallet(buyer, "20.00")
    client = _client_for(buyer)

    status, body = _post(client, {"sku_id": sku.pk, "quantity": 2, "request_id": "api-1"})
    again_status, again = _post(client, {"sku_id": sku.pk, "quantity": 2, "request_id": "api-1"})

    assert status == 201
    assert body["status"] == "delivered"
    assert body["total_amount"] == "19.00"
    assert len(set(body["secrets"])) == 2  # distinct keys
    assert set(body["secrets"]) <= set(secrets)
    assert (again_status, again["number"], again["secrets"]) == (200, body["number"], body["secrets"])
    assert wallet_balance(user_id=buyer.pk) == Decimal("1.00")


def test_a_request_id_reused_with_another_quantity_is_409() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 3)
    fund_wallet(buyer, "20.00")
    client = _client_for(buyer)

    _, first = _post(client, {"sku_id": sku.pk, "quantity": 1, "request_id": "api-1"})
    status, body = _post(client, {"sku_id": sku.pk, "quantity": 2, "request_id": "api-1"})

    assert status == 409
    assert body == {"code": "request_id_reused", "message": "该 request_id 已用于另一笔订单（规格或数量不同）",
                    "extra": {"number": first["number"]}}
    assert Order.objects.count() == 1
    assert wallet_balance(user_id=buyer.pk) == Decimal("10.50")


def test_a_fourth_unpaid_order_is_409_and_reserves_nothing() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 10)
    client = _client_for(buyer)
    statuses = [_post(client, {"sku_id": sku.pk, "quantity": 2, "pay_with_wallet": False})[0] for _ in range(3)]

    status, body = _post(client, {"sku_id": sku.pk, "quantity": 2, "pay_with_wallet": False})

    assert statuses == [201, 201, 201]
    assert status == 409
    assert body == {"code": "unpaid_orders_limit", "message": "您有 3 笔待支付订单，请先支付或取消后再下单",
                    "extra": {"limit": 3}}
    assert Order.objects.count() == 3
    assert CardKey.objects.filter(status=CardKeyStatus.AVAILABLE).count() == 4


def test_errors_are_clear_and_change_nothing() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 1)
    fund_wallet(buyer, "15.00")
    client = _client_for(buyer)

    assert _post(client, {"sku_id": sku.pk, "quantity": 2})[0] == 409  # sold out (only 1 key)
    status, body = _post(client, {"sku_id": sku.pk, "quantity": 2})
    assert body["code"] == "sold_out"
    assert body["extra"] == {"available": 1}
    status, body = _post(client, {"sku_id": 999_999, "quantity": 1})
    assert (status, body["code"]) == (404, "sku_not_found")
    status, body = _post(client, {"sku_id": sku.pk, "quantity": 0})
    assert (status, body["code"]) == (422, "invalid_input")
    status, body = _post(client, {"sku_id": "x"})
    assert status == 422
    response = client.post(URL, data="{not json", content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (400, "invalid_body")
    assert Order.objects.count() == 0
    assert wallet_balance(user_id=buyer.pk) == Decimal("15.00")


@pytest.mark.parametrize("sku_id", [0, -1, 2**63, 10**30])
def test_an_id_outside_bigint_is_422_and_changes_nothing(sku_id: int) -> None:
    buyer = UserFactory.create()
    fund_wallet(buyer, "15.00")

    status, body = _post(_client_for(buyer), {"sku_id": sku_id, "quantity": 1})

    assert (status, body["code"]) == (422, "invalid_input")
    assert body["extra"]["errors"][0]["loc"][-1] == "sku_id"
    assert Order.objects.count() == 0
    assert wallet_balance(user_id=buyer.pk) == Decimal("15.00")


@pytest.mark.parametrize("quantity", [0, 10_001, 2**63, 10**30])
def test_a_quantity_outside_the_input_bound_is_422(quantity: int) -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create()
    stock_sku(sku, 1)

    status, body = _post(_client_for(buyer), {"sku_id": sku.pk, "quantity": quantity})

    assert (status, body["code"]) == (422, "invalid_input")
    assert body["extra"]["errors"][0]["loc"][-1] == "quantity"
    assert Order.objects.count() == 0


def test_the_largest_id_is_a_plain_404() -> None:
    status, body = _post(_client_for(UserFactory.create()), {"sku_id": 2**63 - 1, "quantity": 1})

    assert (status, body["code"]) == (404, "sku_not_found")


@pytest.mark.parametrize("number", ["%00", "K%00", "x" * 500, "%E2%80%A8", "K1%20OR%201"])
def test_an_order_number_of_the_wrong_shape_is_404(number: str) -> None:
    response = _client_for(UserFactory.create()).get(f"{URL}/{number}")

    assert response.status_code == 404
    assert response.json() == {"code": "order_not_found", "message": "订单不存在"}


def test_a_total_over_the_limit_is_400_and_changes_nothing() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("9999999999.99"), product__max_quantity=500)
    stock_sku(sku, 200)

    status, body = _post(_client_for(buyer), {"sku_id": sku.pk, "quantity": 200, "pay_with_wallet": False})

    assert (status, body["code"], body["extra"]) == (400, "order_total_too_large", {"max": 100})
    assert Order.objects.count() == 0


def test_insufficient_balance_is_409_and_anonymous_is_401() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("30.00"))
    stock_sku(sku, 1)
    fund_wallet(buyer, "10.00")

    status, body = _post(_client_for(buyer), {"sku_id": sku.pk, "quantity": 1})
    assert (status, body["code"]) == (409, "insufficient_balance")
    status, body = _post(Client(), {"sku_id": sku.pk, "quantity": 1})
    assert (status, body["code"]) == (401, "not_authenticated")
    assert Order.objects.count() == 0


def test_csrf_is_enforced_for_session_posts() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create()
    stock_sku(sku, 1)
    fund_wallet(buyer, "20.00")
    client = Client(enforce_csrf_checks=True)
    client.force_login(buyer)

    response = client.post(URL, data=json.dumps({"sku_id": sku.pk}), content_type="application/json")

    assert (response.status_code, response.json()["code"]) == (403, "csrf_failed")
    assert Order.objects.count() == 0


def test_products_are_public_with_stock() -> None:
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 4)
    response = Client().get("/api/v1/shop/products")
    assert response.status_code == 200
    [product] = response.json()
    assert product["skus"] == [{"id": sku.pk, "name": sku.name, "price": "5.00", "your_price": "5.00", "stock": 4}]


def test_order_answers_carrying_keys_are_never_stored_by_a_cache() -> None:
    buyer = UserFactory.create()
    sku = SkuFactory.create(price=Decimal("5.00"))
    stock_sku(sku, 2)
    fund_wallet(buyer, "10.00")
    client = _client_for(buyer)

    created = client.post(URL, data=json.dumps({"sku_id": sku.pk, "quantity": 1, "request_id": "cache-1"}),
                          content_type="application/json")
    replayed = client.post(URL, data=json.dumps({"sku_id": sku.pk, "quantity": 1, "request_id": "cache-1"}),
                           content_type="application/json")
    fetched = client.get(f"{URL}/{created.json()['number']}")

    assert [response.status_code for response in (created, replayed, fetched)] == [201, 200, 200]
    assert len(fetched.json()["secrets"]) == 1
    for response in (created, replayed, fetched):
        assert "no-store" in response["Cache-Control"]
        assert "private" in response["Cache-Control"]
