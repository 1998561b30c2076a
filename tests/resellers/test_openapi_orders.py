"""POST /orders and the order look-ups of the Open API v1: paid from the reseller's wallet, idempotent by request_no,
the exact refusals, and a reseller never sees another's orders."""

from __future__ import annotations

import socket
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client, override_settings
from pytest_django import DjangoCaptureOnCommitCallbacks

from kameng.catalog.pricing import SALES_CHANNEL_OPENAPI
from kameng.core import ssrf
from kameng.inventory.models import CardKey, CardKeyStatus
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order
from kameng.purchases.services import PayBy, PaymentChoice, purchase_create
from kameng.resellers.models import OpenApiOrder
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku
from tests.resellers.openapi_support import KeyHolder, call, reseller_with_key
from tests.topup_support import phone_topup_sku

pytestmark = pytest.mark.django_db


NOTIFY_URL = "https://reseller.example.com/cb"


@pytest.fixture
def notified(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    monkeypatch.setattr("kameng.openapi.v1.order_notify_schedule", lambda *, order_id: calls.append(order_id))
    return calls


def _order(client: Client, holder: KeyHolder, **fields: Any) -> Any:
    return call(client, holder, "POST", "/orders", fields)


def _available(sku_id: int) -> int:
    return CardKey.objects.filter(sku_id=sku_id, status=CardKeyStatus.AVAILABLE).count()


def test_a_new_order_is_201_with_its_keys_and_paid_from_the_wallet(client: Client, notified: list[int]) -> None:
    holder = reseller_with_key(funds="100.00")
    sku = SkuFactory.create(price=Decimal("9.50"))
    secrets = stock_sku(sku, 5)

    response = _order(client, holder, request_no="R-001", sku_id=sku.pk, quantity=2,
                      notify_url="https://reseller.example.com/cb")

    assert response.status_code == 201
    body = response.json()
    order = Order.objects.get()
    keys = body.pop("keys")
    assert body == {"order_no": order.number, "request_no": "R-001", "sku_id": sku.pk, "quantity": 2,
                    "amount": "19.00", "status": "delivered"}
    assert len(set(keys)) == 2
    assert set(keys) <= set(secrets)
    assert CardKey.objects.filter(order=order, status=CardKeyStatus.SOLD).count() == 2
    assert order.sales_channel == SALES_CHANNEL_OPENAPI
    assert wallet_balance(user_id=holder.user.pk) == Decimal("81.00")
    record = OpenApiOrder.objects.get()
    assert (record.order_id, record.reseller_id, record.api_key_id, record.request_no, record.notify_url) == (
        order.pk, holder.reseller.pk, holder.key.pk, "R-001", "https://reseller.example.com/cb")
    assert notified == [order.pk]
    assert response["Cache-Control"] == "no-store, private"


def test_the_same_request_again_is_200_with_the_same_order_and_no_second_charge(client: Client,
                                                                              notified: list[int]) -> None:
    holder = reseller_with_key(funds="100.00")
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 5)

    first = _order(client, holder, request_no="R-002", sku_id=sku.pk, quantity=1, notify_url=NOTIFY_URL)
    again = _order(client, holder, request_no="R-002", sku_id=sku.pk, quantity=1, notify_url=NOTIFY_URL)
    looked_up = call(client, holder, "GET", "/orders?request_no=R-002")
    by_number = call(client, holder, "GET", f"/orders/{first.json()['order_no']}")

    assert (first.status_code, again.status_code, looked_up.status_code, by_number.status_code) == (
        201, 200, 200, 200)
    assert again.json() == first.json() == looked_up.json() == by_number.json()
    assert Order.objects.count() == 1
    assert wallet_balance(user_id=holder.user.pk) == Decimal("90.50")
    assert len(notified) == 1


@pytest.mark.parametrize("change", [{"quantity": 2}, {"sku_id": "other"}, {"notify_url": "https://x.example.com/"},
                                    {"recharge_account": "13800000000"}])
def test_the_same_request_no_with_another_body_is_409(client: Client, change: dict[str, Any]) -> None:
    holder = reseller_with_key(funds="100.00")
    sku, other = SkuFactory.create(), SkuFactory.create()
    stock_sku(sku, 5)
    stock_sku(other, 5)
    first = {"request_no": "R-003", "sku_id": sku.pk, "quantity": 1}
    second = {**first, **change}
    if second["sku_id"] == "other":
        second["sku_id"] = other.pk

    created = _order(client, holder, **first)
    conflict = _order(client, holder, **second)

    assert created.status_code == 201
    assert conflict.status_code == 409
    assert conflict.json()["code"] == "request_no_conflict"
    assert Order.objects.count() == 1
    assert wallet_balance(user_id=holder.user.pk) == Decimal("90.50")


