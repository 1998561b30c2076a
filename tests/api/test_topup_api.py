"""The storefront JSON API for direct top-ups: the product shows its form, an order takes `recharge_account` and/or
`topup`, and a wrong value is a 400 naming the field, with nothing written."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from pytest_django import DjangoCaptureOnCommitCallbacks

from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order, OrderStatus
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku
from tests.topup_support import game_topup_sku, phone_topup_sku

pytestmark = pytest.mark.django_db
URL = "/api/v1/shop/orders"


@pytest.fixture(autouse=True)
def _no_fulfilment(django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks) -> Any:
    """Fulfilment is the suppliers' part: what runs after commit is not run here."""
    with django_capture_on_commit_callbacks(execute=False):
        yield


def _buyer_client(balance: str = "100.00") -> tuple[Client, int]:
    buyer = UserFactory.create()
    fund_wallet(buyer, balance)
    client = Client()
    client.force_login(buyer)
    return client, buyer.pk


def _post(client: Client, payload: dict[str, object]) -> tuple[int, dict[str, Any]]:
    response = client.post(URL, data=json.dumps(payload), content_type="application/json")
    return response.status_code, response.json()


def test_a_product_shows_the_form_an_app_renders() -> None:
    sku = game_topup_sku()
    body = Client().get(f"/api/v1/shop/products/{sku.product_id}").json()

    assert body["delivery_kind"] == "direct_topup"
    assert body["topup_form"] == [
        {"name": "account", "label": "游戏账号", "kind": "text", "required": True, "options": None, "max_length": 20,
         "pattern": "[A-Za-z0-9_]{4,20}", "carriers": None},
        {"name": "region", "label": "大区", "kind": "select", "required": True, "options": ["微信区", "QQ区"],
         "max_length": None, "pattern": None, "carriers": None},
        {"name": "role", "label": "角色名", "kind": "text", "required": False, "options": None, "max_length": None,
         "pattern": None, "carriers": None},
    ]
    assert [sku_out["id"] for sku_out in body["skus"]] == [sku.pk]


def test_a_card_key_product_has_no_form_and_an_unknown_product_is_404() -> None:
    sku = SkuFactory.create()
    stock_sku(sku, 1)
    body = Client().get(f"/api/v1/shop/products/{sku.product_id}").json()
    assert (body["delivery_kind"], body["topup_form"]) == ("card_key", [])
    assert Client().get("/api/v1/shop/products/999999").status_code == 404
    listed = Client().get("/api/v1/shop/products").json()
    assert [product["topup_form"] for product in listed] == [[]]


def test_recharge_account_fills_the_phone_field() -> None:
    client, buyer_id = _buyer_client()
    sku = phone_topup_sku("49.50")

    status, body = _post(client, {"sku_id": sku.pk, "recharge_account": "13812341234", "request_id": "a1"})

    order = Order.objects.get()
    assert status == 201
    assert body["status"] == OrderStatus.PAID
    assert body["topup_target"] == [{"name": "phone", "label": "手机号", "value": "138****1234"}]
    assert "13812341234" not in json.dumps(body)
    assert order.topup_target == '{"phone":"13812341234"}'
    assert wallet_balance(user_id=buyer_id) == Decimal("50.50")


def test_a_topup_object_fills_a_game_form() -> None:
    client, _ = _buyer_client()
    sku = game_topup_sku("30.00")

    status, _body = _post(client, {"sku_id": sku.pk, "topup": {"account": "player_2024", "region": "微信区"}})
    assert status == 201
    assert Order.objects.get().topup_target == '{"account":"player_2024","region":"微信区"}'


def test_both_fields_together_must_agree() -> None:
    client, _ = _buyer_client()
    sku = game_topup_sku("30.00")

    status, body = _post(client, {"sku_id": sku.pk, "recharge_account": "player_2024",
                                  "topup": {"region": "QQ区"}})
    assert status == 201
    assert Order.objects.get().topup_target == '{"account":"player_2024","region":"QQ区"}'

    status, body = _post(client, {"sku_id": sku.pk, "recharge_account": "player_2024",
                                  "topup": {"account": "someone_else", "region": "QQ区"}})
    assert status == 400
    assert body == {"code": "recharge_account_conflict",
                    "message": "recharge_account 与 topup.account 不一致，请只填写一处", "extra": {"field": "account"}}
    assert Order.objects.count() == 1


@pytest.mark.parametrize(("payload", "code", "message", "field"), [
    ({"recharge_account": "13012345678"}, "topup_carrier_mismatch", "该商品仅支持中国移动号码，您输入的是中国联通号码",
     "phone"),
    ({"recharge_account": "12345"}, "topup_phone_invalid", "手机号格式不正确：请输入 11 位中国大陆手机号", "phone"),
    ({"topup": {}}, "topup_input_required", "请填写手机号", "phone"),
    ({"topup": {"mobile": "13812341234"}}, "topup_field_unknown", "该商品没有充值字段「mobile」，可填写：phone",
     "mobile"),
])
def test_a_wrong_value_is_400_naming_the_field_and_nothing_is_written(
        payload: dict[str, Any], code: str, message: str, field: str) -> None:
    client, buyer_id = _buyer_client()
    sku = phone_topup_sku("49.50")

    status, body = _post(client, {"sku_id": sku.pk, **payload})

    assert status == 400
    assert body == {"code": code, "message": message, "extra": {"field": field}}
    assert Order.objects.count() == 0
    assert wallet_balance(user_id=buyer_id) == Decimal("100.00")


def test_a_topup_without_any_input_is_400() -> None:
    client, _ = _buyer_client()
    status, body = _post(client, {"sku_id": phone_topup_sku().pk})
    assert (status, body["code"], body["message"]) == (400, "topup_input_required", "请填写手机号")
    assert Order.objects.count() == 0


def test_a_card_key_product_refuses_a_recharge_account() -> None:
    client, _ = _buyer_client()
    sku = SkuFactory.create()
    stock_sku(sku, 1)
    status, body = _post(client, {"sku_id": sku.pk, "recharge_account": "13812341234"})
    assert (status, body["code"]) == (400, "buyer_input_unexpected")
    assert Order.objects.count() == 0


def test_a_topup_value_that_is_not_text_is_422() -> None:
    client, _ = _buyer_client()
    status, body = _post(client, {"sku_id": phone_topup_sku().pk, "topup": {"phone": ["13812341234"]}})
    assert (status, body["code"]) == (422, "invalid_input")
    assert Order.objects.count() == 0
