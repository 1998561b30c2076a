"""Every answer of the API that is not a success has ApplicationError's body shape and a 4xx status for bad input;
only a bug is a 500, and that is JSON too (adapted from the audit of API inputs)."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from kameng.api import shop
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku

pytestmark = pytest.mark.django_db
URL = "/api/v1/shop/orders"


def _client() -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory.create())
    return client


def _assert_error_shape(body: dict[str, Any]) -> None:
    assert set(body) <= {"code", "message", "extra"}
    assert isinstance(body["code"], str)
    assert isinstance(body["message"], str)
    assert body["code"]
    assert body["message"]


SKU = "the stocked SKU's id"  # replaced in the payload by the id of the SKU the test creates


INVALID = "请求参数有误："
NOT_AN_OBJECT = INVALID + "请求体必须是 JSON 对象（{…}），不能是数组、字符串、数字或 null"


@pytest.mark.parametrize(("payload", "status", "code", "message"), [
    ({"sku_id": 2**63, "quantity": 1}, 422, "invalid_input", INVALID + "sku_id 不能大于 9223372036854775807"),
    ({"sku_id": 10**30, "quantity": 1}, 422, "invalid_input", INVALID + "sku_id 不能大于 9223372036854775807"),
    ({"sku_id": SKU, "quantity": 1, "request_id": "a\u2028b"}, 400, "invalid_request_id",
     "request_id 最长 64 个可见字符"),
    ({"sku_id": SKU, "quantity": 1, "request_id": "a\x00b"}, 400, "invalid_request_id",
     "request_id 最长 64 个可见字符"),
    ({"sku_id": SKU, "quantity": 1e400}, 422, "invalid_input", INVALID + "quantity 必须是有限的数字"),
    ({"sku_id": SKU, "quantity": -1}, 422, "invalid_input", INVALID + "quantity 不能小于 1"),
    ({"sku_id": SKU, "quantity": 10_000}, 400, "invalid_quantity", "购买数量需在 1–100 之间"),
    ({"sku_id": "x"}, 422, "invalid_input", INVALID + "sku_id 必须是整数"),
    ([1, 2], 422, "invalid_input", NOT_AN_OBJECT),
    ("string", 422, "invalid_input", NOT_AN_OBJECT),
    (None, 422, "invalid_input", NOT_AN_OBJECT),
    ({}, 422, "invalid_input", INVALID + "缺少必填字段 sku_id"),
])
def test_a_bad_payload_is_a_4xx_with_code_and_message_and_changes_nothing(payload: object, status: int, code: str,
                                                                          message: str) -> None:
    buyer = UserFactory.create()
    client = Client(raise_request_exception=False)
    client.force_login(buyer)
    sku = SkuFactory.create(price=Decimal("1.00"))
    stock_sku(sku, 2)
    fund_wallet(buyer, "5.00")
    if isinstance(payload, dict) and payload.get("sku_id") == SKU:
        payload = {**payload, "sku_id": sku.pk}

    response = client.post(URL, data=json.dumps(payload), content_type="application/json")

    assert (response.status_code, response.json()["code"]) == (status, code), response.content
    assert response.json()["message"] == message
    _assert_error_shape(response.json())
    assert Order.objects.count() == 0
    assert wallet_balance(user_id=buyer.pk) == Decimal("5.00")


@pytest.mark.parametrize(("body", "content_type"), [
    ("{not json", "application/json"),
    ("sku_id=1", "application/x-www-form-urlencoded"),
    (b"\xff\xfe", "application/json"),
])
def test_a_body_that_is_not_json_is_400_invalid_body(body: str | bytes, content_type: str) -> None:
    response = _client().post(URL, data=body, content_type=content_type)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_body"
    _assert_error_shape(response.json())


def test_an_empty_body_is_422_invalid_input() -> None:
    response = _client().post(URL, data="", content_type="application/json")

    assert (response.status_code, response.json()["code"]) == (422, "invalid_input")


def test_validation_errors_keep_the_field_errors_in_extra() -> None:
    response = _client().post(URL, data=json.dumps({"sku_id": 1, "quantity": 0}), content_type="application/json")

    body = response.json()
    assert response.status_code == 422
    assert (body["code"], body["message"]) == ("invalid_input", "请求参数有误：quantity 不能小于 1")
    [error] = body["extra"]["errors"]
    assert error == {"type": "greater_than_equal", "loc": ["body", "payload", "quantity"], "msg": "quantity 不能小于 1",
                     "ctx": {"ge": 1}}


@pytest.mark.parametrize(("method", "path", "status", "code", "message"), [
    ("GET", "/api/v1/shop/no-such-route", 404, "not_found", "接口不存在：请检查请求路径（见 /api/docs）"),
    ("GET", "/api/v1/shop/products/", 404, "not_found", "接口不存在：请检查请求路径（见 /api/docs）"),
    ("DELETE", "/api/v1/shop/products", 405, "method_not_allowed", "该接口不支持 DELETE 方法，只支持：GET"),
])
def test_an_unknown_path_or_method_is_json_too(method: str, path: str, status: int, code: str, message: str) -> None:
    response = _client().generic(method, path)

    assert response.status_code == status
    assert response.json() == {"code": code, "message": message}


def test_a_session_post_without_csrf_token_is_403_csrf_failed() -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory.create())

    response = client.post(URL, data=json.dumps({"sku_id": 1}), content_type="application/json")

    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    _assert_error_shape(response.json())


def test_anonymous_is_401_not_authenticated() -> None:
    response = Client().get("/api/v1/shop/wallet")

    assert response.status_code == 401
    assert response.json() == {"code": "not_authenticated", "message": "请先登录"}


def test_an_unexpected_exception_is_a_json_500_and_logged_with_its_traceback(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(**_kwargs: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(shop, "order_of_buyer", broken)

    with caplog.at_level(logging.ERROR, logger="kameng.api"):
        response = _client().get(f"{URL}/K1")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"code": "server_error", "message": "服务器内部错误，请稍后重试"}
    [record] = [record for record in caplog.records if record.name == "kameng.api.urls"]
    assert record.exc_info is not None
    assert "database on fire" in str(record.exc_info[1])


def test_an_unexpected_exception_still_reaches_the_test_client(monkeypatch: pytest.MonkeyPatch) -> None:
    # got_request_exception is sent, as Django's own handler would: error trackers and the test client see it.
    def broken(**_kwargs: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(shop, "order_of_buyer", broken)
    client = Client()
    client.force_login(UserFactory.create())

    with pytest.raises(RuntimeError, match="database on fire"):
        client.get(f"{URL}/K1")