def test_a_replay_after_a_crash_before_the_record_answers_the_order(client: Client, notified: list[int]) -> None:
    """The order was written but the process died before its OpenApiOrder: the retry gets that order (200), the
    record is written then, and a look-up by request_no finds the order even before."""
    holder = reseller_with_key(funds="100.00")
    sku = SkuFactory.create(price=Decimal("9.50"))
    secrets = stock_sku(sku, 3)
    landed = purchase_create(buyer_id=holder.user.pk, sku_id=sku.pk, quantity=1,
                             payment=PaymentChoice(PayBy.WALLET), request_id="R-004",
                             sales_channel=SALES_CHANNEL_OPENAPI)

    before = call(client, holder, "GET", "/orders?request_no=R-004")
    retry = _order(client, holder, request_no="R-004", sku_id=sku.pk, quantity=1, notify_url=NOTIFY_URL)
    conflict = _order(client, holder, request_no="R-004", sku_id=sku.pk, quantity=2)

    assert before.status_code == 200
    assert before.json()["order_no"] == landed.order.number
    assert retry.status_code == 200
    assert retry.json()["keys"] == landed.secrets
    assert set(landed.secrets) <= set(secrets)
    assert retry.json()["order_no"] == landed.order.number
    assert OpenApiOrder.objects.get().order_id == landed.order.pk
    assert notified == [landed.order.pk]
    assert conflict.status_code == 409


def test_an_order_without_notify_url_schedules_nothing(client: Client, notified: list[int]) -> None:
    holder = reseller_with_key(funds="100.00")
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 1)

    assert _order(client, holder, request_no="R-005", sku_id=sku.pk, quantity=1).status_code == 201
    assert notified == []
    assert Order.objects.count() == 1
    assert wallet_balance(user_id=holder.user.pk) == Decimal("90.50")


def test_a_request_no_used_by_the_storefront_is_a_conflict(client: Client) -> None:
    holder = reseller_with_key(funds="100.00")
    sku = SkuFactory.create()
    stock_sku(sku, 3)
    purchase_create(buyer_id=holder.user.pk, sku_id=sku.pk, quantity=1, payment=PaymentChoice(PayBy.WALLET),
                    request_id="SHOP-1")

    response = _order(client, holder, request_no="SHOP-1", sku_id=sku.pk, quantity=1)
    lookup = call(client, holder, "GET", "/orders?request_no=SHOP-1")

    assert (response.status_code, response.json()["code"]) == (409, "request_no_conflict")
    assert lookup.status_code == 404
    assert OpenApiOrder.objects.count() == 0


def test_insufficient_balance_is_402_and_nothing_is_charged_or_taken(client: Client) -> None:
    holder = reseller_with_key(funds="18.99")
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 5)

    response = _order(client, holder, request_no="R-005", sku_id=sku.pk, quantity=2)

    assert response.status_code == 402
    assert response.json()["code"] == "insufficient_balance"
    assert wallet_balance(user_id=holder.user.pk) == Decimal("18.99")
    assert Order.objects.count() == 0
    assert OpenApiOrder.objects.count() == 0
    assert _available(sku.pk) == 5


def test_exactly_the_balance_is_enough(client: Client) -> None:
    holder = reseller_with_key(funds="19.00")
    sku = SkuFactory.create(price=Decimal("9.50"))
    stock_sku(sku, 5)

    response = _order(client, holder, request_no="R-006", sku_id=sku.pk, quantity=2)

    assert response.status_code == 201
    assert wallet_balance(user_id=holder.user.pk) == Decimal("0.00")


def test_sold_out_is_409_and_nothing_is_charged(client: Client) -> None:
    holder = reseller_with_key(funds="100.00")
    sku = SkuFactory.create()
    stock_sku(sku, 1)

    response = _order(client, holder, request_no="R-007", sku_id=sku.pk, quantity=2)

    assert response.status_code == 409
    assert response.json()["code"] == "sold_out"
    assert set(response.json()) == {"code", "message"}
    assert wallet_balance(user_id=holder.user.pk) == Decimal("100.00")
    assert Order.objects.count() == 0
    assert _available(sku.pk) == 1


