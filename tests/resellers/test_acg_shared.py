"""The acg-faka 店铺共享 endpoints, driven by a client written to the protocol as acg-faka's own client behaves:
form POSTs carrying app_id, app_key and an MD5 sign made the PHP way (http_build_query, then urldecode)."""

from __future__ import annotations

import hashlib
import urllib.parse
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from kameng.catalog.models import DeliveryKind, ProductStatus, Sku
from kameng.catalog.pricing import SALES_CHANNEL_OPENAPI, PriceLine
from kameng.catalog.selectors import SkuForSale
from kameng.core.money import money
from kameng.ledger.selectors import wallet_balance
from kameng.orders.models import Order
from kameng.resellers.acg_shared import acg_signature
from kameng.resellers.models import ApiKey, OpenApiOrder, Reseller, ResellerStatus
from tests.factories import SkuFactory, UserFactory, fund_wallet, stock_sku
from tests.suppliers.topup_support import Upstreams, upstreams

pytestmark = pytest.mark.django_db
__all__ = ["upstreams"]

BASE = "/openapi/acg"
APP_KEY = "Zx9-secret_0123456789abcdefghijklmnopqrstuv"  # the shape of an Open API secret (43 url-safe chars)
TIER_RULE = "tests.resellers.test_acg_shared.reseller_thirty_percent_off"


def reseller_thirty_percent_off(*, sku: SkuForSale, buyer_id: int, quantity: int, sales_channel: str,
                                unit_price: Decimal) -> PriceLine | None:
    """Stands in for the tier rule: an approved reseller buying through the Open API pays 30 % less."""
    if sales_channel != SALES_CHANNEL_OPENAPI:
        return None
    if not Reseller.objects.filter(user_id=buyer_id, status=ResellerStatus.ACTIVE).exists():
        return None
    return PriceLine(code="tier", label="代理价", amount=-money(unit_price * Decimal("0.30")))


def php_sign(fields: dict[str, str], app_key: str) -> str:
    """Str::generateSignature as PHP runs it: unset sign, ksort, drop '', http_build_query, append &key=, urldecode,
    md5 — written apart from kameng's code, so the two are checked against each other."""
    data = {name: value for name, value in sorted(fields.items()) if name != "sign" and value != ""}
    query = urllib.parse.urlencode(data) + "&key=" + app_key
    return hashlib.md5(urllib.parse.unquote_plus(query).encode()).hexdigest()


