"""The generic HTTP connector against upstreams played by httpx.MockTransport: signatures computed here by hand,
field and status mapping of both presets, and every way a call can go wrong ending UNKNOWN, never FAILED."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from kameng.core.errors import ApplicationError
from kameng.suppliers.connectors import http as http_module
from kameng.suppliers.connectors.base import CallbackRejectedError, Outcome, TopupKind, TopupRequest
from kameng.suppliers.connectors.http import HttpConnector
from kameng.suppliers.connectors.registry import connector_for
from kameng.suppliers.models import ConnectorKind
from tests.factories import SupplierFactory

NOW = "1764700000"
YILE = {"preset": "yile", "base_url": "https://sup.example.com/api/", "app_id": "A1001", "app_secret": "s3cret"}
MD5 = {"preset": "md5_form", "base_url": "https://up.example.com/", "key": "k3y",
       "static_params": {"merchant_id": "10001"}}

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_module, "unix_time", lambda: NOW)


def connector(config: dict[str, Any], handler: Handler) -> HttpConnector:
    return HttpConnector(config, transport=httpx.MockTransport(handler))


def reply(data: Any) -> Handler:
    return lambda request: httpx.Response(200, json=data)


def mobile_request(**overrides: Any) -> TopupRequest:
    values: dict[str, Any] = {"customer_order_no": "T20261203001", "kind": TopupKind.MOBILE,
                              "upstream_product_id": "P100", "quantity": 1, "charge_account": "13800138000",
                              "face_value": Decimal("100.00"), "notify_url": "https://shop.example/cb"}
    return TopupRequest(**{**values, **overrides})


def test_md5_form_submit_signs_the_sorted_parameters_with_the_key() -> None:
    seen: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"code": 0, "msg": "ok", "data": {"order_id": "U77", "status": "processing"}})

    answer = connector(MD5, upstream).topup_submit(mobile_request())

    assert answer.outcome == Outcome.PROCESSING
    assert answer.supplier_order_id == "U77"
    assert str(seen[0].url) == "https://up.example.com/order/submit"
    assert seen[0].headers["content-type"] == "application/x-www-form-urlencoded"
    sent = dict(parse_qsl(seen[0].content.decode()))
    expected_text = ("account=13800138000&face_value=100.00&merchant_id=10001&notify_url=https://shop.example/cb"
                     "&num=1&out_trade_no=T20261203001&product_id=P100&timestamp=1764700000&key=k3y")
    assert sent["sign"] == hashlib.md5(expected_text.encode()).hexdigest()
    assert sent == {"account": "13800138000", "face_value": "100.00", "merchant_id": "10001",
                    "notify_url": "https://shop.example/cb", "num": "1", "out_trade_no": "T20261203001",
                    "product_id": "P100", "timestamp": NOW, "sign": sent["sign"]}


def test_md5_sorted_drops_empty_values_and_the_old_sign() -> None:
    from kameng.suppliers.connectors.http_config import md5_sorted_sign

    params = {"b": "2", "a": "1", "empty": "", "none": None, "sign": "stale"}

    assert md5_sorted_sign(params, key="K") == hashlib.md5(b"a=1&b=2&key=K").hexdigest()


def test_yile_submit_sends_the_header_token_and_buy_params() -> None:
    seen: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"code": 0, "message": "ok", "data": {"id": 9001, "status": 0}})

    request = mobile_request(kind=TopupKind.DIRECT, charge_account="player01", face_value=None,
                             extra={"region": "艾欧尼亚", "role": "剑圣"}, quantity=2)
    answer = connector(YILE, upstream).topup_submit(request)

    assert answer.outcome == Outcome.PROCESSING
    assert answer.supplier_order_id == "9001"
    sent = seen[0]
    assert str(sent.url) == "https://sup.example.com/api/Goods/Buy"
    token = hashlib.sha1(b"A1001s3cret/api/Goods/Buy1764700000").hexdigest()
    assert (sent.headers["AppId"], sent.headers["AppTimestamp"], sent.headers["AppToken"]) == ("A1001", NOW, token)
    assert json.loads(sent.content) == {"goods_id": "P100", "buy_number": 2, "out_trade_no": "T20261203001",
                                        "account": "player01",
                                        "buy_params": {"region": "艾欧尼亚", "role": "剑圣", "account": "player01"}}
    assert "sign" not in json.loads(sent.content)


@pytest.mark.parametrize(("status", "outcome"), [
    (0, Outcome.PROCESSING), (2, Outcome.PROCESSING), (1, Outcome.PROCESSING), (3, Outcome.PROCESSING),
    (4, Outcome.PROCESSING), (5, Outcome.PROCESSING), (6, Outcome.SUCCEEDED), (7, Outcome.FAILED),
    (8, Outcome.FAILED), (10, Outcome.FAILED), (9, Outcome.UNKNOWN), (42, Outcome.UNKNOWN),
])
def test_yile_order_status_maps_to_an_outcome(status: int, outcome: Outcome) -> None:
    seen: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"code": 0, "message": "ok",
                                         "data": [{"id": 9001, "status": status, "serial": "SN-1"}]})

    answer = connector(YILE, upstream).topup_query("T20261203001")

    assert answer.outcome == outcome
    assert str(seen[0].url) == "https://sup.example.com/api/Order/Show"
    assert json.loads(seen[0].content) == {"ids": "T20261203001"}
    assert answer.operator_serial == "SN-1"


def test_yile_query_of_an_order_it_does_not_have_is_not_found() -> None:
    answer = connector(YILE, reply({"code": 0, "message": "ok", "data": []})).topup_query("T1")

    assert answer.outcome == Outcome.NOT_FOUND


@pytest.mark.parametrize(("status", "outcome"), [
    ("success", Outcome.SUCCEEDED), ("processing", Outcome.PROCESSING), ("waiting", Outcome.PROCESSING),
    ("failed", Outcome.FAILED), ("strange", Outcome.UNKNOWN),
])
def test_md5_form_query_status_maps_to_an_outcome(status: str, outcome: Outcome) -> None:
    answer = connector(MD5, reply({"code": 0, "data": {"order_id": "U1", "status": status, "serial": "OP9"}})) \
        .topup_query("T1")

    assert answer.outcome == outcome
    assert answer.operator_serial == "OP9"


def test_a_status_map_given_beside_the_preset_overrides_it() -> None:
    config = {**MD5, "status_map": {"1": "succeeded", "0": "processing", "-1": "failed"}}

    answer = connector(config, reply({"code": 0, "data": {"status": 1}})).topup_query("T1")

    assert answer.outcome == Outcome.SUCCEEDED


def test_field_mapping_renames_our_fields_and_leaves_unmapped_ones_out() -> None:
    seen: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"code": "200", "result": {"tid": "X1", "state": "ok"}})

    config = {"base_url": "https://x.example/", "encoding": "json", "paths": {"submit": "charge"},
              "request_fields": {"customer_order_no": "orderNo", "charge_account": "mobile", "face_value": "amount",
                                 "upstream_product_id": "", "quantity": ""},
              "reply": {"code_path": "code", "ok_codes": ["200"]},
              "submit_reply": {"order_path": "result", "supplier_order_id": "tid", "status": "state"},
              "status_map": {"ok": "succeeded"}}

    answer = connector(config, upstream).topup_submit(mobile_request())

    assert json.loads(seen[0].content) == {"orderNo": "T20261203001", "mobile": "13800138000", "amount": "100.00"}
    assert (answer.outcome, answer.supplier_order_id) == (Outcome.SUCCEEDED, "X1")


def test_a_timeout_is_unknown_never_failed() -> None:
    def upstream(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    up = connector(YILE, upstream)

    assert up.topup_submit(mobile_request()).outcome == Outcome.UNKNOWN
    assert up.topup_query("T1").outcome == Outcome.UNKNOWN


@pytest.mark.parametrize("response", [
    httpx.Response(200, text="<html>502 Bad Gateway</html>"),
    httpx.Response(502, text="bad gateway"),
    httpx.Response(200, json={"code": 500, "message": "系统繁忙"}),
    httpx.Response(200, json=["not", "an", "object"]),
])
def test_a_garbled_or_error_reply_to_a_submit_is_unknown(response: httpx.Response) -> None:
    answer = connector(MD5, lambda request: response).topup_submit(mobile_request())

    assert answer.outcome == Outcome.UNKNOWN


def test_a_code_listed_as_refused_fails_over_safely() -> None:
    config = {**MD5, "reply": {"refused_codes": ["1001"]}}

    answer = connector(config, reply({"code": 1001, "msg": "余额不足"})).topup_submit(mobile_request())

    assert (answer.outcome, answer.may_try_next, answer.code, answer.message) == (
        Outcome.FAILED, True, "1001", "余额不足")


def test_yile_goods_list_reads_price_and_stock_as_decimals() -> None:
    goods = [{"id": 11, "name": "王者荣耀 60 点券", "price": 5.95, "stock": 120},
             {"id": 12, "name": "和平精英 60 UC", "price": "5.80", "stock": 0},
             {"id": 13, "name": "无价格"}]

    listed = connector(YILE, reply({"code": 0, "message": "ok", "data": goods})).goods_list()

    assert [(g.product_id, g.price, g.stock, g.is_available) for g in listed] == [
        ("11", Decimal("5.95"), 120, True), ("12", Decimal("5.80"), 0, False)]


def test_yile_goods_show_buy_params_become_a_product_form() -> None:
    seen: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"code": 0, "message": "ok", "data": {"id": 11, "buy_params": [
            {"name": "account", "title": "游戏账号", "required": True},
            {"name": "region", "title": "大区", "options": ["微信区", "QQ区"]},
        ]}})

    form = connector(YILE, upstream).goods_form("11")

    assert str(seen[0].url) == "https://sup.example.com/api/Goods/Show"
    assert json.loads(seen[0].content) == {"goods_id": "11"}
    assert form == [{"name": "account", "label": "游戏账号", "kind": "text", "required": True},
                    {"name": "region", "label": "大区", "kind": "select", "required": True,
                     "options": ["微信区", "QQ区"]}]


def test_goods_list_of_an_upstream_that_is_down_raises_for_the_sync() -> None:
    def upstream(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(http_module.UpstreamUnavailableError):
        connector(YILE, upstream).goods_list()


def test_md5_form_callback_verifies_and_maps() -> None:
    up = connector(MD5, reply({}))
    fields = {"out_trade_no": "T1", "status": "success", "order_id": "U77", "serial": "OP123"}
    text = "order_id=U77&out_trade_no=T1&serial=OP123&status=success&key=k3y"
    body = "&".join(f"{k}={v}" for k, v in {**fields, "sign": hashlib.md5(text.encode()).hexdigest()}.items())

    result = up.callback_verify(body=body.encode(), headers={"Content-Type": "application/x-www-form-urlencoded"})

    assert (result.customer_order_no, result.answer.outcome, result.answer.operator_serial, result.reply) == (
        "T1", Outcome.SUCCEEDED, "OP123", "success")


def test_a_forged_callback_is_rejected() -> None:
    up = connector(MD5, reply({}))
    body = b"out_trade_no=T1&status=success&sign=0123456789abcdef0123456789abcdef"

    with pytest.raises(CallbackRejectedError):
        up.callback_verify(body=body, headers={})


def test_yile_polls_and_accepts_no_callback() -> None:
    up = connector(YILE, reply({}))

    assert up.has_callbacks is False
    with pytest.raises(CallbackRejectedError):
        up.callback_verify(body=b"{}", headers={})


def test_a_config_without_secret_is_refused_in_chinese() -> None:
    with pytest.raises(ApplicationError, match="app_id"):
        HttpConnector({"preset": "yile", "base_url": "https://sup.example.com/"})


@pytest.mark.django_db
def test_the_registry_builds_the_http_connector_from_the_supplier() -> None:
    supplier = SupplierFactory.create(connector_kind=ConnectorKind.HTTP, connector_config=json.dumps(YILE))

    built = connector_for(supplier)

    assert isinstance(built, HttpConnector)
    assert built.config["paths"]["goods"] == "Goods/List"


def test_a_paged_goods_list_is_read_to_its_last_page() -> None:
    pages: list[dict[str, str]] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        asked = dict(parse_qsl(request.url.query.decode()))
        pages.append(asked)
        first = (int(asked["page"]) - 1) * 2
        items = [{"id": n, "price": "1.00"} for n in range(first, min(first + 2, 5))]
        return httpx.Response(200, json={"code": 0, "data": {"list": items, "total": 5}})

    config = {**MD5, "method": "GET", "goods": {"page_field": "page", "page_size_field": "size", "page_size": 2}}

    listed = connector(config, upstream).goods_list()

    assert [goods.product_id for goods in listed] == ["0", "1", "2", "3", "4"]
    assert [(page["page"], page["size"]) for page in pages] == [("1", "2"), ("2", "2"), ("3", "2")]
    assert all(page["merchant_id"] == "10001" and page["sign"] for page in pages)