INVALID = "请求参数有误："
REQUEST_NO_RULE = INVALID + "request_no 只能包含字母、数字、_ 和 -，长度 1–64"
NOT_AN_INTEGER = "必须是整数（JSON 数字，不带引号、不带小数）"
NOT_AN_OBJECT = INVALID + "请求体必须是 JSON 对象（{…}），不能是数组、字符串、数字或 null"
NOT_JSON = "请求体不是有效的 JSON：请发送 Content-Type: application/json 的 JSON 对象"
NOTIFY_REFUSED = "notify_url 不可用：回调地址"

# (case, body, status, code, message): every refusal says in Chinese which field is wrong and how.
BAD_BODIES: list[tuple[str, bytes, int, str, str]] = [
    ("quantity 0", b'{"request_no": "B1", "sku_id": SKU, "quantity": 0}', 422, "invalid_input",
     INVALID + "quantity 不能小于 1"),
    ("quantity negative", b'{"request_no": "B1", "sku_id": SKU, "quantity": -3}', 422, "invalid_input",
     INVALID + "quantity 不能小于 1"),
    ("quantity 10^12", b'{"request_no": "B1", "sku_id": SKU, "quantity": 1000000000000}', 422, "invalid_input",
     INVALID + "quantity 不能大于 10000"),
    ("quantity as a float", b'{"request_no": "B1", "sku_id": SKU, "quantity": 1.5}', 422, "invalid_input",
     INVALID + "quantity " + NOT_AN_INTEGER),
    ("quantity as a string", b'{"request_no": "B1", "sku_id": SKU, "quantity": "1"}', 422, "invalid_input",
     INVALID + "quantity " + NOT_AN_INTEGER),
    ("quantity missing", b'{"request_no": "B1", "sku_id": SKU}', 422, "invalid_input",
     INVALID + "缺少必填字段 quantity"),
    ("quantity above the batch maximum", b'{"request_no": "B1", "sku_id": SKU, "quantity": 1001}', 400,
     "invalid_quantity", "购买数量需在 1–1000 之间"),
    ("unknown SKU", b'{"request_no": "B1", "sku_id": 987654321, "quantity": 1}', 404, "sku_not_found",
     "商品不存在或已下架"),
    ("SKU id beyond bigint", b'{"request_no": "B1", "sku_id": 99999999999999999999, "quantity": 1}', 422,
     "invalid_input", INVALID + "sku_id 不能大于 9223372036854775807"),
    ("SKU as a string", b'{"request_no": "B1", "sku_id": "abc", "quantity": 1}', 422, "invalid_input",
     INVALID + "sku_id " + NOT_AN_INTEGER),
    ("SKU as a numeric string", b'{"request_no": "B1", "sku_id": "SKU", "quantity": 1}', 422, "invalid_input",
     INVALID + "sku_id " + NOT_AN_INTEGER),
    ("SKU as true", b'{"request_no": "B1", "sku_id": true, "quantity": 1}', 422, "invalid_input",
     INVALID + "sku_id " + NOT_AN_INTEGER),
    ("SKU null", b'{"request_no": "B1", "sku_id": null, "quantity": 1}', 422, "invalid_input",
     INVALID + "sku_id " + NOT_AN_INTEGER),
    ("empty request_no", b'{"request_no": "", "sku_id": SKU, "quantity": 1}', 422, "invalid_input",
     REQUEST_NO_RULE),
    ("overlong request_no", b'{"request_no": "' + b"x" * 65 + b'", "sku_id": SKU, "quantity": 1}', 422,
     "invalid_input", REQUEST_NO_RULE),
    ("request_no with a space", b'{"request_no": "a b", "sku_id": SKU, "quantity": 1}', 422, "invalid_input",
     REQUEST_NO_RULE),
    ("request_no in Chinese", '{"request_no": "订单1", "sku_id": SKU, "quantity": 1}'.encode(), 422,
     "invalid_input", REQUEST_NO_RULE),
    ("request_no with a NUL", b'{"request_no": "a\\u0000b", "sku_id": SKU, "quantity": 1}', 422, "invalid_input",
     REQUEST_NO_RULE),
    ("request_no as a number", b'{"request_no": 12, "sku_id": SKU, "quantity": 1}', 422, "invalid_input",
     INVALID + "request_no 必须是字符串"),
    ("two fields wrong", b'{"request_no": "B1", "sku_id": "abc", "quantity": 0}', 422, "invalid_input",
     INVALID + "sku_id " + NOT_AN_INTEGER + "；quantity 不能小于 1"),
    ("malformed JSON", b'{"request_no": "B1", "sku_id": ', 400, "invalid_json", NOT_JSON),
    ("not JSON at all", b"request_no=B1&sku_id=1", 400, "invalid_json", NOT_JSON),
    ("a JSON array", b"[1, 2]", 422, "invalid_input", NOT_AN_OBJECT),
    ("a JSON string", b'"B1"', 422, "invalid_input", NOT_AN_OBJECT),
    ("JSON null", b"null", 422, "invalid_input", NOT_AN_OBJECT),
    ("an empty body", b"", 422, "invalid_input", INVALID + "缺少请求体：请发送 JSON 对象"),
    ("recharge_account on a card-key SKU", b'{"request_no": "B1", "sku_id": SKU, "quantity": 1, '
                                           b'"recharge_account": "13800000000"}', 400, "buyer_input_unexpected",
     "该商品不是直充商品，不需要填写 recharge_account"),
    ("recharge_account as a number", b'{"request_no": "B1", "sku_id": SKU, "quantity": 1, '
                                     b'"recharge_account": 13800000000}', 422, "invalid_input",
     INVALID + "recharge_account 必须是字符串"),
    ("notify_url not https", b'{"request_no": "B1", "sku_id": SKU, "quantity": 1, '
                             b'"notify_url": "http://reseller.example.com/cb"}', 422, "invalid_notify_url",
     NOTIFY_REFUSED + "必须以 https:// 开头"),
    ("notify_url to the loopback", b'{"request_no": "B1", "sku_id": SKU, "quantity": 1, '
                                   b'"notify_url": "https://127.0.0.1/cb"}', 422, "invalid_notify_url",
     NOTIFY_REFUSED + "指向内网、本机或保留地址（127.0.0.1），不允许回调"),
    ("notify_url to a private address", b'{"request_no": "B1", "sku_id": SKU, "quantity": 1, '
                                        b'"notify_url": "https://[::ffff:10.0.0.1]/cb"}', 422, "invalid_notify_url",
     NOTIFY_REFUSED + "指向内网、本机或保留地址（::ffff:a00:1），不允许回调"),
    ("notify_url to localhost", b'{"request_no": "B1", "sku_id": SKU, "quantity": 1, '
                                b'"notify_url": "https://api.localhost/cb"}', 422, "invalid_notify_url",
     NOTIFY_REFUSED + "指向本机（api.localhost），不允许回调"),
    ("notify_url with a NUL", b'{"request_no": "B1", "sku_id": SKU, "quantity": 1, '
                              b'"notify_url": "https://a.example.com/\\u0000"}', 422, "invalid_notify_url",
     "notify_url 不是有效的网址：不能包含空格或控制字符"),
    ("notify_url overlong", b'{"request_no": "B1", "sku_id": SKU, "quantity": 1, '
                            b'"notify_url": "https://a.example.com/' + b"x" * 500 + b'"}', 422, "invalid_input",
     INVALID + "notify_url 最多 500 个字符"),
    ("notify_url with a bad port", b'{"request_no": "B1", "sku_id": SKU, "quantity": 1, '
                                   b'"notify_url": "https://a.example.com:99999/"}', 422, "invalid_notify_url",
     NOTIFY_REFUSED + "无效：端口号须为 1–65535 的整数"),
]