class AcgClient:
    """What an acg-faka site does when docked onto us (SharedService::post)."""

    def __init__(self, client: Client, app_id: str, app_key: str) -> None:
        self.client, self.app_id, self.app_key = client, app_id, app_key

    def post(self, path: str, fields: dict[str, str] | None = None, *, sign: str | None = None,
             remote_addr: str = "127.0.0.1") -> Any:
        data = {**(fields or {}), "app_id": self.app_id, "app_key": self.app_key}
        data["sign"] = php_sign(data, self.app_key) if sign is None else sign
        return self.client.post(BASE + path, data=urllib.parse.urlencode(data),
                                content_type="application/x-www-form-urlencoded", REMOTE_ADDR=remote_addr)

    def call(self, path: str, fields: dict[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
        response = self.post(path, fields, **kwargs)
        assert response.status_code == 200, response.content
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture(autouse=True)
def _enabled(settings: Any) -> None:
    settings.KAMENG_ACG_SHARED_ENABLED = True
    settings.KAMENG_PRICE_RULES = [*settings.KAMENG_PRICE_RULES, TIER_RULE]


def docked(*, funds: str = "100.00", status: str = ResellerStatus.ACTIVE, ip_allowlist: str = "") -> AcgClient:
    user = UserFactory.create()
    reseller = Reseller.objects.create(user=user, status=status)
    if Decimal(funds) > 0:
        fund_wallet(user, funds, reference=f"acg-fund-{user.pk}")
    key = ApiKey.objects.create(reseller=reseller, key_id=f"kk_acg{user.pk:020d}", secret=APP_KEY, name="异次元",
                                ip_allowlist=ip_allowlist)
    return AcgClient(Client(), key.key_id, APP_KEY)


def card_sku(*, price: str = "10.00", keys: int = 3) -> tuple[Sku, list[str]]:
    sku = SkuFactory.create(price=Decimal(price), product__delivery_kind=DeliveryKind.CARD_KEY)
    return sku, stock_sku(sku, keys)


def user_of(client: AcgClient) -> int:
    return ApiKey.objects.get(key_id=client.app_id).reseller.user_id


# --- Signing -----------------------------------------------------------------------------------------------------

def test_signature_is_the_raw_sorted_query_with_the_key_appended() -> None:
    fields = {"num": "1", "app_id": "kk_1", "sign": "ignored", "race": "", "app_key": "abc"}
    raw = "app_id=kk_1&app_key=abc&num=1&key=abc"
    assert acg_signature(params=fields, app_key="abc") == hashlib.md5(raw.encode()).hexdigest()


@pytest.mark.parametrize("value", ["a b+c&d=e", "联系人 测试", "100%", "x=y", "  "])
def test_signature_agrees_with_the_php_procedure(value: str) -> None:
    fields = {"contact": value, "shared_code": "12", "app_id": "kk_1", "app_key": APP_KEY, "password": ""}
    assert acg_signature(params=fields, app_key=APP_KEY) == php_sign(fields, APP_KEY)


# --- Reads -------------------------------------------------------------------------------------------------------

def test_connect_reports_the_shop_name_and_the_wallet(settings: Any) -> None:
    settings.KAMENG_ACG_SHARED_SHOP_NAME = "测试卡盟"
    body = docked(funds="123.45").call("/shared/authentication/connect")
    assert body == {"code": 200, "msg": "success", "data": {"shopName": "测试卡盟", "balance": "123.45"}}


def test_items_are_grouped_by_category_at_the_resellers_tier_cost() -> None:
    sku, _ = card_sku(price="10.00", keys=3)
    off_shelf = SkuFactory.create(product__status=ProductStatus.OFF_SHELF)
    body = docked().call("/shared/commodity/items")
    assert body["code"] == 200
    children = [child for category in body["data"] for child in category["children"]]
    assert str(off_shelf.pk) not in [child["code"] for child in children]
    [category] = [category for category in body["data"] if category["id"] == sku.product.category_id]
    [child] = category["children"]
    assert category["name"] == sku.product.category.name
    assert child["code"] == str(sku.pk)
    assert (child["price"], child["user_price"], child["factory_price"]) == ("10.00", "10.00", "7.00")
    assert (child["delivery_way"], child["stock"], child["minimum"]) == (0, 3, 1)
    assert child["widget"] == "[]"


def test_item_and_inventory_answer_for_one_sku() -> None:
    sku, _ = card_sku(price="20.00", keys=2)
    client = docked()
    item = client.call("/shared/commodity/item", {"sharedCode": str(sku.pk)})
    assert [child["code"] for child in item["data"][0]["children"]] == [str(sku.pk)]
    inventory = client.call("/shared/commodity/inventory", {"sharedCode": str(sku.pk), "race": ""})
    assert inventory["data"] == {"count": 2, "delivery_way": 0, "draft_status": 0, "price": "20.00",
                                 "user_price": "20.00", "config": "", "factory_price": "14.00",
                                 "is_category": False}
    state = {"shared_code": str(sku.pk), "card_id": "0", "race": ""}
    assert client.call("/shared/commodity/inventoryState", {**state, "num": "2"})["code"] == 200
    short = client.call("/shared/commodity/inventoryState", {**state, "num": "3"})
    assert (short["code"], short["msg"], short["error"]) == (409, "库存不足", "sold_out")


def test_a_sku_only_an_upstream_stocks_is_listed_with_its_stock_at_the_resellers_cost(upstreams: Upstreams) -> None:
    sku = SkuFactory.create(price=Decimal("10.00"), product__delivery_kind=DeliveryKind.CARD_KEY)
    upstreams.offer("甲", sku, "6.50", upstream_stock=5)  # below the reseller's ¥7.00: routed for it
    dear = SkuFactory.create(price=Decimal("10.00"), product__delivery_kind=DeliveryKind.CARD_KEY)
    upstreams.offer("乙", dear, "8.00", upstream_stock=5)  # fine at retail, a loss at the reseller's ¥7.00
    client = docked()

    items = {child["code"]: child for category in client.call("/shared/commodity/items")["data"]
             for child in category["children"]}
    inventory = client.call("/shared/commodity/inventory", {"sharedCode": str(sku.pk), "race": ""})["data"]
    state = {"shared_code": str(sku.pk), "card_id": "0", "race": ""}

    assert (items[str(sku.pk)]["stock"], items[str(dear.pk)]["stock"]) == (5, 0)
    assert (inventory["count"], inventory["factory_price"]) == (5, "7.00")
    assert client.call("/shared/commodity/inventoryState", {**state, "num": "5"})["code"] == 200
    short = client.call("/shared/commodity/inventoryState", {**state, "num": "6"})
    assert (short["code"], short["error"]) == (409, "sold_out")
    refused = client.call("/shared/commodity/inventoryState", {"shared_code": str(dear.pk), "card_id": "0",
                                                               "race": "", "num": "1"})
    assert (refused["code"], refused["error"]) == (409, "sold_out")


def test_a_direct_topup_lists_its_form_as_widgets_and_a_trade_without_it_is_refused() -> None:
    sku = SkuFactory.create(product__delivery_kind=DeliveryKind.DIRECT_TOPUP, price=Decimal("30.00"))
    client = docked()
    item = client.call("/shared/commodity/item", {"sharedCode": str(sku.pk)})["data"][0]["children"][0]
    assert item["delivery_way"] == 1
    assert '"name": "account"' in item["widget"]
    assert '"cn": "充值账号"' in item["widget"]
    refused = client.call("/shared/commodity/trade", {"shared_code": str(sku.pk), "num": "1", "contact": "-",
                                                      "request_no": "T-topup-1"})
    assert refused["code"] == 400
    assert "充值账号" in refused["msg"]
    assert not Order.objects.exists()
    assert wallet_balance(user_id=user_of(client)) == Decimal("100.00")


# --- Trades ------------------------------------------------------------------------------------------------------

def trade_fields(sku: Sku, *, num: str = "2", request_no: str = "250101123000123") -> dict[str, str]:
    """The fields acg-faka's SharedService::trade sends."""
    return {"shared_code": str(sku.pk), "contact": "-", "num": num, "card_id": "0", "device": "0", "password": "",
            "race": "", "request_no": request_no}


def test_a_trade_delivers_keys_once_and_its_replay_answers_the_same_keys_without_a_second_charge() -> None:
    sku, secrets = card_sku(price="10.00", keys=3)
    client = docked(funds="100.00")
    first = client.call("/shared/commodity/trade", trade_fields(sku))
    assert first["code"] == 200
    data = first["data"]
    delivered = data["secret"].split("\n")
    assert len(set(delivered)) == 2
    assert set(delivered) <= set(secrets)
    assert (data["url"], data["amount"]) == ("", "14.00")
    user_id = user_of(client)
    assert wallet_balance(user_id=user_id) == Decimal("86.00")

    again = client.call("/shared/commodity/trade", trade_fields(sku))
    assert again["data"]["secret"] == data["secret"]
    assert again["data"]["tradeNo"] == data["tradeNo"]
    assert wallet_balance(user_id=user_id) == Decimal("86.00")
    order = Order.objects.get()
    assert (order.number, order.sales_channel, order.request_id) == (data["tradeNo"], "openapi", "250101123000123")
    record = OpenApiOrder.objects.get()
    assert (record.order_id, record.request_no, record.notify_url) == (order.pk, "250101123000123", "")
    assert record.api_key is not None
    assert record.api_key.key_id == client.app_id

    queried = client.call("/shared/commodity/query", {"tradeNo": data["tradeNo"]})
    assert queried["data"]["secret"] == data["secret"]
    assert queried["data"]["status"] == 1


def test_the_same_request_no_with_another_body_is_a_conflict_and_charges_nothing() -> None:
    sku, _ = card_sku(keys=5)
    client = docked()
    client.call("/shared/commodity/trade", trade_fields(sku, num="1"))
    conflict = client.call("/shared/commodity/trade", trade_fields(sku, num="2"))
    assert (conflict["code"], conflict["error"]) == (409, "request_no_conflict")
    assert Order.objects.count() == 1
    assert wallet_balance(user_id=user_of(client)) == Decimal("93.00")


def test_insufficient_balance_is_refused_and_nothing_is_charged() -> None:
    sku, _ = card_sku(price="10.00", keys=3)
    client = docked(funds="5.00")
    refused = client.call("/shared/commodity/trade", trade_fields(sku, num="1"))
    assert refused["code"] == 409
    assert "余额" in refused["msg"]
    assert not Order.objects.exists()
    assert not OpenApiOrder.objects.exists()
    assert wallet_balance(user_id=user_of(client)) == Decimal("5.00")


def test_sold_out_is_refused_and_nothing_is_charged() -> None:
    sku, _ = card_sku(keys=1)
    client = docked()
    refused = client.call("/shared/commodity/trade", trade_fields(sku, num="2"))
    assert refused["code"] == 409
    assert refused["error"] == "sold_out"
    assert wallet_balance(user_id=user_of(client)) == Decimal("100.00")


def test_a_reseller_never_sees_another_resellers_order() -> None:
    sku, _ = card_sku(keys=3)
    first = docked()
    trade_no = first.call("/shared/commodity/trade", trade_fields(sku, num="1"))["data"]["tradeNo"]
    other = docked()
    for fields in ({"tradeNo": trade_no}, {"request_no": "250101123000123"}):
        answer = other.call("/shared/commodity/query", fields)
        assert (answer["code"], answer["msg"]) == (404, "订单不存在")


# --- Refusals ----------------------------------------------------------------------------------------------------

def test_a_wrong_signature_is_refused_in_the_protocols_shape() -> None:
    sku, _ = card_sku()
    client = docked()
    answer = client.call("/shared/commodity/trade", trade_fields(sku), sign="0" * 32)
    assert answer == {"code": 401, "msg": "密钥错误：签名不匹配，请核对商户密钥（app_key）", "data": None,
                      "error": "signature_invalid"}
    forged = AcgClient(Client(), client.app_id, "not-the-key")
    assert forged.call("/shared/authentication/connect")["code"] == 401
    unknown = AcgClient(Client(), "kk_nobody", APP_KEY)
    assert unknown.call("/shared/authentication/connect")["error"] == "invalid_key"
    assert not Order.objects.exists()


def test_a_field_changed_after_signing_is_refused() -> None:
    sku, _ = card_sku()
    client = docked()
    fields = {**trade_fields(sku), "app_id": client.app_id, "app_key": APP_KEY}
    fields["sign"] = php_sign(fields, APP_KEY)
    fields["num"] = "3"
    response = client.client.post(BASE + "/shared/commodity/trade", data=urllib.parse.urlencode(fields),
                                  content_type="application/x-www-form-urlencoded")
    assert response.json()["code"] == 401
    assert not Order.objects.exists()


@pytest.mark.parametrize("status", [ResellerStatus.PENDING, ResellerStatus.SUSPENDED, ResellerStatus.REJECTED])
def test_a_reseller_not_approved_is_refused(status: str) -> None:
    answer = docked(status=status).call("/shared/authentication/connect")
    assert (answer["code"], answer["error"]) == (403, "reseller_inactive")


def test_a_revoked_key_is_refused() -> None:
    client = docked()
    ApiKey.objects.filter(key_id=client.app_id).update(revoked_at="2025-01-01T00:00:00Z")
    assert docked_answer(client)["code"] == 401


def docked_answer(client: AcgClient, **kwargs: Any) -> dict[str, Any]:
    return client.call("/shared/authentication/connect", **kwargs)


def test_a_verified_call_marks_the_key_used_and_a_refused_one_does_not() -> None:
    client = docked()
    assert docked_answer(client, sign="0" * 32)["code"] == 401
    assert ApiKey.objects.get(key_id=client.app_id).last_used_at is None

    assert docked_answer(client)["code"] == 200
    assert ApiKey.objects.get(key_id=client.app_id).last_used_at is not None  # 最近使用 in the reseller's console


def test_the_keys_ip_allowlist_is_honoured() -> None:
    client = docked(ip_allowlist="203.0.113.0/24")
    assert docked_answer(client, remote_addr="203.0.113.7")["code"] == 200
    refused = docked_answer(client, remote_addr="198.51.100.1")
    assert (refused["code"], refused["error"]) == (403, "ip_not_allowed")
    assert "198.51.100.1" in refused["msg"]


def test_switched_off_every_path_answers_404(settings: Any) -> None:
    settings.KAMENG_ACG_SHARED_ENABLED = False
    response = docked().post("/shared/authentication/connect")
    assert response.status_code == 404
    assert response.json()["error"] == "acg_shared_disabled"


def test_only_post_is_answered() -> None:
    response = Client().get(BASE + "/shared/commodity/items")
    assert response.status_code == 405
    assert response.json()["code"] == 405


BAD_TRADES: list[dict[str, str]] = [
    {"num": "abc"}, {"num": "0"}, {"num": "-1"}, {"num": "1e3"}, {"num": "99999999999"}, {"num": ""},
    {"num": "1.5"}, {"shared_code": "abc"}, {"shared_code": ""}, {"shared_code": "99999999"},
    {"shared_code": "1" * 30}, {"shared_code": "1\x00"}, {"request_no": ""}, {"request_no": "a" * 65},
    {"request_no": "订单号"}, {"request_no": "R\x00"},
]


@pytest.mark.parametrize("change", BAD_TRADES)
def test_bad_trade_input_is_refused_in_the_protocols_shape_never_a_500(change: dict[str, str]) -> None:
    sku, _ = card_sku()
    client = docked()
    answer = client.call("/shared/commodity/trade", {**trade_fields(sku), **change})
    assert answer["code"] in (400, 404, 422)
    assert answer["msg"]
    assert answer["data"] is None
    assert not Order.objects.exists()
    assert wallet_balance(user_id=user_of(client)) == Decimal("100.00")


@pytest.mark.parametrize(("path", "fields"), [
    ("/shared/commodity/item", {}), ("/shared/commodity/item", {"sharedCode": "x"}),
    ("/shared/commodity/inventory", {"sharedCode": ""}), ("/shared/commodity/inventory", {"sharedCode": "424242"}),
    ("/shared/commodity/inventoryState", {"shared_code": "1", "num": "many"}),
    ("/shared/commodity/query", {}), ("/shared/commodity/query", {"tradeNo": "K\x00"}),
    ("/shared/commodity/query", {"tradeNo": "x" * 100}), ("/shared/commodity/draftCard", {"sharedCode": "1"}),
])
def test_bad_read_input_is_refused_in_the_protocols_shape(path: str, fields: dict[str, str]) -> None:
    answer = docked().call(path, fields)
    assert answer["code"] in (400, 404, 422)
    assert answer["msg"]


def test_an_unsigned_or_empty_form_is_refused() -> None:
    response = Client().post(BASE + "/shared/commodity/trade", data="",
                             content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert response.json()["code"] == 401
    weird = Client().post(BASE + "/shared/commodity/trade", data='{"app_id": 1}', content_type="application/json")
    assert weird.status_code == 200
    assert weird.json()["code"] == 401


def test_a_cover_is_sent_on_to_the_storage_and_nothing_else() -> None:
    assert Client().get(BASE + "/media/products/a.webp").status_code == 302
    assert Client().get(BASE + "/media/../settings.py").status_code == 404
    assert Client().get(BASE + "/media/other/a.webp").status_code == 404