@pytest.mark.parametrize(("body", "status", "code", "message"), [row[1:] for row in BAD_BODIES],
                         ids=[case for case, *_ in BAD_BODIES])
def test_bad_input_gets_its_status_code_and_chinese_message(client: Client, body: bytes, status: int, code: str,
                                                            message: str) -> None:
    holder = reseller_with_key(funds="100.00")
    sku = SkuFactory.create()
    stock_sku(sku, 2)

    response = call(client, holder, "POST", "/orders", raw=body.replace(b"SKU", str(sku.pk).encode()))

    assert response.status_code == status, response.content
    assert response.json() == {"code": code, "message": message}
    assert Order.objects.count() == 0
    assert wallet_balance(user_id=holder.user.pk) == Decimal("100.00")


NO_ORDER = ("order_not_found", "订单不存在")
NO_SKU = ("sku_not_found", "商品不存在或已下架")
NO_ROUTE = ("not_found", "接口不存在：请检查请求路径（见 /openapi/v1/docs）")
BAD_LOOK_UPS: list[tuple[str, str, int, tuple[str, str]]] = [
    ("GET", "/orders/K0000", 404, NO_ORDER),
    ("GET", "/orders/%00", 404, NO_ORDER),
    ("GET", "/orders/" + "K" * 40, 404, NO_ORDER),
    ("GET", "/orders?request_no=", 422, ("invalid_input", REQUEST_NO_RULE)),
    ("GET", "/orders?request_no=a%20b", 422, ("invalid_input", REQUEST_NO_RULE)),
    ("GET", "/orders", 422, ("invalid_input", INVALID + "缺少必填字段 request_no")),
    ("GET", "/products/0", 404, NO_SKU),
    ("GET", "/products/-1", 404, NO_SKU),
    ("GET", "/products/99999999999999999999", 404, NO_SKU),
    ("GET", "/products/abc", 422, ("invalid_input", INVALID + "sku_id 必须是整数")),
    ("GET", "/orders/", 404, NO_ROUTE),
    ("GET", "/no-such-route", 404, NO_ROUTE),
    ("POST", "/products", 405, ("method_not_allowed", "该接口不支持 POST 方法，只支持：GET")),
    ("DELETE", "/orders/K0000", 405, ("method_not_allowed", "该接口不支持 DELETE 方法，只支持：GET")),
]


@pytest.mark.parametrize(("method", "path", "status", "answer"), BAD_LOOK_UPS,
                         ids=[f"{method} {path}" for method, path, _, _ in BAD_LOOK_UPS])
def test_bad_look_ups_are_json_with_a_code_and_a_chinese_message(client: Client, method: str, path: str,
                                                                 status: int, answer: tuple[str, str]) -> None:
    holder = reseller_with_key()

    response = call(client, holder, method, path)

    assert response.status_code == status, response.content
    assert response.json() == {"code": answer[0], "message": answer[1]}
    if status == 405:
        assert response["Allow"] == answer[1].rsplit("：", 1)[1]


def test_an_unknown_path_is_a_json_404_even_unsigned(client: Client) -> None:
    response = client.get("/openapi/v1/nothing/here")

    assert response.status_code == 404
    assert response.json() == {"code": NO_ROUTE[0], "message": NO_ROUTE[1]}


def test_another_resellers_order_is_404(client: Client) -> None:
    owner, other = reseller_with_key(funds="100.00"), reseller_with_key(funds="100.00")
    sku = SkuFactory.create()
    stock_sku(sku, 3)
    number = _order(client, owner, request_no="R-008", sku_id=sku.pk, quantity=1).json()["order_no"]

    by_number = call(client, other, "GET", f"/orders/{number}")
    by_request = call(client, other, "GET", "/orders?request_no=R-008")
    same_request_no = _order(client, other, request_no="R-008", sku_id=sku.pk, quantity=1)

    assert (by_number.status_code, by_request.status_code) == (404, 404)
    assert by_number.json()["code"] == "order_not_found"
    assert same_request_no.status_code == 201  # request numbers are per reseller
    assert same_request_no.json()["order_no"] != number


def test_a_storefront_order_of_the_reseller_is_not_an_open_api_order(client: Client) -> None:
    holder = reseller_with_key(funds="100.00")
    sku = SkuFactory.create()
    stock_sku(sku, 3)
    shop_order = purchase_create(buyer_id=holder.user.pk, sku_id=sku.pk, quantity=1,
                                 payment=PaymentChoice(PayBy.WALLET), request_id=None).order

    assert call(client, holder, "GET", f"/orders/{shop_order.number}").status_code == 404


def test_a_direct_topup_takes_recharge_account(client: Client,
                                               django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
                                               notified: list[int]) -> None:
    holder = reseller_with_key(funds="100.00")
    sku = phone_topup_sku(price="49.50")

    with django_capture_on_commit_callbacks(execute=False):  # fulfilment is the suppliers' part
        response = _order(client, holder, request_no="T-001", sku_id=sku.pk, quantity=1,
                          recharge_account="13812345678")
        wrong = _order(client, holder, request_no="T-002", sku_id=sku.pk, quantity=1, recharge_account="12345")
        missing = _order(client, holder, request_no="T-003", sku_id=sku.pk, quantity=1)

    assert response.status_code == 201
    body = response.json()
    assert (body["keys"], body["amount"], body["status"]) == ([], "49.50", "paid")
    order = Order.objects.get(number=body["order_no"])
    from kameng.catalog.topup_forms import topup_target_loads

    assert topup_target_loads(order.topup_target) == {"phone": "13812345678"}
    assert wallet_balance(user_id=holder.user.pk) == Decimal("50.50")
    assert (wrong.status_code, missing.status_code) == (400, 400)
    assert Order.objects.count() == 1


@override_settings(KAMENG_NOTIFY_ALLOW_PRIVATE=True)
def test_with_private_notify_targets_allowed_plain_http_to_a_local_address_is_taken(client: Client) -> None:
    holder = reseller_with_key(funds="100.00")
    sku = SkuFactory.create()
    stock_sku(sku, 1)

    response = _order(client, holder, request_no="R-009", sku_id=sku.pk, quantity=1,
                      notify_url="http://127.0.0.1:9000/cb")

    assert response.status_code == 201
    assert OpenApiOrder.objects.get().notify_url == "http://127.0.0.1:9000/cb"


@pytest.mark.parametrize(("url", "reason"), [
    ("https://hooks.example.com/cb", "内网"),  # resolves (below) to a private address
    ("https://user@hooks.example.com/cb", "用户名"),
    ("https://2130706433/cb", "非标准"),
])
def test_a_notify_url_the_ssrf_guard_refuses_is_422_at_input(client: Client, monkeypatch: pytest.MonkeyPatch,
                                                              url: str, reason: str) -> None:
    def resolve(host: str, port: int, *_args: object, **_kwargs: object) -> list[tuple[object, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]

    monkeypatch.setattr(ssrf, "resolve", resolve)
    holder = reseller_with_key(funds="100.00")
    sku = SkuFactory.create()
    stock_sku(sku, 1)

    response = _order(client, holder, request_no="R-010", sku_id=sku.pk, quantity=1, notify_url=url)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_notify_url"
    assert response.json()["message"].startswith("notify_url 不可用：")
    assert reason in response.json()["message"]
    assert Order.objects.count() == 0


def test_a_notify_url_that_does_not_resolve_yet_is_taken_and_checked_again_at_send(client: Client) -> None:
    holder = reseller_with_key(funds="100.00")
    sku = SkuFactory.create()
    stock_sku(sku, 1)

    response = _order(client, holder, request_no="R-011", sku_id=sku.pk, quantity=1,
                      notify_url="https://hooks.invalid/cb")

    assert response.status_code == 201


def test_products_and_one_product_at_the_callers_price(client: Client) -> None:
    holder = reseller_with_key()
    sku = SkuFactory.create(price=Decimal("9.50"), product__name="腾讯 Q 币卡", name="10 元")
    stock_sku(sku, 4)
    topup = phone_topup_sku(price="49.50")
    SkuFactory.create(product__status="draft")  # not on sale: not listed

    listed = call(client, holder, "GET", "/products")
    one = call(client, holder, "GET", f"/products/{sku.pk}")

    assert listed.status_code == 200
    rows = {row["sku_id"]: row for row in listed.json()}
    assert rows == {
        sku.pk: {"sku_id": sku.pk, "product_name": "腾讯 Q 币卡", "sku_name": "10 元", "price": "9.50", "stock": 4,
                 "delivery_kind": "card_key"},
        topup.pk: {"sku_id": topup.pk, "product_name": "移动话费直充", "sku_name": "50 元", "price": "49.50",
                   "stock": 9999, "delivery_kind": "direct_topup"},
    }
    assert one.json() == rows[sku.pk]


def test_the_price_is_the_price_functions_for_the_openapi_channel(client: Client, settings: Any) -> None:
    settings.KAMENG_PRICE_RULES = ["tests.resellers.test_openapi_orders.openapi_channel_rule"]
    holder = reseller_with_key(funds="100.00")
    sku = SkuFactory.create(price=Decimal("10.00"))
    stock_sku(sku, 2)

    listed = call(client, holder, "GET", f"/products/{sku.pk}")
    ordered = _order(client, holder, request_no="P-1", sku_id=sku.pk, quantity=2)

    assert listed.json()["price"] == "9.00"
    assert ordered.json()["amount"] == "18.00"


def openapi_channel_rule(*, sales_channel: str, unit_price: Decimal, **_: Any) -> Any:
    from kameng.catalog.pricing import PriceLine

    if sales_channel != SALES_CHANNEL_OPENAPI:
        return None
    return PriceLine(code="test_reseller", label="测试代理价", amount=Decimal("-1.00"))


def test_the_balance_is_the_resellers_own(client: Client) -> None:
    holder = reseller_with_key(funds="123.45")
    bystander = UserFactory.create()
    fund_wallet(bystander, "5.00")

    assert call(client, holder, "GET", "/balance").json() == {"balance": "123.45"}
